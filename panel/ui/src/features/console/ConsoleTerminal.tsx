import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { useEffect, useRef } from "react";
import type { ConsoleConnection } from "./connection";
import styles from "./ConsoleTerminal.module.css";
import { terminalText } from "./output";

// The theme's colours (styles/theme.css), and an ANSI palette readable on its dark background.
const THEME = {
  background: "#0a0d12",
  foreground: "#e7eaf0",
  cursor: "#0a0d12",
  selectionBackground: "#34406a",
  black: "#1d222c",
  red: "#ff7b72",
  green: "#4ccb7a",
  yellow: "#e7b549",
  blue: "#8aa4ff",
  magenta: "#d2a8ff",
  cyan: "#56d4dd",
  white: "#c9d1d9",
  brightBlack: "#7d8796",
  brightRed: "#ffa198",
  brightGreen: "#7ee2a0",
  brightYellow: "#f2cc60",
  brightBlue: "#a9bcff",
  brightMagenta: "#e2c5ff",
  brightCyan: "#86e6ec",
  brightWhite: "#ffffff",
};

const HIDE_CURSOR = "\x1b[?25l";

/** The console's output in a terminal emulator (colours, cursor movement, wide lines); what
 *  the connection already showed is written first. Input goes through the command field. */
export function ConsoleTerminal({ connection }: { connection: ConsoleConnection }) {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const terminal = new Terminal({
      convertEol: true,
      disableStdin: true,
      scrollback: 5000,
      fontFamily: '"DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace',
      fontSize: 13,
      lineHeight: 1.2,
      theme: THEME,
    });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(element);
    fit.fit();
    terminal.write(HIDE_CURSOR + connection.lines().map(terminalText).join(""));
    const stopLines = connection.onLine((line) => {
      terminal.write(terminalText(line));
    });
    let frame = 0;
    const resize = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        fit.fit();
      });
    });
    resize.observe(element);
    return () => {
      stopLines();
      resize.disconnect();
      cancelAnimationFrame(frame);
      terminal.dispose();
    };
  }, [connection]);

  return (
    <div className={styles.frame}>
      <div
        ref={container}
        className={styles.terminal}
        role="log"
        aria-label="Console output"
        data-testid="console-output"
      />
    </div>
  );
}
