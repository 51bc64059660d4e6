// Small line icons drawn for this UI (24 x 24, stroked with the text colour). Decorative:
// every control that shows one also has a text label.
const PATHS = {
  play: "M7 4.5v15l12.5-7.5z",
  stop: "M6.5 6.5h11v11h-11z",
  restart: "M19.5 12a7.5 7.5 0 1 1-2.2-5.3M19.5 4.5v4.5H15",
  kill: "M13 2.5 5 13.5h6l-1 8 8-11h-6z",
  copy: "M9 9h10.5v10.5H9zM5 15V4.5h10.5",
  check: "M5 12.5l4.5 4.5L19 7.5",
  search: "M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM15.5 15.5 20 20",
  server: "M4 4.5h16v6H4zM4 13.5h16v6H4zM7.5 7.5h.01M7.5 16.5h.01",
  terminal: "M4.5 17l5.5-5-5.5-5M12 18.5h7.5",
  overview: "M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20.5c1-4 4-6 7.5-6s6.5 2 7.5 6",
  logout: "M9.5 20H5V4h4.5M15.5 16.5 20 12l-4.5-4.5M20 12H9.5",
  chevron: "M6.5 9.5 12 15l5.5-5.5",
  external: "M13.5 4.5H19.5V10.5M19.5 4.5 11 13M17 13.5V19.5H4.5V7H10.5",
  alert: "M12 3.5 2.5 20h19zM12 10v4.5M12 17.5h.01",
  book: "M5 4.5h9.5a3 3 0 0 1 3 3v12H8a3 3 0 0 1-3-3zM5 16.5a3 3 0 0 1 3-3h9.5",
} as const;

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 18 }: { name: IconName; size?: number }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.8"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
