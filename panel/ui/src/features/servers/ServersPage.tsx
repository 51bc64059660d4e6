import { useId } from "react";
import { useSearchParams } from "react-router";
import { useDebounced } from "../../app/useDebounced";
import { usePageTitle } from "../../app/usePageTitle";
import { Button } from "../../components/Button";
import { EmptyState, ErrorNotice, Loading } from "../../components/Feedback";
import { Icon } from "../../components/Icon";
import { useAccount } from "../account";
import { PER_PAGE, useServers } from "./api";
import {
  type ListFilters,
  type Ownership,
  byOwnership,
  readFilters,
  writeFilters,
} from "./filters";
import { ServerCard } from "./ServerCard";
import styles from "./ServersPage.module.css";
import { STATES, stateLabel } from "./state";

const OWNERSHIP: { value: Ownership; label: string }[] = [
  { value: "all", label: "All" },
  { value: "mine", label: "Mine" },
  { value: "shared", label: "Shared with me" },
];

export function ServersPage() {
  usePageTitle("Servers");
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const account = useAccount();
  // Searching asks the panel (the name filter is the API's): wait for a pause in typing.
  const name = useDebounced(filters.query, 250);
  const servers = useServers({ name, state: filters.state, page: filters.page });
  const searchId = useId();
  const stateId = useId();

  const change = (next: Partial<ListFilters>) => {
    setParams(writeFilters({ ...filters, page: 1, ...next }), { replace: true });
  };

  const accountId = account.data?.id ?? "";
  const admin = account.data?.role === "admin";
  const shown = byOwnership(servers.data?.items ?? [], filters.ownership, accountId);
  const total = servers.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  const filtered = filters.query !== "" || filters.state !== "" || filters.ownership !== "all";

  return (
    <>
      <div className={styles.header}>
        <h1>Servers</h1>
        {servers.data && (
          <span className={styles.count}>
            {total} {total === 1 ? "server" : "servers"}
          </span>
        )}
        {servers.isFetching && !servers.isPending && (
          <span className={styles.refreshing} role="status">
            Refreshing…
          </span>
        )}
      </div>
      <div className={styles.toolbar}>
        <div className={styles.search}>
          <label htmlFor={searchId} className="visually-hidden">
            Search servers by name
          </label>
          <span className={styles.searchIcon} aria-hidden="true">
            <Icon name="search" />
          </span>
          <input
            id={searchId}
            className={styles.searchInput}
            type="search"
            placeholder="Search by name"
            value={filters.query}
            onChange={(event) => {
              change({ query: event.target.value });
            }}
          />
        </div>
        <label htmlFor={stateId} className="visually-hidden">
          Filter by state
        </label>
        <select
          id={stateId}
          value={filters.state}
          onChange={(event) => {
            change({ state: event.target.value });
          }}
        >
          <option value="">Any state</option>
          {STATES.map((state) => (
            <option key={state} value={state}>
              {stateLabel(state)}
            </option>
          ))}
        </select>
        <fieldset className={styles.segmented}>
          <legend className="visually-hidden">Whose servers</legend>
          {OWNERSHIP.map(({ value, label }) => (
            <label key={value} className={styles.segment}>
              <input
                type="radio"
                name="ownership"
                value={value}
                checked={filters.ownership === value}
                onChange={() => {
                  change({ ownership: value });
                }}
              />
              <span>{label}</span>
            </label>
          ))}
        </fieldset>
      </div>

      {servers.isPending ? (
        <Loading label="Loading your servers…" />
      ) : servers.isError ? (
        <ErrorNotice
          title="The servers could not be listed"
          error={servers.error}
          onRetry={() => void servers.refetch()}
        />
      ) : shown.length === 0 ? (
        filtered ? (
          <EmptyState title="No server matches these filters">
            <Button
              small
              onClick={() => {
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear the filters
            </Button>
          </EmptyState>
        ) : (
          <EmptyState title="You have no servers yet">
            Servers you own or that others share with you appear here. An administrator creates
            servers; an owner can invite you to theirs.
          </EmptyState>
        )
      ) : (
        <ul className={styles.grid} aria-label="Servers">
          {shown.map((server) => (
            <li key={server.id}>
              <ServerCard
                server={server}
                relation={server.owner_id === accountId ? "own" : admin ? "administered" : "shared"}
              />
            </li>
          ))}
        </ul>
      )}

      {pages > 1 && (
        <nav className={styles.pager} aria-label="Pages">
          <Button
            small
            disabled={filters.page <= 1}
            onClick={() => {
              change({ page: filters.page - 1 });
            }}
          >
            Previous
          </Button>
          <span>
            Page {filters.page} of {pages}
          </span>
          <Button
            small
            disabled={filters.page >= pages}
            onClick={() => {
              change({ page: filters.page + 1 });
            }}
          >
            Next
          </Button>
        </nav>
      )}
    </>
  );
}
