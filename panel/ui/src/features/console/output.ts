// Console lines that are not the game's own: the node's notice that it dropped lines to keep
// up (`[stellarstack] 42 console lines skipped (output rate limit)`).

const SKIPPED = /^\[stellarstack\] (\d+) console lines? skipped\b/;

/** How many lines a skipped-lines notice reports, or null for any other line. */
export function skippedLines(line: string): number | null {
  const match = SKIPPED.exec(line);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 10);
}

const YELLOW = "\x1b[33m";
const RESET = "\x1b[0m";

/** The text to write to the terminal for one line. Notices are coloured so they stand out. */
export function terminalText(line: string): string {
  return skippedLines(line) === null ? `${line}\r\n` : `${YELLOW}${line}${RESET}\r\n`;
}
