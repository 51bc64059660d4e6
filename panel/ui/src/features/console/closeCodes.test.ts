import { describe, expect, it } from "vitest";
import { closeVerdict } from "./closeCodes";

describe("closeVerdict", () => {
  it.each([
    [4401, "login"],
    [4403, "final"],
    [4409, "final"],
    [4502, "retry"],
    [1013, "retry"],
    [1008, "retry"],
    [1009, "retry"],
    [1006, "retry"],
    [1000, "retry"],
    [1001, "retry"],
  ])("close code %i means %s", (code, kind) => {
    expect(closeVerdict(code, "").kind).toBe(kind);
  });

  it("passes the panel's reason on", () => {
    expect(closeVerdict(4409, "suspended by an admin").message).toBe(
      "The server is suspended: suspended by an admin.",
    );
    expect(closeVerdict(4403, "").message).toBe("You cannot see this console.");
  });
});
