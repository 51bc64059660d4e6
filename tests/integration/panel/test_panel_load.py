"""The panel keeps answering however many requests arrive at once: 256 concurrent connections
against a pool of 2 connections, on the real server (uvicorn on loopback), SQLite and
PostgreSQL. Not a timing test: it checks that every request is answered as it should be —
reads, writes, and denials (which write to the activity log on their own) — and that nothing
waits until the pool gives up. Before the database gate, requests took pooled connections in
one worker thread and gave them back several thread hand-offs later, and such a burst stalled
the panel until pool checkouts timed out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import ActivityLog, Node, Server, TargetKind
from support.panel import Clock, Panel, create_user, panel_settings
from support.panel_node import served

CONNECTIONS = 256
ROUNDS = 3
SERVERS = 8


@pytest.fixture
def small_pool_panel(tmp_path: Path, panel_db_url: str, panel_clock: Clock) -> Iterator[Panel]:
    context = build_context(panel_settings(tmp_path, panel_db_url, database_pool_size=2))
    context.clock = panel_clock
    running = Panel(context=context, app=create_app(context), clock=panel_clock)
    yield running
    running.close()


def _servers_of(panel: Panel, owner_id: str) -> list[str]:
    with transaction(panel.context.sessions) as db:
        node = Node(name="unused", url="http://127.0.0.1:9", token="t" * 64, agent_id="load-test")
        db.add(node)
        db.flush()
        ids = []
        for index in range(SERVERS):
            server = Server(
                name=f"Server {index}",
                owner_id=owner_id,
                target_kind=TargetKind.DOCKER,
                node_id=node.id,
                namespace="default",
                resource_name=f"server-{index}",
                blueprint="toy",
                state="Running",
            )
            db.add(server)
            db.flush()
            ids.append(server.id)
        return ids


def _count(panel: Panel, event_name: str) -> int:
    with transaction(panel.context.sessions) as db:
        found = db.scalar(
            select(func.count()).select_from(ActivityLog).where(ActivityLog.event == event_name)
        )
        return int(found or 0)


def test_256_concurrent_connections_are_all_answered_with_a_pool_of_two(
    small_pool_panel: Panel,
) -> None:
    panel = small_pool_panel
    admin = panel.setup_admin()
    user_id = create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")
    key = player.create_api_key(["servers:read", "servers:write"])
    server_ids = _servers_of(panel, user_id)

    async def one(client: httpx.AsyncClient, index: int) -> tuple[str, int]:
        server_id = server_ids[index % SERVERS]
        kind = ("list", "allocations", "rename", "denied")[index % 4]
        if kind == "list":
            answer = await client.get("/api/servers")
        elif kind == "allocations":
            answer = await client.get(f"/api/servers/{server_id}/allocations")
        elif kind == "rename":
            answer = await client.patch(f"/api/servers/{server_id}", json={"name": f"R{index}"})
        else:  # the key lacks account:write: refused, and the refusal logged
            answer = await client.post(
                "/api/account/api-keys", json={"name": "x", "scopes": ["servers:read"]}
            )
        return kind, answer.status_code

    async def burst(url: str) -> Counter[tuple[str, int]]:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        seen: Counter[tuple[str, int]] = Counter()
        for round_number in range(ROUNDS):
            # Fresh connections each round: 256 opened at once every time (and none left idle
            # past the server's keep-alive between rounds).
            async with httpx.AsyncClient(
                base_url=url,
                headers={"Authorization": f"Bearer {key}"},
                limits=limits,
                timeout=httpx.Timeout(240),
            ) as client:
                start = round_number * CONNECTIONS
                answers = await asyncio.gather(
                    *(one(client, index) for index in range(start, start + CONNECTIONS))
                )
                seen.update(answers)
        return seen

    with served(panel) as url:
        # A stalled panel would leave requests hanging: bounded well above any load here.
        seen = asyncio.run(asyncio.wait_for(burst(url), timeout=600))

    each = CONNECTIONS * ROUNDS // 4
    assert seen == Counter(
        {
            ("list", 200): each,
            ("allocations", 200): each,
            ("rename", 200): each,
            ("denied", 403): each,
        }
    ), seen
    # Every write and every logged denial went through, none lost to a pool timeout.
    assert _count(panel, "server.update") == each
    assert _count(panel, "auth.denied") == each
    listed = panel.client(api_key=key).get("/api/servers").json()
    assert listed["total"] == SERVERS
