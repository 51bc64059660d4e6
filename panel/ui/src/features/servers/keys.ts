// One query key per resource (TanStack Query): invalidating `serverKeys.all` refreshes every
// server query, `lists()` every list, `detail(id)` one server.
export interface ServerFilter {
  name: string;
  state: string;
  page: number;
}

export const serverKeys = {
  all: ["servers"] as const,
  lists: () => [...serverKeys.all, "list"] as const,
  list: (filter: ServerFilter) => [...serverKeys.lists(), filter] as const,
  detail: (id: string) => [...serverKeys.all, "detail", id] as const,
  permissions: (id: string) => [...serverKeys.all, "permissions", id] as const,
  stats: (id: string) => [...serverKeys.all, "stats", id] as const,
};
