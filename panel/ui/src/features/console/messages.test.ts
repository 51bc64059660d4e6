import { describe, expect, it } from "vitest";
import { consoleUrl, parseServerMessage } from "./messages";

describe("parseServerMessage", () => {
  it.each([
    ['{"type": "output", "line": "hi"}', { type: "output", line: "hi" }],
    ['{"type": "status", "state": "Running"}', { type: "status", state: "Running" }],
    [
      '{"type": "error", "code": "forbidden", "message": "no"}',
      { type: "error", code: "forbidden", message: "no" },
    ],
  ])("reads %s", (text, expected) => {
    expect(parseServerMessage(text)).toEqual(expected);
  });

  it.each([
    "not json",
    "[]",
    "null",
    '"output"',
    '{"type": "shout"}',
    '{"line": "no type"}',
    '{"type": "output", "line": 3}',
  ])("ignores %s", (text) => {
    expect(parseServerMessage(text)).toBeNull();
  });
});

describe("consoleUrl", () => {
  it("uses the page's host, wss: under https", () => {
    expect(consoleUrl({ protocol: "https:", host: "panel.example:8443" }, "a b")).toBe(
      "wss://panel.example:8443/api/servers/a%20b/console",
    );
    expect(consoleUrl({ protocol: "http:", host: "localhost:8000" }, "s1")).toBe(
      "ws://localhost:8000/api/servers/s1/console",
    );
  });
});
