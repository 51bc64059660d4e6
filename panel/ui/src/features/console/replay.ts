// A reconnected console socket replays the server's recent lines, most of which the terminal
// already shows. Lines of a new connection are held while they continue what was shown;
// once they reach its last line the rest are new, and as soon as they diverge the held lines
// were new after all and are shown. (The panel does the same when it re-attaches within one
// socket; this covers a new socket.)

export class ReplayFilter {
  private recent: string[] = [];
  private held: string[] = [];
  private matching = false;

  constructor(private readonly keep: number) {}

  /** A new connection starts: its first lines may repeat what was shown. */
  reconnected(): void {
    this.held = [];
    this.matching = this.recent.length > 0;
  }

  /** The lines to show for `line` (none while it may still be a replay). */
  feed(line: string): string[] {
    if (!this.matching) {
      this.remember([line]);
      return [line];
    }
    const held = [...this.held, line];
    const starts = this.startsOf(held);
    if (starts.some((start) => start + held.length === this.recent.length)) {
      this.matching = false;
      this.held = [];
      return [];
    }
    if (starts.length > 0) {
      this.held = held;
      return [];
    }
    this.matching = false;
    this.held = [];
    this.remember(held);
    return held;
  }

  private startsOf(run: string[]): number[] {
    const starts: number[] = [];
    for (let start = 0; start + run.length <= this.recent.length; start += 1) {
      if (run.every((line, offset) => this.recent[start + offset] === line)) starts.push(start);
    }
    return starts;
  }

  private remember(lines: string[]): void {
    this.recent.push(...lines);
    if (this.recent.length > this.keep) this.recent = this.recent.slice(-this.keep);
  }
}
