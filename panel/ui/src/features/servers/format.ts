// Numbers as people read them. Pure, so the pages and the tests agree.

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "—";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${BINARY_UNITS[unit] ?? "B"}`;
}

export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${value.toFixed(value < 10 ? 1 : 0)} %`;
}

/** A duration in the two largest units: "3 d 4 h", "5 min 2 s", "12 s". */
export function formatDuration(milliseconds: number): string {
  if (!Number.isFinite(milliseconds) || milliseconds < 0) return "—";
  const seconds = Math.floor(milliseconds / 1000);
  const parts: [number, string][] = [
    [Math.floor(seconds / 86_400), "d"],
    [Math.floor((seconds % 86_400) / 3600), "h"],
    [Math.floor((seconds % 3600) / 60), "min"],
    [seconds % 60, "s"],
  ];
  const first = parts.findIndex(([amount]) => amount > 0);
  if (first === -1) return "0 s";
  return parts
    .slice(first, first + 2)
    .filter(([amount]) => amount > 0)
    .map(([amount, unit]) => `${amount} ${unit}`)
    .join(" ");
}

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const FACTORS: Record<string, number> = {
  "": 1,
  m: 0.001,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A Kubernetes quantity ("500m", "2Gi", "1.5") as a number, or null when it is not one. */
export function parseQuantity(quantity: unknown): number | null {
  if (typeof quantity === "number") return Number.isFinite(quantity) ? quantity : null;
  if (typeof quantity !== "string") return null;
  const match = QUANTITY.exec(quantity.trim());
  if (match?.[1] === undefined) return null;
  return Number.parseFloat(match[1]) * (FACTORS[match[2] ?? ""] ?? 1);
}

/** CPU cores from a quantity: "500m" -> "0.5 CPU", "2" -> "2 CPU". */
export function formatCpu(quantity: unknown): string {
  const cores = parseQuantity(quantity);
  if (cores === null) return "—";
  return `${Number(cores.toFixed(2))} CPU`;
}
