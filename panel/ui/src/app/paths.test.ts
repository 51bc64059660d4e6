import { describe, expect, it } from "vitest";
import { paths, switchServerPath } from "./paths";

describe("switchServerPath", () => {
  it.each([
    ["/server/a/console", "b", "/server/b/console"],
    ["/server/a", "b", "/server/b"],
    ["/server/a/", "b", "/server/b"],
    ["/", "b", "/server/b"],
    ["/account", "b", "/server/b"],
  ])("from %s to server %s: %s", (pathname, id, expected) => {
    expect(switchServerPath(pathname, id)).toBe(expected);
  });
});

describe("paths", () => {
  it("escapes ids", () => {
    expect(paths.serverConsole("a/b")).toBe("/server/a%2Fb/console");
  });
});
