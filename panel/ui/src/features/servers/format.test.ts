import { describe, expect, it } from "vitest";
import { formatBytes, formatCpu, formatDuration, formatPercent, parseQuantity } from "./format";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1024, "1.00 KiB"],
    [2.44 * 1024 * 1024, "2.44 MiB"],
    [128 * 1024 ** 2, "128 MiB"],
    [15.5 * 1024 ** 3, "15.5 GiB"],
    [null, "—"],
    [undefined, "—"],
    [-1, "—"],
    [Number.NaN, "—"],
  ])("%s -> %s", (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected);
  });
});

describe("formatPercent", () => {
  it.each([
    [0, "0.0 %"],
    [3.14159, "3.1 %"],
    [57.6, "58 %"],
    [null, "—"],
  ])("%s -> %s", (value, expected) => {
    expect(formatPercent(value)).toBe(expected);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0 s"],
    [999, "0 s"],
    [12_000, "12 s"],
    [62_000, "1 min 2 s"],
    [3_600_000, "1 h"],
    [3_660_000, "1 h 1 min"],
    [90_061_000, "1 d 1 h"],
    [-5, "—"],
  ])("%i ms -> %s", (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});

describe("parseQuantity", () => {
  it.each([
    ["500m", 0.5],
    ["2", 2],
    ["1.5", 1.5],
    ["128Mi", 128 * 1024 ** 2],
    ["1Gi", 1024 ** 3],
    ["10G", 1e10],
    [" 4Ki ", 4096],
    [3, 3],
    ["lots", null],
    ["5Xi", null],
    [null, null],
    [{}, null],
  ])("%s -> %s", (quantity, expected) => {
    expect(parseQuantity(quantity)).toBe(expected);
  });
});

describe("formatCpu", () => {
  it.each([
    ["500m", "0.5 CPU"],
    ["2", "2 CPU"],
    ["1250m", "1.25 CPU"],
    [null, "—"],
  ])("%s -> %s", (quantity, expected) => {
    expect(formatCpu(quantity)).toBe(expected);
  });
});
