import { Link } from "react-router";
import type { Server } from "../../api/client";
import { buttonClass } from "../../components/Button";
import { CopyButton } from "../../components/CopyButton";
import { Icon } from "../../components/Icon";
import styles from "./ServerCard.module.css";
import { formatBytes, formatCpu } from "./format";
import { ServerPowerButtons } from "./ServerPowerButtons";
import { ServerScope, useCan } from "./ServerScope";
import { ServerStateBadge } from "./ServerStateBadge";
import { readLimits, serverAddresses } from "./status";

/** One server in the list: state, where to connect, what it may use, power. */
export type Relation = "own" | "shared" | "administered";

export function ServerCard({ server, relation }: { server: Server; relation: Relation }) {
  return (
    <ServerScope server={server}>
      <ServerCardBody server={server} relation={relation} />
    </ServerScope>
  );
}

function ServerCardBody({ server, relation }: { server: Server; relation: Relation }) {
  const address = serverAddresses(server)[0];
  const limits = readLimits(server);
  const canReadConsole = useCan("console.read");
  const overview = `/server/${encodeURIComponent(server.id)}`;
  return (
    <article className={styles.card} aria-label={server.name} data-server-id={server.id}>
      <div className={styles.top}>
        <Link className={styles.name} to={overview}>
          {server.name}
        </Link>
        <ServerStateBadge state={server.suspended ? "Suspended" : server.state} />
      </div>
      <div className={styles.meta}>
        <span>{server.blueprint}</span>
        <span>{server.target_kind === "kubernetes" ? "Kubernetes" : "Docker node"}</span>
        {relation === "shared" && <span className={styles.tag}>Shared with you</span>}
        {relation === "administered" && <span className={styles.tag}>Another user's</span>}
      </div>
      <div className={styles.address}>
        {address ? (
          <>
            <span className={styles.addressText} title={address.address}>
              {address.address}
            </span>
            <CopyButton text={address.address} label={`address of ${server.name}`} />
          </>
        ) : (
          <span className={styles.muted}>No ports</span>
        )}
      </div>
      {(limits.cpu !== null || limits.memoryBytes !== null || limits.diskBytes !== null) && (
        <dl className={styles.limits}>
          <div>
            <dt>CPU</dt>
            <dd>{formatCpu(limits.cpu)}</dd>
          </div>
          <div>
            <dt>Memory</dt>
            <dd>{formatBytes(limits.memoryBytes)}</dd>
          </div>
          <div>
            <dt>Disk</dt>
            <dd>{formatBytes(limits.diskBytes)}</dd>
          </div>
        </dl>
      )}
      {server.backend_error && <p className={styles.problem}>{server.backend_error}</p>}
      <div className={styles.actions}>
        <ServerPowerButtons small withKill={false} />
        {canReadConsole && (
          <Link className={buttonClass("ghost", true)} to={`${overview}/console`}>
            <Icon name="terminal" size={16} />
            Console
          </Link>
        )}
      </div>
    </article>
  );
}
