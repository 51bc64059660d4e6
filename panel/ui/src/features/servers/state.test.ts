import { describe, expect, it } from "vitest";
import { powerOffered, stateLabel, stateTone } from "./state";

describe("stateTone", () => {
  it.each([
    ["Running", "ok"],
    ["Starting", "busy"],
    ["Installing", "busy"],
    ["Stopped", "off"],
    ["Crashed", "bad"],
    ["InstallFailed", "bad"],
    ["Suspended", "bad"],
    ["SomethingNew", "off"],
  ])("%s is %s", (state, tone) => {
    expect(stateTone(state)).toBe(tone);
  });
});

describe("stateLabel", () => {
  it.each([
    ["Running", "Running"],
    ["InstallFailed", "Install failed"],
  ])("%s -> %s", (state, label) => {
    expect(stateLabel(state)).toBe(label);
  });
});

describe("powerOffered", () => {
  it.each([
    ["start", "Stopped", true],
    ["start", "Running", false],
    ["stop", "Running", true],
    ["stop", "Stopped", false],
    ["restart", "Stopped", true],
    ["kill", "Stopping", true],
    ["kill", "Stopped", false],
    ["start", "Installing", false],
  ] as const)("%s when %s: %s", (action, state, offered) => {
    expect(powerOffered(action, state, false)).toBe(offered);
  });

  it("offers nothing for a suspended server", () => {
    expect(powerOffered("start", "Stopped", true)).toBe(false);
  });
});
