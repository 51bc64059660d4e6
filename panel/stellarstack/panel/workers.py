"""Background tasks the panel runs while it serves (each an async context manager factory
taking the `PanelContext`): webhook delivery, server status polling, ..."""

from __future__ import annotations

from stellarstack.panel.api.app import BackgroundTask
from stellarstack.panel.services.heartbeat import node_heartbeats
from stellarstack.panel.services.status_sync import status_sync
from stellarstack.panel.services.webhooks import delivery_worker


def default_background_tasks() -> list[BackgroundTask]:
    """What `stellarstack panel serve` runs beside the API."""
    return [delivery_worker, node_heartbeats, status_sync]
