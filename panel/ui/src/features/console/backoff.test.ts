import { describe, expect, it } from "vitest";
import { CONSOLE_BACKOFF, backoffDelay } from "./backoff";

const EXACT = { initialMs: 1000, maxMs: 30_000, jitter: 0 };

describe("backoffDelay", () => {
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [5, 16_000],
    [6, 30_000],
    [50, 30_000],
  ])("waits %i -> %i ms without jitter", (attempt, expected) => {
    expect(backoffDelay(EXACT, attempt, 0.99)).toBe(expected);
  });

  it("takes off at most the jitter fraction", () => {
    expect(backoffDelay(CONSOLE_BACKOFF, 3, 0)).toBe(4000);
    expect(backoffDelay(CONSOLE_BACKOFF, 3, 0.999)).toBeGreaterThanOrEqual(4000 * 0.7);
    expect(backoffDelay(CONSOLE_BACKOFF, 3, 0.5)).toBe(3400);
  });

  it("treats attempt 0 and below as the first", () => {
    expect(backoffDelay(EXACT, 0, 0)).toBe(1000);
    expect(backoffDelay(EXACT, -3, 0)).toBe(1000);
  });
});
