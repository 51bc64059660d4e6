"""Node heartbeats: the panel asks every Docker node's `/healthz` periodically and records when
it last answered (a node is online while that is recent) and the last error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import select

from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Node

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0


async def check_nodes(context: PanelContext, client: httpx.AsyncClient) -> None:
    """One round: every node asked once, concurrently; results written in one transaction."""
    with transaction(context.sessions) as db:
        nodes = [(n.id, n.url, n.token) for n in db.scalars(select(Node)).all()]

    async def ask(url: str, token: str) -> str | None:
        try:
            response = await client.get(
                f"{url}/healthz", headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}: {exc}"[:500]
        if response.status_code != 200:
            return f"health check answered HTTP {response.status_code}"
        return None

    results = await asyncio.gather(*(ask(url, token) for _, url, token in nodes))
    with transaction(context.sessions) as db:
        now = context.clock()
        for (node_id, _, _), error in zip(nodes, results, strict=True):
            node = db.get(Node, node_id)
            if node is None:
                continue
            if error is None:
                node.last_heartbeat_at = now
            node.last_error = error


@contextlib.asynccontextmanager
async def node_heartbeats(
    context: PanelContext, *, interval: float = INTERVAL_SECONDS
) -> AsyncIterator[None]:
    """Run heartbeat rounds every `interval` seconds while the panel serves."""

    async def loop() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            while True:
                try:
                    await check_nodes(context, client)
                except Exception:  # a failed round must not end the loop; the next may work
                    log.exception("node heartbeat round failed")
                await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="node-heartbeats")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
