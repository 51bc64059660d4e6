import { useEffect } from "react";
import { Link, Outlet, useLocation } from "react-router";
import { isUnauthenticated } from "../api/errors";
import { ErrorNotice, Loading } from "../components/Feedback";
import { Icon } from "../components/Icon";
import { Logo } from "../components/Logo";
import { goToLogin, useAccount } from "../features/account";
import { paths } from "./paths";
import styles from "./Shell.module.css";
import { ServerSwitcher } from "./ServerSwitcher";
import { UserMenu } from "./UserMenu";

function navClass(active: boolean): string {
  return active ? `${styles.navLink} ${styles.active}` : `${styles.navLink}`;
}

/** The frame of every page: header (switcher, account), navigation, the page. Only for a
 *  logged-in account; anyone else goes to the login page, which comes back here. */
export function Shell() {
  const account = useAccount();
  const { pathname } = useLocation();
  const loggedOut = isUnauthenticated(account.error);
  useEffect(() => {
    if (loggedOut) goToLogin();
  }, [loggedOut]);

  if (account.isPending || loggedOut) {
    return (
      <div className={styles.centered}>
        <Loading label={loggedOut ? "Taking you to the login page…" : "Loading your account…"} />
      </div>
    );
  }
  if (account.isError) {
    return (
      <div className={styles.centered}>
        <ErrorNotice
          title="The panel could not load your account"
          error={account.error}
          onRetry={() => void account.refetch()}
        />
      </div>
    );
  }
  return (
    <div className={styles.shell}>
      <a className={styles.skip} href="#main">
        Skip to content
      </a>
      <header className={styles.header}>
        <Link className={styles.brand} to={paths.servers()} aria-label="StellarStack: your servers">
          <Logo className={styles.logo} />
          <span className={styles.brandName}>StellarStack</span>
        </Link>
        <div className={styles.headerEnd}>
          <ServerSwitcher />
          <UserMenu account={account.data} />
        </div>
      </header>
      <nav className={styles.sidebar} aria-label="Main">
        <Link
          to={paths.servers()}
          className={navClass(pathname === "/" || pathname.startsWith("/server/"))}
          aria-current={pathname === "/" ? "page" : undefined}
        >
          <Icon name="server" />
          Servers
        </Link>
        <span className={styles.navSpacer} />
        <a className={styles.navLink} href="/docs">
          <Icon name="book" />
          API
        </a>
      </nav>
      <main id="main" className={styles.main} tabIndex={-1}>
        <div className={styles.content}>
          <Outlet />
        </div>
      </main>
    </div>
  );
}
