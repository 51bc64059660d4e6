import { describe, expect, it } from "vitest";
import type { Server } from "../../api/client";
import { byOwnership, readFilters, writeFilters } from "./filters";

describe("readFilters and writeFilters", () => {
  it("round-trip through the address, leaving defaults out", () => {
    const filters = { query: "paper mc", state: "Running", ownership: "shared" as const, page: 2 };
    const params = writeFilters(filters);
    expect(params.toString()).toBe("q=paper+mc&state=Running&owner=shared&page=2");
    expect(readFilters(params)).toEqual(filters);
    expect(writeFilters({ query: "", state: "", ownership: "all", page: 1 }).toString()).toBe("");
  });

  it.each([
    ["owner=everyone", "all", 1],
    ["page=0", "all", 1],
    ["page=abc", "all", 1],
    ["owner=mine&page=3", "mine", 3],
  ])("reads %s leniently", (query, ownership, page) => {
    expect(readFilters(new URLSearchParams(query))).toMatchObject({ ownership, page });
  });
});

describe("byOwnership", () => {
  const servers = [{ owner_id: "me" }, { owner_id: "other" }, { owner_id: null }] as Server[];
  it.each([
    ["all", 3],
    ["mine", 1],
    ["shared", 2],
  ] as const)("%s keeps %i", (ownership, count) => {
    expect(byOwnership(servers, ownership, "me")).toHaveLength(count);
  });
});
