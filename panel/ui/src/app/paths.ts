// Addresses of the app's pages. Every page has one, so it can be linked, bookmarked, reloaded
// and reached with the back button; the panel serves the app at each (web/spa.py).

export const paths = {
  servers: () => "/",
  server: (id: string) => `/server/${encodeURIComponent(id)}`,
  serverConsole: (id: string) => `/server/${encodeURIComponent(id)}/console`,
};

/** The same page of another server: `/server/a/console` -> `/server/b/console`. */
export function switchServerPath(pathname: string, serverId: string): string {
  const match = /^\/server\/[^/]+(\/[^?#]*)?$/.exec(pathname);
  const page = match?.[1] ?? "";
  return paths.server(serverId) + (page === "/" ? "" : page);
}
