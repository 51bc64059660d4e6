// The login page is the panel's own (`/login`); it returns to `next` after logging in.

/** The login page's address that comes back to `path` (a path of this panel) afterwards. */
export function loginUrl(path: string): string {
  const safe = path.startsWith("/") && !path.startsWith("//") ? path : "/";
  return safe === "/" ? "/login" : `/login?next=${encodeURIComponent(safe)}`;
}

export function goToLogin(): void {
  const { pathname, search, hash } = window.location;
  window.location.assign(loginUrl(pathname + search + hash));
}
