import { useId } from "react";
import { useLocation, useNavigate, useParams } from "react-router";
import { useServers } from "../features/servers";
import { switchServerPath } from "./paths";
import styles from "./ServerSwitcher.module.css";

/** Jumps to another server, keeping the page (console stays console). */
export function ServerSwitcher() {
  const servers = useServers({ name: "", state: "", page: 1 });
  const { serverId } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const selectId = useId();
  const items = [...(servers.data?.items ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  if (items.length === 0) return null;
  return (
    <div className={styles.switcher}>
      <label htmlFor={selectId} className="visually-hidden">
        Switch server
      </label>
      <select
        id={selectId}
        className={styles.select}
        value={serverId ?? ""}
        onChange={(event) => {
          if (event.target.value)
            void navigate(switchServerPath(location.pathname, event.target.value));
        }}
      >
        <option value="">{serverId ? "Other server…" : "Go to a server…"}</option>
        {items.map((server) => (
          <option key={server.id} value={server.id}>
            {server.name}
          </option>
        ))}
      </select>
    </div>
  );
}
