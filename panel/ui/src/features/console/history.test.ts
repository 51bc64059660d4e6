import { describe, expect, it } from "vitest";
import { CommandHistory } from "./history";

function sent(...commands: string[]): CommandHistory {
  const history = new CommandHistory(3);
  for (const command of commands) history.record(command);
  return history;
}

describe("CommandHistory", () => {
  it("walks back with Up and forward with Down, returning to the line being typed", () => {
    const history = sent("say a", "status");
    expect(history.previous("half typed")).toBe("status");
    expect(history.previous("status")).toBe("say a");
    expect(history.previous("say a")).toBeNull();
    expect(history.next()).toBe("status");
    expect(history.next()).toBe("half typed");
    expect(history.next()).toBeNull();
  });

  it("keeps neither blank lines nor the same command twice in a row", () => {
    const history = sent("status", "status", "   ", "say x", "status");
    expect(history.size).toBe(3);
    expect([history.previous(""), history.previous(""), history.previous("")]).toEqual([
      "status",
      "say x",
      "status",
    ]);
  });

  it("forgets the oldest commands beyond its limit", () => {
    const history = sent("one", "two", "three", "four");
    expect(history.size).toBe(3);
    const seen = [history.previous(""), history.previous(""), history.previous("")];
    expect(seen).toEqual(["four", "three", "two"]);
    expect(history.previous("")).toBeNull();
  });

  it("starts again from the newest after a command is sent", () => {
    const history = sent("one", "two");
    history.previous("");
    history.previous("");
    history.record("three");
    expect(history.previous("")).toBe("three");
  });

  it("has nothing to recall when empty", () => {
    const history = new CommandHistory();
    expect(history.previous("typed")).toBeNull();
    expect(history.next()).toBeNull();
  });

  it("refuses a limit below one", () => {
    expect(() => new CommandHistory(0)).toThrow(RangeError);
  });
});
