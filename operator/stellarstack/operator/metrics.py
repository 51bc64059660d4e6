"""The operator's Prometheus metrics, kept in one explicit registry (no module globals).

- `stellarstack_operator_reconcile_duration_seconds{kind, outcome}`: one reconcile pass;
- `stellarstack_gameservers{state}`: the GameServers this operator manages, by state. It is
  computed at scrape time from one entry per GameServer (the state its last pass wrote), so a
  status change moves a GameServer from one state to another and a deletion removes it; an
  operator restart starts empty and re-learns every GameServer on resume — never counted twice;
- `stellarstack_operator_errors_total{kind, error}`: failed passes and refused requests, by
  error class or `http_<status>`;
- `stellarstack_operator_api_requests_total{client, method}`: HTTP requests to the API server,
  from the operator's own client (`kubernetes`) and Kopf's (`kopf`): a bench divides them by
  the number of reconcile passes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stellarstack.api.states import GameServerState

# Reconcile passes range from a few milliseconds (nothing to do) to the grace period of a stop.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class GameServerStates:
    """The last known state of each managed GameServer, keyed by (namespace, name).

    Thread-safe: the scrape runs in the HTTP server's thread, the updates in the event loop.
    """

    _states: dict[tuple[str, str], GameServerState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, namespace: str, name: str, state: GameServerState) -> None:
        with self._lock:
            self._states[(namespace, name)] = state

    def forget(self, namespace: str, name: str) -> None:
        """The GameServer is gone or no longer this operator's; unknown keys are fine."""
        with self._lock:
            self._states.pop((namespace, name), None)

    def counts(self) -> dict[GameServerState, int]:
        """Every state, with zero for the empty ones (so each series exists from the start)."""
        totals = dict.fromkeys(GameServerState, 0)
        with self._lock:
            for state in self._states.values():
                totals[state] += 1
        return totals


class _StatesCollector(Collector):
    def __init__(self, states: GameServerStates) -> None:
        self._states = states

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "stellarstack_gameservers",
            "GameServers managed by this operator, by state",
            labels=["state"],
        )
        for state, count in self._states.counts().items():
            family.add_metric([state.value], count)
        yield family


def error_label(error: BaseException) -> str:
    """`http_<status>` for an API error (any client's exception with an int `status`),
    else the exception's class name."""
    status = getattr(error, "status", None)
    if isinstance(status, int) and 100 <= status <= 599:
        return f"http_{status}"
    return type(error).__name__


class Metrics:
    """Every metric of one operator process, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reconcile_duration = Histogram(
            "stellarstack_operator_reconcile_duration_seconds",
            "Duration of one reconcile pass",
            ["kind", "outcome"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "stellarstack_operator_errors",
            "Failed reconcile passes and refused API requests, by error class or HTTP status",
            ["kind", "error"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "stellarstack_operator_api_requests",
            "HTTP requests sent to the Kubernetes API server",
            ["client", "method"],
            registry=self.registry,
        )
        self.gameservers = GameServerStates()
        self.registry.register(_StatesCollector(self.gameservers))

    def observe_reconcile(self, kind: str, outcome: str, seconds: float) -> None:
        self.reconcile_duration.labels(kind=kind, outcome=outcome).observe(seconds)

    def count_error(self, kind: str, error: BaseException) -> None:
        self.errors.labels(kind=kind, error=error_label(error)).inc()

    def count_request(self, client: str, method: str) -> None:
        self.api_requests.labels(client=client, method=method.upper()).inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> Any:
        """Serve `/metrics` from a daemon thread; returns the server (call `shutdown()`)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every sample as (name, labels, value); for tests and the bench."""
        for metric in self.registry.collect():
            for sample in metric.samples:
                yield sample.name, dict(sample.labels), float(sample.value)
