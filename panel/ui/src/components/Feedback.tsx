// The three states every page shows before (or instead of) its content: loading, an error with
// the panel's own message and the field it names, and "nothing here yet".
import type { ReactNode } from "react";
import { ApiError, describeError } from "../api/errors";
import { Button } from "./Button";
import styles from "./Feedback.module.css";
import { Icon } from "./Icon";

export function Loading({ label }: { label: string }) {
  return (
    <div className={styles.loading} role="status">
      <span className={styles.spinner} aria-hidden="true" />
      {label}
    </div>
  );
}

export function ErrorNotice({
  error,
  title = "That did not work",
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  const field = error instanceof ApiError ? error.field : null;
  const code = error instanceof ApiError ? error.code : null;
  return (
    <div className={`${styles.box} ${styles.error}`} role="alert">
      <div className={styles.title}>
        <Icon name="alert" />
        {title}
      </div>
      <p className={styles.detail}>{describeError(error)}</p>
      {(field ?? code) !== null && (
        <span className={styles.field}>
          {field !== null && <>field: {field} </>}
          {code !== null && <>code: {code}</>}
        </span>
      )}
      {onRetry && (
        <Button small onClick={onRetry}>
          Try again
        </Button>
      )}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className={styles.box}>
      <div className={styles.title}>{title}</div>
      {children && <div className={styles.muted}>{children}</div>}
    </div>
  );
}
