import { type QueryClient, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, createContext, useContext, useState } from "react";
import type { ConsoleConnection } from "./connection";
import { ConsoleRegistry } from "./registry";
import { serverKeys } from "../servers";
import type { Server } from "../../api/client";

const RegistryContext = createContext<ConsoleRegistry | null>(null);

/** Live events go into the same cache the pages read: a status message updates the server's
 *  state wherever it is shown, stats become the server's `stats` query. */
function feedCache(
  queryClient: QueryClient,
  serverId: string,
  connection: ConsoleConnection,
): void {
  connection.onMessage((message) => {
    if (message.type === "status") {
      queryClient.setQueryData<Server>(serverKeys.detail(serverId), (server) =>
        server === undefined ? server : { ...server, state: message.state },
      );
      void queryClient.invalidateQueries({ queryKey: serverKeys.lists() });
    } else if (message.type === "stats") {
      queryClient.setQueryData(serverKeys.stats(serverId), message);
    }
  });
}

export function ConsoleProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [registry] = useState(
    () =>
      new ConsoleRegistry((serverId, connection) => {
        feedCache(queryClient, serverId, connection);
      }),
  );
  return <RegistryContext.Provider value={registry}>{children}</RegistryContext.Provider>;
}

export function useConsoleRegistry(): ConsoleRegistry {
  const registry = useContext(RegistryContext);
  if (registry === null) throw new Error("useConsoleRegistry needs a <ConsoleProvider>");
  return registry;
}
