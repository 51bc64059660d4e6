import { useNow } from "../../app/useNow";
import { Button } from "../../components/Button";
import { Icon } from "../../components/Icon";
import type { ConnectionPhase, ConsoleConnection } from "./connection";
import styles from "./ConnectionStatus.module.css";

export function connectionLabel(phase: ConnectionPhase, now: number): string {
  switch (phase.phase) {
    case "connecting":
      return phase.attempt === 0 ? "Connecting…" : `Reconnecting (attempt ${phase.attempt})…`;
    case "open":
      return "Live";
    case "waiting":
      return `Reconnecting in ${Math.max(1, Math.ceil((phase.retryAt - now) / 1000))} s`;
    case "closed":
      return "Disconnected";
  }
}

/** Whether the console is live, and if not, why and when it tries again. */
export function ConnectionStatus({
  connection,
  phase,
}: {
  connection: ConsoleConnection;
  phase: ConnectionPhase;
}) {
  const now = useNow(500);
  return (
    <div className={styles.bar}>
      <span
        className={`${styles.pill} ${styles[phase.phase]}`}
        role="status"
        data-phase={phase.phase}
      >
        <span className={styles.dot} aria-hidden="true" />
        {connectionLabel(phase, now)}
      </span>
      {(phase.phase === "waiting" || phase.phase === "closed") && (
        <span className={styles.message}>{phase.message}</span>
      )}
      {phase.phase === "waiting" && (
        <Button
          small
          variant="ghost"
          onClick={() => {
            connection.retryNow();
          }}
        >
          Reconnect now
        </Button>
      )}
    </div>
  );
}

/** The node dropped output lines to keep up; say how many, so gaps in the log are explained. */
export function SkippedNotice({ skipped }: { skipped: number }) {
  if (skipped === 0) return null;
  return (
    <p className={styles.notice} role="status">
      <Icon name="alert" />
      The server wrote faster than the console shows: {skipped}{" "}
      {skipped === 1 ? "line was" : "lines were"} skipped.
    </p>
  );
}
