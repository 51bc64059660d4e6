"""Node heartbeats: the panel asks every Docker node who it is and what it has
(`GET /api/v1/node` with the node token) periodically, and records when it last answered
properly (a node is online while that is recent), its capacity report and the last error.

Asking an authenticated route, not `/healthz`, is the point: a node that answers but refuses
the panel's token, or a different agent at the registered address, is not a working node."""

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
from stellarstack.panel.nodecapacity import Heard, read_node_answer

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0


async def check_nodes(context: PanelContext, client: httpx.AsyncClient) -> None:
    """One round: every node asked once, concurrently; results written in one transaction."""
    with transaction(context.sessions) as db:
        nodes = [(n.id, n.url, n.token, n.agent_id) for n in db.scalars(select(Node)).all()]

    async def ask(url: str, token: str, agent_id: str) -> Heard:
        try:
            response = await client.get(
                f"{url}/api/v1/node", headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            return Heard(error=f"unreachable: {type(exc).__name__}: {exc}"[:500])
        return read_node_answer(response.status_code, response.content, agent_id=agent_id)

    results = await asyncio.gather(*(ask(url, token, agent) for _, url, token, agent in nodes))
    with transaction(context.sessions) as db:
        now = context.clock()
        for (node_id, *_), heard in zip(nodes, results, strict=True):
            node = db.get(Node, node_id)
            if node is None:
                continue
            if heard.report is not None:
                node.last_heartbeat_at = now
                node.capacity_report = heard.report.stored()
            node.last_error = heard.error


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
