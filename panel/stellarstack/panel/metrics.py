"""The panel's Prometheus metrics, in a registry of its own per running panel (two panels in
one process, as in tests, never share counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class PanelMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "stellarstack_panel_http_requests",
            "HTTP requests answered, by route template (not the raw path) and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "stellarstack_panel_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.activity_events = Counter(
            "stellarstack_panel_activity_events",
            "Activity log entries written, by event.",
            ["event"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "stellarstack_panel_webhook_delivery_attempts",
            "Webhook delivery attempts by outcome: delivered, retry (failed, will retry), "
            "failed (out of attempts) or refused (destination not allowed).",
            ["outcome"],
            registry=self.registry,
        )
        self.background_leader = Gauge(
            "stellarstack_panel_background_leader",
            "1 while this process runs the background tasks (webhook delivery, node "
            "heartbeats, status sync): one process at a time, across workers and replicas.",
            registry=self.registry,
        )
        self.webhook_delivery_seconds = Histogram(
            "stellarstack_panel_webhook_delivery_duration_seconds",
            "Time of one webhook delivery attempt.",
            registry=self.registry,
        )
