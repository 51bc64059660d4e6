// What a server's status says, read from the GameServer status the panel passes on (an object
// the API does not type field by field: it is the resource's own status, camelCase).
import type { Server } from "../../api/client";
import { parseQuantity } from "./format";

export interface PortView {
  name: string;
  protocol: string;
  port: number;
}

export interface StatusView {
  reason: string;
  message: string;
  address: string | null;
  ports: PortView[];
  startedAt: Date | null;
  stateSince: Date | null;
  restartCount: number;
  lastExit: { exitCode: number | null; reason: string } | null;
}

type Loose = Record<string, unknown>;

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function date(value: unknown): Date | null {
  if (typeof value !== "string") return null;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

function record(value: unknown): Loose | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Loose)
    : null;
}

export function readStatus(status: Loose): StatusView {
  const ports = Array.isArray(status.ports) ? status.ports : [];
  const exit = record(status.lastExit);
  return {
    reason: text(status.reason),
    message: text(status.message),
    address: text(status.address) || null,
    ports: ports.flatMap((entry) => {
      const port = record(entry);
      return port !== null && typeof port.port === "number"
        ? [{ name: text(port.name), protocol: text(port.protocol) || "TCP", port: port.port }]
        : [];
    }),
    startedAt: date(status.startedAt),
    stateSince: date(status.stateSince),
    restartCount: typeof status.restartCount === "number" ? status.restartCount : 0,
    lastExit:
      exit === null
        ? null
        : {
            exitCode: typeof exit.exitCode === "number" ? exit.exitCode : null,
            reason: text(exit.reason),
          },
  };
}

export interface AddressView {
  address: string;
  /** What the address is for: the port's name and protocol, or the allocation's note. */
  label: string;
}

/** Where players connect, primary first: the ports the status reports at its address, else the
 *  server's allocations. */
export function serverAddresses(server: Server): AddressView[] {
  const status = readStatus(server.status);
  if (status.address !== null && status.ports.length > 0) {
    return status.ports.map((port) => ({
      address: `${status.address ?? ""}:${port.port}`,
      label: `${port.name || "port"} (${port.protocol})`,
    }));
  }
  return server.allocations.map((allocation, index) => ({
    address: `${allocation.alias ?? allocation.ip}:${allocation.port}`,
    label: index === 0 ? "primary" : (allocation.alias ?? "additional"),
  }));
}

export interface Limits {
  cpu: unknown;
  memoryBytes: number | null;
  diskBytes: number | null;
}

/** The resources the server's spec asks for (what the panel could read of it). */
export function readLimits(server: Server): Limits {
  const resources = record(record(server.spec)?.resources) ?? {};
  return {
    cpu: resources.cpu ?? null,
    memoryBytes: parseQuantity(resources.memory),
    diskBytes: parseQuantity(resources.disk),
  };
}

/** The blueprint's image the server runs, if its spec says. */
export function readImage(server: Server): string | null {
  return text(record(server.spec)?.image) || null;
}
