// GameServer states (stellarstack.api.states.GameServerState) as the UI shows them, and which
// power actions make sense in each. The panel decides what it accepts; this only avoids
// offering a Start for a running server.
import type { PowerAction } from "../../api/client";

export type Tone = "ok" | "busy" | "off" | "bad";

const TONES: Record<string, Tone> = {
  Running: "ok",
  Starting: "busy",
  Stopping: "busy",
  Installing: "busy",
  Pending: "busy",
  Restoring: "busy",
  Stopped: "off",
  Crashed: "bad",
  InstallFailed: "bad",
  Error: "bad",
  Suspended: "bad",
};

export const STATES = Object.keys(TONES);

export function stateTone(state: string): Tone {
  return TONES[state] ?? "off";
}

/** "InstallFailed" -> "Install failed". */
export function stateLabel(state: string): string {
  const words = state.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const OFFERED: Record<PowerAction, ReadonlySet<string>> = {
  start: new Set(["Stopped", "Crashed", "Error"]),
  stop: new Set(["Running", "Starting", "Crashed"]),
  restart: new Set(["Running", "Starting", "Crashed", "Stopped"]),
  kill: new Set(["Running", "Starting", "Stopping"]),
};

export function powerOffered(action: PowerAction, state: string, suspended: boolean): boolean {
  return !suspended && OFFERED[action].has(state);
}
