import { useEffect, useSyncExternalStore } from "react";
import { useConsoleRegistry } from "./ConsoleProvider";
import type { ConsoleConnection, ConsoleSnapshot } from "./connection";

/** The server's console connection, open while the calling component is mounted (`enabled`). */
export function useConsole(
  serverId: string,
  enabled: boolean,
): { connection: ConsoleConnection; snapshot: ConsoleSnapshot } {
  const registry = useConsoleRegistry();
  const connection = registry.get(serverId);
  useEffect(
    () => (enabled ? registry.acquire(serverId) : undefined),
    [registry, serverId, enabled],
  );
  const snapshot = useSyncExternalStore(connection.subscribe, connection.getSnapshot);
  return { connection, snapshot };
}
