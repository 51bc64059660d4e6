"""The console WebSocket through the panel to a real node (nodeproxy + dockerd + the toy game):
output and a command's effect, per-message permissions, closing on revocation, suspension
and lost permission, connection caps, size and flood limits; every message it sends has the
shape the OpenAPI document gives, and the example client in examples/ works against it. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import ActivityLog, Subuser
from support.panel import Panel, PanelClient, create_user
from support.panel_node import (
    NodeProcess,
    add_subuser,
    register_server,
    remove_containers,
    run_toy,
    served,
    set_server,
    start_node,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

ORIGIN = "https://testserver"  # the test panel's public_url
SUBPROTOCOL = "stellarstack.console.v1"
EXAMPLE_CLIENT = Path(__file__).resolve().parents[3] / "examples" / "console_client.py"


@pytest.fixture(scope="module")
def toy_node(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, toy_image: str
) -> Iterator[tuple[NodeProcess, str]]:
    """One node with one running toy server, shared by the tests (and both databases)."""
    node = start_node(tmp_path_factory.mktemp("console-node"))
    name = f"console-{uuid.uuid4().hex[:6]}"
    try:
        run_toy(node, name)
        yield node, name
    finally:
        node.stop()
        remove_containers(docker_client, node)


def ws_url(base: str, server_id: str) -> str:
    return base.replace("http", "ws", 1) + f"/api/servers/{server_id}/console"


def cookie_headers(client: PanelClient, origin: str = ORIGIN) -> dict[str, str]:
    session = client.raw.cookies.get("stellarstack_session")
    assert session
    return {"Cookie": f"stellarstack_session={session}", "Origin": origin}


async def until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], within: float = 20
) -> dict[str, Any]:
    """The first message matching `predicate` (bounded in time)."""
    deadline = time.monotonic() + within
    seen: list[dict[str, Any]] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if predicate(message):
            return message
        seen.append(message)
    raise AssertionError(f"no matching message within {within} s; saw {seen[-10:]}")


def output(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == "output" and text in m.get("line", "")


async def close_of(ws: ClientConnection, within: float = 15) -> tuple[int, str]:
    """Read until the panel closes the socket; its close code and reason."""
    deadline = time.monotonic() + within
    frame = None
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except ConnectionClosed as closed:
        frame = closed.rcvd
        if frame is None:
            raise AssertionError("closed without a close frame") from closed
    except TimeoutError:
        pass
    if frame is None:
        raise AssertionError(f"the socket stayed open for {within} s")
    return frame.code, frame.reason


def owner_and_server(panel: Panel, node: NodeProcess, name: str) -> tuple[PanelClient, str]:
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=name)
    return panel.login("owner@example.com"), server_id


async def test_console_shows_output_and_a_commands_effect(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    new_name = f"renamed-{uuid.uuid4().hex[:6]}"
    with served(panel) as base:
        async with connect(
            ws_url(base, server_id),
            additional_headers=cookie_headers(owner),
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            status = await until(ws, lambda m: m["type"] == "status")
            assert status["state"] == "Running"
            await until(ws, output("ready name="))  # the backlog
            await ws.send(json.dumps({"type": "command", "line": f"name {new_name}"}))
            await until(ws, output(f"name is now {new_name}"))
            # The rename took effect in the game: its status line carries the new name.
            await ws.send(json.dumps({"type": "command", "line": "status"}))
            await until(ws, output(f"TOY name={new_name}"))
            stats = await until(ws, lambda m: m["type"] == "stats", within=15)
            assert stats["memoryBytes"] > 0
    with transaction(panel.context.sessions) as db:
        events = [
            (row.event, row.properties.get("line"))
            for row in db.query(ActivityLog).filter(ActivityLog.server_id == server_id)
        ]
    assert ("server.console.command", f"name {new_name}") in events


async def test_console_accepts_the_panels_extra_origins_and_only_those(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    """`extra_origins` (what `panel local` sets for 127.0.0.1 beside localhost) are the panel's
    own pages too; any other origin stays refused."""
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    panel.context.settings = panel.context.settings.model_copy(
        update={"extra_origins": ["http://127.0.0.1:8000"]}
    )
    with served(panel) as base:
        url = ws_url(base, server_id)
        async with connect(
            url, additional_headers=cookie_headers(owner, "http://127.0.0.1:8000")
        ) as ws:
            await until(ws, output("ready name="))
        async with connect(
            url, additional_headers=cookie_headers(owner, "http://127.0.0.1:8001")
        ) as ws:
            assert (await close_of(ws))[0] == 4403


async def test_console_refuses_other_origins_missing_and_query_credentials(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    key = owner.create_api_key(["console:read"])
    with served(panel) as base:
        url = ws_url(base, server_id)
        async with connect(
            url, additional_headers=cookie_headers(owner, "https://evil.test")
        ) as ws:
            code, reason = await close_of(ws)
            assert code == 4403
            assert "origin" in reason
        async with connect(url) as ws:
            assert (await close_of(ws))[0] == 4401
        # An API key in the query string is not a credential (it would land in access logs).
        async with connect(f"{url}?token={key}") as ws:
            assert (await close_of(ws))[0] == 4401
        async with connect(url, subprotocols=[SUBPROTOCOL, f"stellarstack.bearer.{key}"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == SUBPROTOCOL
            await until(ws, output("ready name="))
        async with connect(
            ws_url(base, "no-such-server"), additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            code, reason = await close_of(ws)
            assert code == 4403
            assert "not found" in reason


async def test_read_only_subuser_sees_output_but_cannot_type_or_power(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    viewer_id = create_user(panel, admin, "viewer@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=name)
    add_subuser(panel, server_id, viewer_id, ["console.read"])
    owner, viewer = panel.login("owner@example.com"), panel.login("viewer@example.com")
    word = uuid.uuid4().hex[:8]
    with served(panel) as base:
        url = ws_url(base, server_id)
        async with (
            connect(url, additional_headers=cookie_headers(viewer)) as watching,
            connect(url, additional_headers=cookie_headers(owner)) as typing,
        ):
            await until(watching, output("ready name="))
            await watching.send(json.dumps({"type": "command", "line": f"say {word}-viewer"}))
            refused = await until(watching, lambda m: m["type"] == "error")
            assert refused["code"] == "forbidden"
            assert "console.write" in refused["message"]
            await watching.send(json.dumps({"type": "power", "action": "stop"}))
            refused = await until(watching, lambda m: m["type"] == "error")
            assert refused["code"] == "forbidden"
            assert "control.stop" in refused["message"]
            # The viewer's socket stays open: it sees what the owner types.
            await typing.send(json.dumps({"type": "command", "line": f"say {word}-owner"}))
            await until(watching, output(f"[say] {word}-owner"))
    with node.client() as client:
        lines = client.get(f"/api/v1/namespaces/default/gameservers/{name}/logs").json()["lines"]
    assert not any(f"{word}-viewer" in line for line in lines)


async def test_revocation_suspension_and_lost_permission_close_open_sockets(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    panel.context.settings.console_recheck_seconds = 1
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    helper_id = create_user(panel, admin, "helper@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=name)
    add_subuser(panel, server_id, helper_id, ["console.*"])
    owner = panel.login("owner@example.com")
    by_session = panel.login("owner@example.com")
    helper = panel.login("helper@example.com")
    key = owner.create_api_key(["console:read"])
    key_id = owner.get("/api/account/api-keys").json()[0]["id"]
    url = None
    with served(panel) as base:
        url = ws_url(base, server_id)
        async with (
            connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as with_key,
            connect(url, additional_headers=cookie_headers(by_session)) as with_session,
            connect(url, additional_headers=cookie_headers(helper)) as with_grant,
        ):
            for ws in (with_key, with_session, with_grant):
                await until(ws, lambda m: m["type"] == "status")
            started = time.monotonic()
            assert owner.delete(f"/api/account/api-keys/{key_id}").status_code == 204
            assert by_session.post("/api/auth/logout").status_code == 204
            with transaction(panel.context.sessions) as db:
                db.query(Subuser).filter(Subuser.user_id == helper_id).delete()
            closes = await asyncio.gather(
                close_of(with_key), close_of(with_session), close_of(with_grant)
            )
            elapsed = time.monotonic() - started
        assert [code for code, _ in closes] == [4401, 4401, 4403]
        assert "revoked" in closes[0][1]
        assert "session" in closes[1][1]
        assert elapsed < 8, f"closing took {elapsed:.1f} s"

        async with connect(url, additional_headers=cookie_headers(owner)) as watching:
            await until(watching, lambda m: m["type"] == "status")
            set_server(panel, server_id, suspended=True)
            code, reason = await close_of(watching, within=8)
            assert (code, reason) == (4409, "the server is suspended")
        async with connect(url, additional_headers=cookie_headers(owner)) as refused:
            assert (await close_of(refused))[0] == 4409


async def test_connection_caps_refuse_extra_sockets(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    panel.context.settings.console_connections_per_user = 2
    panel.context.settings.console_connections_per_server = 3
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    other_id = create_user(panel, admin, "other@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=name)
    add_subuser(panel, server_id, other_id, ["console.read"])
    owner, other = panel.login("owner@example.com"), panel.login("other@example.com")
    with served(panel) as base:
        url = ws_url(base, server_id)
        first = await connect(url, additional_headers=cookie_headers(owner))
        second = await connect(url, additional_headers=cookie_headers(owner))
        try:
            async with connect(url, additional_headers=cookie_headers(owner)) as third:
                code, reason = await close_of(third)
                assert code == 1013
                assert "user" in reason
            async with connect(url, additional_headers=cookie_headers(other)) as fits:
                await until(fits, lambda m: m["type"] == "status")
                async with connect(url, additional_headers=cookie_headers(other)) as over:
                    code, reason = await close_of(over)
                    assert code == 1013
                    assert "server" in reason
            # A closed socket frees its place.
            await first.close()
            await asyncio.sleep(0.5)
            async with connect(url, additional_headers=cookie_headers(owner)) as again:
                await until(again, lambda m: m["type"] == "status")
        finally:
            await first.close()
            await second.close()


async def test_oversized_message_and_flood_close_the_socket(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    settings = panel.context.settings
    settings.console_message_bytes = 256
    settings.console_messages_per_second = 2
    settings.console_flood_close_after = 5
    owner, server_id = owner_and_server(panel, node, name)
    with served(panel) as base:
        url = ws_url(base, server_id)
        async with connect(url, additional_headers=cookie_headers(owner)) as ws:
            await until(ws, lambda m: m["type"] == "status")
            await ws.send(json.dumps({"type": "command", "line": "say " + "x" * 400}))
            code, _ = await close_of(ws)
            assert code == 1009
        async with connect(url, additional_headers=cookie_headers(owner)) as ws:
            await until(ws, lambda m: m["type"] == "status")
            for _ in range(40):
                try:
                    await ws.send(json.dumps({"type": "command", "line": "players"}))
                except ConnectionClosed:
                    break
            await until(ws, lambda m: m.get("code") == "rate_limited")
            code, reason = await close_of(ws)
            assert code == 1008
            assert "slow down" in reason


def test_console_log_over_http(
    panel: Panel, toy_node: tuple[NodeProcess, str], tmp_path: Path
) -> None:
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    lines = owner.get(f"/api/servers/{server_id}/logs", params={"tail": 500}).json()["lines"]
    assert any("ready name=" in line for line in lines)
    key = owner.create_api_key(["files:read"])
    refused = panel.client(api_key=key).get(f"/api/servers/{server_id}/logs")
    assert refused.status_code == 403
    assert "console:read" in refused.json()["error"]["message"]


async def test_power_through_the_console_and_output_follows_a_restart(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, _ = toy_node
    name = f"power-{uuid.uuid4().hex[:6]}"
    run_toy(node, name)
    owner, server_id = owner_and_server(panel, node, name)
    lines: list[str] = []
    with served(panel) as base:
        async with connect(ws_url(base, server_id), additional_headers=cookie_headers(owner)) as ws:
            await until(ws, output("boots=1"))
            await ws.send(json.dumps({"type": "power", "action": "restart"}))
            deadline = time.monotonic() + 90
            acknowledged = None
            while not any("boots=2" in line for line in lines):
                left = deadline - time.monotonic()
                assert left > 0, f"no second boot within 90 s: {lines}"
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), left))
                except TimeoutError:
                    raise AssertionError(f"no second boot within 90 s: {lines}") from None
                if message["type"] == "power":
                    acknowledged = message
                elif message["type"] == "output":
                    lines.append(message["line"])
    assert acknowledged is not None
    assert acknowledged["action"] == "restart"
    assert acknowledged["request"]
    assert any(line.startswith("stopped") for line in lines)
    # The backlog the second attachment replayed was not sent again.
    assert not any("boots=1" in line for line in lines)
    with transaction(panel.context.sessions) as db:
        restarts = db.query(ActivityLog).filter(
            ActivityLog.server_id == server_id, ActivityLog.event == "server.power.restart"
        )
        assert restarts.count() == 1


def documented_console(base: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The console's entry in the served panel's OpenAPI document, and the document."""
    document: dict[str, Any] = httpx.get(f"{base}/openapi.json", timeout=30).json()
    return document["x-websockets"]["/api/servers/{server_id}/console"], document


async def test_every_message_has_the_documented_shape(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    word = uuid.uuid4().hex[:8]
    received: list[dict[str, Any]] = []

    def keep(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
        def seen(message: dict[str, Any]) -> bool:
            received.append(message)
            return predicate(message)

        return seen

    with served(panel) as base:
        console, document = documented_console(base)
        async with connect(
            ws_url(base, server_id),
            additional_headers=cookie_headers(owner),
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == console["subprotocol"]
            await until(ws, keep(output("ready name=")))
            await ws.send(json.dumps({"type": "command", "line": f"say {word}"}))
            await until(ws, keep(output(f"[say] {word}")))
            await ws.send("not json")
            await until(ws, keep(lambda m: m["type"] == "error"))
            # Start on a running server: accepted, and it keeps running.
            await ws.send(json.dumps({"type": "power", "action": "start"}))
            await until(ws, keep(lambda m: m["type"] == "power"))
            await until(ws, keep(lambda m: m["type"] == "stats"), within=15)
    assert {m["type"] for m in received} >= {"status", "output", "error", "power", "stats"}
    schema = {**console["messages"]["server"], "components": document["components"]}
    validator = OAS31Validator(schema)
    for message in received:
        assert validator.is_valid(message), (message, list(validator.iter_errors(message)))


def run_example_client(
    base: str, api_key: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE_CLIENT), "--panel", base, *arguments],
        env={**os.environ, "STELLARSTACK_API_KEY": api_key},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_example_console_client_sends_a_command_and_prints_the_answer(
    panel: Panel, toy_node: tuple[NodeProcess, str]
) -> None:
    node, name = toy_node
    owner, server_id = owner_and_server(panel, node, name)
    key = owner.create_api_key(["servers:read", "console:read", "console:write"])
    viewer_key = owner.create_api_key(["console:read"])
    word = uuid.uuid4().hex[:8]
    with served(panel) as base:
        # By name (looked up with servers:read), a command, and its answer printed.
        done = run_example_client(
            base,
            key,
            "--server",
            name,
            "--expect",
            f"[say] {word}",
            "--seconds",
            "60",
            f"say {word}",
        )
        assert done.returncode == 0, done.stderr
        assert f"[say] {word}" in done.stdout.splitlines()
        assert "[server is Running]" in done.stderr
        # A key without console:write: the panel refuses the command and says why.
        refused = run_example_client(
            base, viewer_key, "--server", server_id, "--seconds", "60", f"say {word}-viewer"
        )
        assert refused.returncode == 2, refused.stderr
        assert "refused: forbidden: you lack the 'console.write' permission" in refused.stderr
        # An invalid key: the panel closes the socket with 4401.
        closed = run_example_client(
            base, key + "x", "--server", server_id, "--seconds", "30", "status"
        )
        assert closed.returncode == 3, closed.stderr
        assert "the panel closed the console: 4401" in closed.stderr
