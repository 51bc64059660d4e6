import { describe, expect, it } from "vitest";
import { loginUrl } from "./login";

describe("loginUrl", () => {
  it.each([
    ["/", "/login"],
    ["/server/a/console", "/login?next=%2Fserver%2Fa%2Fconsole"],
    ["/?q=x", "/login?next=%2F%3Fq%3Dx"],
    ["//evil.example/", "/login"],
    ["https://evil.example/", "/login"],
  ])("%s -> %s", (path, expected) => {
    expect(loginUrl(path)).toBe(expected);
  });
});
