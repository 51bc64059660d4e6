import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type ConsoleStats, type PowerAction, type Server, api, unwrap } from "../../api/client";
import { useAccount } from "../account";
import { type ServerFilter, serverKeys } from "./keys";

export const PER_PAGE = 50;

export function useServers(filter: ServerFilter) {
  return useQuery({
    queryKey: serverKeys.list(filter),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET("/api/servers", {
          params: {
            query: {
              name: filter.name || null,
              state: filter.state || null,
              page: filter.page,
              per_page: PER_PAGE,
            },
          },
          signal,
        }),
      ),
    placeholderData: (previous) => previous,
    // The list shows states: keep them fresh while the page is open.
    refetchInterval: 10_000,
  });
}

export function useServer(serverId: string) {
  return useQuery({
    queryKey: serverKeys.detail(serverId),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET("/api/servers/{server_id}", { params: { path: { server_id: serverId } }, signal }),
      ),
    refetchInterval: 15_000,
  });
}

/** What the caller may do on a server. Owners and admins may do everything, so they need no
 *  request; subusers ask the panel. */
export function useServerPermissions(server: Server | undefined) {
  const account = useAccount();
  const ownsIt =
    server !== undefined &&
    account.data !== undefined &&
    (account.data.role === "admin" || server.owner_id === account.data.id);
  return useQuery({
    queryKey: serverKeys.permissions(server?.id ?? ""),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET("/api/servers/{server_id}/permissions", {
          params: { path: { server_id: server?.id ?? "" } },
          signal,
        }),
      ),
    enabled: server !== undefined && account.data !== undefined && !ownsIt,
    staleTime: 60_000,
  });
}

/** Live usage, written into the cache by the console connection (features/console). */
export function useServerStats(serverId: string) {
  return useQuery<ConsoleStats | null>({
    queryKey: serverKeys.stats(serverId),
    queryFn: () => null,
    enabled: false,
    initialData: null,
  });
}

export function usePower(serverId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (action: PowerAction) =>
      unwrap(
        api.POST("/api/servers/{server_id}/power", {
          params: { path: { server_id: serverId } },
          body: { action },
        }),
      ),
    onSettled: () => queryClient.invalidateQueries({ queryKey: serverKeys.all }),
  });
}

export function useBlueprints() {
  return useQuery({
    queryKey: ["blueprints"],
    queryFn: ({ signal }) => unwrap(api.GET("/api/blueprints", { signal })),
    staleTime: 5 * 60_000,
  });
}
