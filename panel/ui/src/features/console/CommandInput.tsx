import { type KeyboardEvent, useId, useState } from "react";
import { Button } from "../../components/Button";
import styles from "./CommandInput.module.css";
import type { ConsoleConnection, ConsoleSnapshot } from "./connection";

const REFUSALS: Record<string, string> = {
  not_running: "The server is not running: start it to send commands.",
  rate_limited: "Too many commands at once: that one was dropped.",
};

/** The console's command line: Enter sends, Up and Down walk through what was sent. */
export function CommandInput({
  connection,
  snapshot,
}: {
  connection: ConsoleConnection;
  snapshot: ConsoleSnapshot;
}) {
  const [line, setLine] = useState("");
  const [unsent, setUnsent] = useState(false);
  const inputId = useId();
  const hintId = useId();
  const open = snapshot.connection.phase === "open";

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    const recalled =
      event.key === "ArrowUp"
        ? connection.history.previous(line)
        : event.key === "ArrowDown"
          ? connection.history.next()
          : null;
    if (recalled !== null) {
      event.preventDefault();
      setLine(recalled);
    }
  };

  const refusal = snapshot.refusal;
  return (
    <>
      <form
        className={styles.form}
        onSubmit={(event) => {
          event.preventDefault();
          if (line.trim() === "") return;
          if (connection.send({ type: "command", line })) {
            connection.history.record(line);
            setLine("");
            setUnsent(false);
          } else {
            setUnsent(true);
          }
        }}
      >
        <div className={styles.prompt}>
          <span className={styles.caret} aria-hidden="true">
            ›
          </span>
          <label htmlFor={inputId} className="visually-hidden">
            Console command
          </label>
          <input
            id={inputId}
            className={styles.input}
            value={line}
            autoComplete="off"
            autoCapitalize="off"
            spellCheck={false}
            maxLength={1000}
            placeholder={open ? "Type a command" : "Waiting for the console…"}
            aria-describedby={hintId}
            onChange={(event) => {
              setLine(event.target.value);
            }}
            onKeyDown={onKeyDown}
          />
        </div>
        <Button type="submit" variant="primary" disabled={!open}>
          Send
        </Button>
      </form>
      <p id={hintId} className={styles.hint}>
        Enter sends the command; ↑ and ↓ bring back earlier ones.
      </p>
      {unsent && !open && (
        <p className={styles.refusal} role="status">
          Not sent: the console is not connected.
        </p>
      )}
      {refusal !== null && (
        <p className={styles.refusal} role="status">
          {REFUSALS[refusal.code] ?? refusal.message}
        </p>
      )}
    </>
  );
}
