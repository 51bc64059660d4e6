import styles from "./ServerStateBadge.module.css";
import { stateLabel, stateTone } from "./state";

export function ServerStateBadge({ state }: { state: string }) {
  return (
    <span className={`${styles.badge} ${styles[stateTone(state)]}`} data-state={state}>
      <span className={styles.dot} aria-hidden="true" />
      {stateLabel(state)}
    </span>
  );
}
