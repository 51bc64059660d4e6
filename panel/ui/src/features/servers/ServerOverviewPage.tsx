import { Fragment } from "react";
import type { ConsoleStats, Server } from "../../api/client";
import { useNow } from "../../app/useNow";
import { usePageTitle } from "../../app/usePageTitle";
import { Card } from "../../components/Card";
import { CopyButton } from "../../components/CopyButton";
import { useConsole } from "../console";
import { useBlueprints, useServerStats } from "./api";
import { formatBytes, formatCpu, formatDuration, formatPercent } from "./format";
import styles from "./ServerOverviewPage.module.css";
import { useCan, useServerScope } from "./ServerScope";
import { ServerStateBadge } from "./ServerStateBadge";
import { readImage, readLimits, readStatus, serverAddresses } from "./status";

export function ServerOverviewPage() {
  const { server } = useServerScope();
  usePageTitle(server.name);
  return (
    <div className={styles.grid}>
      <AddressesCard server={server} />
      <StateCard server={server} />
      <UsageCard server={server} />
      <BlueprintCard server={server} />
      <DetailsCard server={server} />
    </div>
  );
}

function AddressesCard({ server }: { server: Server }) {
  const addresses = serverAddresses(server);
  return (
    <Card title="Connect">
      {addresses.length === 0 ? (
        <p className={styles.note}>
          {server.state === "Running"
            ? "This server has no ports that players connect to."
            : "No address yet: the server gets its ports when it starts."}
        </p>
      ) : (
        <ul className={styles.addresses}>
          {addresses.map(({ address, label }) => (
            <li key={`${address}-${label}`} className={styles.address}>
              <span className={styles.addressText}>
                <span className={styles.addressValue}>{address}</span>
                <span className={styles.label}>{label}</span>
              </span>
              <CopyButton text={address} label={address} />
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

function StateCard({ server }: { server: Server }) {
  const status = readStatus(server.status);
  const now = useNow(1000);
  const running = server.state === "Running" || server.state === "Starting";
  return (
    <Card title="State">
      <div>
        <ServerStateBadge state={server.suspended ? "Suspended" : server.state} />
      </div>
      {(status.reason || status.message) && (
        <p className={styles.reason}>
          {status.reason && <strong>{status.reason}</strong>}
          {status.reason && status.message && ": "}
          {status.message}
        </p>
      )}
      <dl className={styles.facts}>
        {running && status.startedAt && (
          <>
            <dt>Up for</dt>
            <dd>{formatDuration(now - status.startedAt.getTime())}</dd>
          </>
        )}
        {status.stateSince && (
          <>
            <dt>Since</dt>
            <dd>{status.stateSince.toLocaleString()}</dd>
          </>
        )}
        {status.restartCount > 0 && (
          <>
            <dt>Crash restarts</dt>
            <dd>{status.restartCount}</dd>
          </>
        )}
        {status.lastExit && (
          <>
            <dt>Last exit</dt>
            <dd>
              {status.lastExit.reason || "exited"}
              {status.lastExit.exitCode !== null && ` (code ${status.lastExit.exitCode})`}
            </dd>
          </>
        )}
        {server.backend_error && (
          <>
            <dt>Status</dt>
            <dd>Could not be read just now: {server.backend_error}</dd>
          </>
        )}
      </dl>
    </Card>
  );
}

function UsageCard({ server }: { server: Server }) {
  const canWatch = useCan("console.read");
  // Live usage arrives over the console socket (kept open while this page is shown).
  const { snapshot } = useConsole(server.id, canWatch);
  const stats = useServerStats(server.id).data;
  const limits = readLimits(server);
  let note: string | null = null;
  if (!canWatch) note = "Live usage needs the console.read permission on this server.";
  else if (snapshot.connection.phase === "closed") note = snapshot.connection.message;
  else if (stats === null) note = "Waiting for the first sample…";
  return (
    <Card title="Live usage" className={styles.wide}>
      {note !== null && <p className={styles.note}>{note}</p>}
      {canWatch && stats && <Meters stats={stats} limits={limits} />}
    </Card>
  );
}

function Meters({ stats, limits }: { stats: ConsoleStats; limits: ReturnType<typeof readLimits> }) {
  const memoryLimit = stats.memoryLimitBytes ?? limits.memoryBytes;
  return (
    <div className={styles.meters}>
      <Meter
        label="CPU"
        value={formatPercent(stats.cpuPercent)}
        note={`of ${formatCpu(limits.cpu)}`}
        unavailable={stats.unavailable.cpu}
      />
      <Meter
        label="Memory"
        value={formatBytes(stats.memoryBytes)}
        note={`of ${formatBytes(memoryLimit)}`}
        fraction={
          stats.memoryBytes !== null && memoryLimit ? stats.memoryBytes / memoryLimit : null
        }
        unavailable={stats.unavailable.memory}
      />
      <Meter
        label="Network"
        value={`↓ ${formatBytes(stats.networkRxBytes)}`}
        note={`↑ ${formatBytes(stats.networkTxBytes)}`}
        unavailable={stats.unavailable.network}
      />
      <Meter
        label="Disk"
        value={formatBytes(stats.diskBytes)}
        note={`of ${formatBytes(limits.diskBytes)}`}
        fraction={
          stats.diskBytes !== null && limits.diskBytes ? stats.diskBytes / limits.diskBytes : null
        }
        unavailable={stats.unavailable.disk}
      />
    </div>
  );
}

function Meter({
  label,
  value,
  note,
  fraction = null,
  unavailable,
}: {
  label: string;
  value: string;
  note: string;
  fraction?: number | null;
  unavailable: string | undefined;
}) {
  return (
    <div className={styles.meter}>
      <span className={styles.label}>{label}</span>
      <span className={styles.meterValue}>{unavailable ? "—" : value}</span>
      {fraction !== null && !unavailable && (
        <progress className={styles.bar} max={1} value={Math.min(1, fraction)} aria-label={label}>
          {formatPercent(fraction * 100)}
        </progress>
      )}
      <span className={styles.meterNote}>{unavailable ?? note}</span>
    </div>
  );
}

function BlueprintCard({ server }: { server: Server }) {
  const blueprints = useBlueprints();
  const blueprint = blueprints.data?.find((candidate) => candidate.name === server.blueprint);
  const image = readImage(server);
  const spec = server.spec ?? {};
  const variables =
    typeof spec.variables === "object" && spec.variables !== null
      ? Object.entries(spec.variables as Record<string, unknown>)
      : [];
  return (
    <Card title="Blueprint">
      <dl className={styles.facts}>
        <dt>Blueprint</dt>
        <dd>{server.blueprint}</dd>
        {blueprint?.description && (
          <>
            <dt>About</dt>
            <dd>{blueprint.description}</dd>
          </>
        )}
        {image && (
          <>
            <dt>Image</dt>
            <dd className={styles.mono}>{image}</dd>
          </>
        )}
        {variables.map(([name, value]) => (
          <Fragment key={name}>
            <dt className={styles.mono}>{name}</dt>
            <dd className={styles.mono}>{String(value)}</dd>
          </Fragment>
        ))}
      </dl>
    </Card>
  );
}

function DetailsCard({ server }: { server: Server }) {
  const limits = readLimits(server);
  return (
    <Card title="Resources and limits">
      <dl className={styles.facts}>
        <dt>CPU</dt>
        <dd>{formatCpu(limits.cpu)}</dd>
        <dt>Memory</dt>
        <dd>{formatBytes(limits.memoryBytes)}</dd>
        <dt>Disk</dt>
        <dd>{formatBytes(limits.diskBytes)}</dd>
        <dt>Runs on</dt>
        <dd>{server.target_kind === "kubernetes" ? "Kubernetes" : "a Docker node"}</dd>
        <dt>Ports</dt>
        <dd>up to {server.allocation_limit}</dd>
        <dt>Backups</dt>
        <dd>up to {server.backup_limit}</dd>
        <dt>Schedules</dt>
        <dd>up to {server.schedule_limit}</dd>
        <dt>Created</dt>
        <dd>{new Date(server.created_at).toLocaleString()}</dd>
      </dl>
    </Card>
  );
}
