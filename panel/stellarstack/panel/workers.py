"""Background tasks the panel runs while it serves (each an async context manager factory
taking the `PanelContext`): webhook delivery, node heartbeats, server status sync.

They must run in one process at a time — two would deliver every webhook twice and poll every
node twice — however many workers (`serve --workers N`) and replicas serve the API. So
`stellarstack panel serve` runs them under a lease in the database (`services.lease`): the
process holding it runs them and renews it every third of `background_lease_seconds`; the
others try to take it as often. When the holder dies, its lease runs out and another process
takes over; when it cannot renew (the database is unreachable) it stops the tasks once the
lease it last renewed has run out by its own clock, before anyone else may take it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator

from stellarstack.panel.api.app import BackgroundTask
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.services import lease
from stellarstack.panel.services.heartbeat import node_heartbeats
from stellarstack.panel.services.status_sync import status_sync
from stellarstack.panel.services.webhooks import delivery_worker

log = logging.getLogger(__name__)
LEASE_NAME = "background-tasks"


def default_background_tasks() -> list[BackgroundTask]:
    """What `stellarstack panel serve` runs beside the API."""
    return [delivery_worker, node_heartbeats, status_sync]


def process_identity() -> str:
    """`host:pid:random`: unique per process, and says which one it is."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def under_lease(tasks: list[BackgroundTask], *, name: str = LEASE_NAME) -> BackgroundTask:
    """`tasks` run only while this process holds the lease `name`."""

    @contextlib.asynccontextmanager
    async def leased(context: PanelContext) -> AsyncIterator[None]:
        holder = process_identity()
        seconds = context.settings.background_lease_seconds
        supervisor = asyncio.create_task(
            _hold_and_run(context, tasks, name=name, holder=holder, seconds=seconds),
            name="background-lease",
        )
        try:
            yield
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            try:
                await asyncio.to_thread(_give_up, context, name, holder)
            except Exception:  # the lease runs out by itself
                log.warning("could not give up the background lease", exc_info=True)

    return leased


def _take(context: PanelContext, name: str, holder: str, seconds: float) -> bool:
    with transaction(context.sessions) as db:
        return lease.take(db, name=name, holder=holder, seconds=seconds)


def _give_up(context: PanelContext, name: str, holder: str) -> None:
    with transaction(context.sessions) as db:
        lease.give_up(db, name=name, holder=holder)


async def _renewed_until(context: PanelContext, name: str, holder: str, seconds: float) -> float:
    """The monotonic time until which this process may assume the lease; 0 when another
    process holds it. Measured from before asking, so it ends no later than the lease."""
    asked_at = time.monotonic()
    held = await asyncio.to_thread(_take, context, name, holder, seconds)
    return asked_at + seconds if held else 0.0


async def _hold_and_run(
    context: PanelContext, tasks: list[BackgroundTask], *, name: str, holder: str, seconds: float
) -> None:
    interval = seconds / 3
    while True:
        try:
            valid_until = await _renewed_until(context, name, holder, seconds)
        except Exception:
            log.warning("could not ask for the background lease; retrying", exc_info=True)
            valid_until = 0.0
        if not valid_until:
            await asyncio.sleep(interval)
            continue
        log.info("this process runs the background tasks (%s)", holder)
        try:
            await _run_while_held(context, tasks, name=name, holder=holder, until=valid_until)
        except Exception:  # a task that fails to start must not end the supervision
            log.exception("the background tasks failed; trying again")
            await asyncio.sleep(interval)


async def _run_while_held(
    context: PanelContext, tasks: list[BackgroundTask], *, name: str, holder: str, until: float
) -> None:
    """Run `tasks` and renew the lease every third of its time; return once it is lost."""
    seconds = context.settings.background_lease_seconds
    interval = seconds / 3
    valid_until = until
    async with contextlib.AsyncExitStack() as running:
        for task in tasks:
            await running.enter_async_context(task(context))
        context.metrics.background_leader.set(1)
        try:
            while True:
                await asyncio.sleep(min(interval, max(valid_until - time.monotonic(), 0)))
                try:
                    renewed: float | None = await _renewed_until(context, name, holder, seconds)
                except Exception:
                    log.warning("could not renew the background lease", exc_info=True)
                    renewed = None
                if renewed == 0.0:
                    log.warning("another process took the background lease")
                    return
                if renewed is not None:
                    valid_until = renewed
                elif time.monotonic() >= valid_until:
                    log.warning("the background lease ran out unrenewed; stopping the tasks")
                    return
        finally:
            context.metrics.background_leader.set(0)
