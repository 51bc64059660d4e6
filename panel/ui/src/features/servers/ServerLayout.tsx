import { Link, NavLink, Outlet, useParams } from "react-router";
import type { Server } from "../../api/client";
import { ApiError } from "../../api/errors";
import { paths } from "../../app/paths";
import { ErrorNotice, Loading } from "../../components/Feedback";
import { Icon, type IconName } from "../../components/Icon";
import { useServer } from "./api";
import styles from "./ServerLayout.module.css";
import { ServerPowerButtons } from "./ServerPowerButtons";
import { ServerScope, useCan } from "./ServerScope";
import { ServerStateBadge } from "./ServerStateBadge";

/** The pages of one server, in tab order. A new server page adds itself here (and a route in
 *  app/routes.tsx); `node` is the permission without which its tab is not shown. */
const SERVER_PAGES: { path: string; label: string; icon: IconName; node: string | null }[] = [
  { path: "", label: "Overview", icon: "overview", node: null },
  { path: "console", label: "Console", icon: "terminal", node: "console.read" },
];

export function ServerLayout() {
  const { serverId = "" } = useParams();
  const server = useServer(serverId);
  if (server.isPending) return <Loading label="Loading the server…" />;
  if (server.isError) {
    const missing = server.error instanceof ApiError && server.error.status === 404;
    return (
      <>
        <Link className={styles.back} to={paths.servers()}>
          ← All servers
        </Link>
        <ErrorNotice
          title={
            missing
              ? "No such server, or it is not shared with you"
              : "The server could not be loaded"
          }
          error={server.error}
          {...(missing ? {} : { onRetry: () => void server.refetch() })}
        />
      </>
    );
  }
  return (
    <ServerScope server={server.data}>
      <ServerHeader server={server.data} />
      <ServerTabs serverId={server.data.id} />
      <Outlet />
    </ServerScope>
  );
}

function ServerHeader({ server }: { server: Server }) {
  return (
    <>
      <Link className={styles.back} to={paths.servers()}>
        ← All servers
      </Link>
      <div className={styles.header}>
        <div className={styles.title}>
          <div className={styles.nameRow}>
            <h1 className={styles.name}>{server.name}</h1>
            <ServerStateBadge state={server.suspended ? "Suspended" : server.state} />
          </div>
          {server.description && <p className={styles.description}>{server.description}</p>}
        </div>
        <ServerPowerButtons />
      </div>
      {server.suspended && (
        <p className={styles.suspended} role="status">
          An administrator suspended this server: it cannot be started until it is unsuspended.
        </p>
      )}
    </>
  );
}

function ServerTab({ serverId, page }: { serverId: string; page: (typeof SERVER_PAGES)[number] }) {
  const allowed = useCan(page.node ?? "");
  if (page.node !== null && !allowed) return null;
  const to = page.path ? `${paths.server(serverId)}/${page.path}` : paths.server(serverId);
  return (
    <NavLink
      to={to}
      end
      className={({ isActive }) => (isActive ? `${styles.tab} ${styles.activeTab}` : styles.tab)}
    >
      <Icon name={page.icon} />
      {page.label}
    </NavLink>
  );
}

function ServerTabs({ serverId }: { serverId: string }) {
  return (
    <nav className={styles.tabs} aria-label="Server pages">
      {SERVER_PAGES.map((page) => (
        <ServerTab key={page.label} serverId={serverId} page={page} />
      ))}
    </nav>
  );
}
