// The servers page keeps its filters in the address (`?q=paper&state=Running&owner=shared`),
// so a filtered list can be bookmarked and the back button restores it.
import type { Server } from "../../api/client";

export type Ownership = "all" | "mine" | "shared";

export interface ListFilters {
  query: string;
  state: string;
  ownership: Ownership;
  page: number;
}

export function readFilters(params: URLSearchParams): ListFilters {
  const ownership = params.get("owner");
  const page = Number.parseInt(params.get("page") ?? "1", 10);
  return {
    query: params.get("q") ?? "",
    state: params.get("state") ?? "",
    ownership: ownership === "mine" || ownership === "shared" ? ownership : "all",
    page: Number.isFinite(page) && page >= 1 ? page : 1,
  };
}

export function writeFilters(filters: ListFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.query) params.set("q", filters.query);
  if (filters.state) params.set("state", filters.state);
  if (filters.ownership !== "all") params.set("owner", filters.ownership);
  if (filters.page > 1) params.set("page", String(filters.page));
  return params;
}

/** Own and shared servers are told apart here: the API lists both for a user. */
export function byOwnership(servers: Server[], ownership: Ownership, accountId: string): Server[] {
  if (ownership === "all") return servers;
  return servers.filter((server) => (server.owner_id === accountId) === (ownership === "mine"));
}
