import { describe, expect, it } from "vitest";
import { csrfTokenFrom, needsCsrf } from "./csrf";

describe("csrfTokenFrom", () => {
  it.each([
    ["stellarstack_csrf=abc", "abc"],
    ["a=1; stellarstack_csrf=t%3Dk; b=2", "t=k"],
    ["x_stellarstack_csrf=no", null],
    ["", null],
  ])("%s -> %s", (cookies, token) => {
    expect(csrfTokenFrom(cookies)).toBe(token);
  });
});

describe("needsCsrf", () => {
  it.each([
    ["GET", false],
    ["head", false],
    ["POST", true],
    ["delete", true],
    ["PATCH", true],
  ])("%s: %s", (method, needed) => {
    expect(needsCsrf(method)).toBe(needed);
  });
});
