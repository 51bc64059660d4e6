// Messages of the console WebSocket. Their types come from the panel's OpenAPI document
// (`ConsoleServerMessage`, `ConsoleClientMessage`); this checks that a received text is one.
import type { ConsoleServerMessage } from "../../api/client";

const SERVER_MESSAGE_TYPES = new Set(["status", "output", "stats", "power", "error"]);

/** The message in a received text, or null when it is not one the panel documents. */
export function parseServerMessage(text: string): ConsoleServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const type = (value as Record<string, unknown>).type;
  if (typeof type !== "string" || !SERVER_MESSAGE_TYPES.has(type)) return null;
  if (type === "output" && typeof (value as Record<string, unknown>).line !== "string") return null;
  return value as ConsoleServerMessage;
}

export const CONSOLE_SUBPROTOCOL = "stellarstack.console.v1";

/** The console's address for a page served at `location` (same host, ws: or wss:). */
export function consoleUrl(
  location: Pick<Location, "protocol" | "host">,
  serverId: string,
): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/servers/${encodeURIComponent(serverId)}/console`;
}
