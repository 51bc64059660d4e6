import { useEffect } from "react";

/** The browser tab's title for the page being shown. */
export function usePageTitle(title: string | null): void {
  useEffect(() => {
    document.title = title ? `${title} · StellarStack` : "StellarStack";
  }, [title]);
}
