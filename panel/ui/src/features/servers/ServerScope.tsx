import { type ReactNode, createContext, useContext } from "react";
import type { Server } from "../../api/client";
import { useAccount } from "../account";
import { useServerPermissions } from "./api";
import { type HeldNodes, holds } from "./permissions";

interface Scope {
  server: Server;
  nodes: HeldNodes | null;
}

const ScopeContext = createContext<Scope | null>(null);

/** Makes `server` and the caller's permissions on it known to the components inside. */
export function ServerScope({ server, children }: { server: Server; children: ReactNode }) {
  const account = useAccount();
  const permissions = useServerPermissions(server);
  const ownsIt =
    account.data !== undefined &&
    (account.data.role === "admin" || server.owner_id === account.data.id);
  const nodes: HeldNodes | null = ownsIt ? "all" : (permissions.data?.permissions ?? null);
  return <ScopeContext.Provider value={{ server, nodes }}>{children}</ScopeContext.Provider>;
}

export function useServerScope(): Scope {
  const scope = useContext(ScopeContext);
  if (scope === null) throw new Error("useServerScope needs a <ServerScope>");
  return scope;
}

/** Whether the caller holds permission `node` on the server in scope (false until known). */
export function useCan(node: string): boolean {
  const { nodes } = useServerScope();
  return nodes !== null && holds(nodes, node);
}
