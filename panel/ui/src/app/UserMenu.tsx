import { useEffect, useId, useRef, useState } from "react";
import type { Account } from "../api/client";
import { describeError } from "../api/errors";
import { Icon } from "../components/Icon";
import { useLogout } from "../features/account";
import styles from "./UserMenu.module.css";

function initials(name: string): string {
  const letters = name
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => word.charAt(0).toUpperCase());
  return (letters.slice(0, 2).join("") || "?").slice(0, 2);
}

/** The account's name in the header; opens a panel with the account and the way out. */
export function UserMenu({ account }: { account: Account }) {
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const root = useRef<HTMLDivElement>(null);
  const trigger = useRef<HTMLButtonElement>(null);
  const logout = useLogout();

  useEffect(() => {
    if (!open) return;
    const onPointer = (event: PointerEvent) => {
      if (!root.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        setOpen(false);
        trigger.current?.focus();
      }
    };
    document.addEventListener("pointerdown", onPointer);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("pointerdown", onPointer);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);

  return (
    <div className={styles.menu} ref={root}>
      <button
        ref={trigger}
        type="button"
        className={styles.trigger}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => {
          setOpen((value) => !value);
        }}
      >
        <span className={styles.avatar} aria-hidden="true">
          {initials(account.name)}
        </span>
        <span className="visually-hidden">Account menu: </span>
        <span className={styles.name} data-testid="account-name">
          {account.name}
        </span>
        <Icon name="chevron" size={16} />
      </button>
      <div id={panelId} className={styles.panel} hidden={!open}>
        <div className={styles.who}>
          <strong>{account.name}</strong>
          <span className={styles.email} data-testid="account-email">
            {account.email}
          </span>
          {account.role === "admin" && <span className={styles.email}>Administrator</span>}
        </div>
        <a className={styles.item} href="/docs">
          <Icon name="book" />
          API documentation
        </a>
        <button
          type="button"
          className={styles.item}
          disabled={logout.isPending}
          onClick={() => {
            logout.mutate();
          }}
        >
          <Icon name="logout" />
          Log out
        </button>
        {logout.isError && (
          <p className={styles.error} role="alert">
            {describeError(logout.error)}
          </p>
        )}
      </div>
    </div>
  );
}
