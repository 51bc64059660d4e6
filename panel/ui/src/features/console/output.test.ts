import { describe, expect, it } from "vitest";
import { skippedLines, terminalText } from "./output";

describe("skippedLines", () => {
  it.each([
    ["[stellarstack] 42 console lines skipped (output rate limit)", 42],
    ["[stellarstack] 1 console line skipped (output rate limit)", 1],
    ["[say] [stellarstack] 42 console lines skipped", null],
    ["42 console lines skipped", null],
    ["[stellarstack] many console lines skipped", null],
  ])("%s -> %s", (line, expected) => {
    expect(skippedLines(line)).toBe(expected);
  });
});

describe("terminalText", () => {
  it("ends every line and leaves the game's own colours alone", () => {
    expect(terminalText("\x1b[32mready\x1b[0m")).toBe("\x1b[32mready\x1b[0m\r\n");
  });

  it("colours the node's notices", () => {
    expect(terminalText("[stellarstack] 3 console lines skipped (output rate limit)")).toBe(
      "\x1b[33m[stellarstack] 3 console lines skipped (output rate limit)\x1b[0m\r\n",
    );
  });
});
