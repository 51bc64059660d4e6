import { describe, expect, it } from "vitest";
import { ReplayFilter } from "./replay";

function feedAll(filter: ReplayFilter, lines: string[]): string[] {
  return lines.flatMap((line) => filter.feed(line));
}

describe("ReplayFilter", () => {
  it("shows everything of the first connection", () => {
    const filter = new ReplayFilter(10);
    filter.reconnected();
    expect(feedAll(filter, ["a", "b", "a"])).toEqual(["a", "b", "a"]);
  });

  it("drops a replayed backlog that ends where the terminal ended, then shows new lines", () => {
    const filter = new ReplayFilter(10);
    feedAll(filter, ["boot", "ready", "[say] hi"]);
    filter.reconnected();
    expect(feedAll(filter, ["ready", "[say] hi", "[say] new"])).toEqual(["[say] new"]);
  });

  it("shows held lines when they turn out to be new (the server restarted meanwhile)", () => {
    const filter = new ReplayFilter(10);
    feedAll(filter, ["boot", "ready"]);
    filter.reconnected();
    expect(feedAll(filter, ["boot", "booting again"])).toEqual(["boot", "booting again"]);
    expect(feedAll(filter, ["ready"])).toEqual(["ready"]);
  });

  it("recognises a replay of more lines than it keeps only by its end", () => {
    const filter = new ReplayFilter(2);
    feedAll(filter, ["1", "2", "3", "4"]);
    filter.reconnected();
    expect(feedAll(filter, ["1", "2", "3", "4", "5"])).toEqual(["1", "2", "3", "4", "5"]);
    filter.reconnected();
    expect(feedAll(filter, ["4", "5", "6"])).toEqual(["6"]);
  });
});
