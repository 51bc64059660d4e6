// Command history of the console input, as shells have it: Up walks back through what was
// sent, Down walks forward, and leaving the history returns the line being typed.

export class CommandHistory {
  private readonly entries: string[] = [];
  /** Index into `entries` while browsing; `entries.length` means "the line being typed". */
  private position = 0;
  private draft = "";

  constructor(private readonly limit = 100) {
    if (limit < 1) throw new RangeError("the history keeps at least one command");
  }

  get size(): number {
    return this.entries.length;
  }

  /** Remembers a sent command (not blank lines, not the same command twice in a row). */
  record(command: string): void {
    if (command.trim() !== "" && this.entries.at(-1) !== command) {
      this.entries.push(command);
      if (this.entries.length > this.limit) this.entries.shift();
    }
    this.position = this.entries.length;
    this.draft = "";
  }

  /** The older command to show for Up, or null at the oldest. `current` is the input's text. */
  previous(current: string): string | null {
    if (this.position === 0) return null;
    if (this.position === this.entries.length) this.draft = current;
    this.position -= 1;
    return this.entries[this.position] ?? null;
  }

  /** The newer command for Down; past the newest, the line that was being typed. */
  next(): string | null {
    if (this.position >= this.entries.length) return null;
    this.position += 1;
    return this.position === this.entries.length
      ? this.draft
      : (this.entries[this.position] ?? null);
  }
}
