"""Real game servers on a Docker node, from examples/: Armagetron Advanced and OpenTTD."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ServerKey
from stellarstack.api.states import GameServerState as G
from support.armagetronad import query, readable
from support.docker_engine import require_image
from support.node_agent import Node, converge, state_is
from support.runtime_harness import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(400)]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "armagetronad.yaml"


def example_documents() -> tuple[Blueprint, dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    blueprint = Blueprint.model_validate(next(d for d in documents if d["kind"] == "Blueprint"))
    gameserver = next(d for d in documents if d["kind"] == "GameServer")
    return blueprint, gameserver


async def test_armagetronad_install_start_console_query_stop(
    node_factory: Callable[[], Node], docker_client: Any
) -> None:
    require_image(docker_client, "localhost/stellarstack/armagetronad:1")
    node = node_factory()
    blueprint, document = example_documents()
    udp = free_port()
    document["metadata"]["namespace"] = "agent"
    document["spec"]["ports"][0]["hostPort"] = udp
    node.store.put(blueprint)
    node.store.put(GameServer.model_validate(document))
    name = document["metadata"]["name"]
    status = await converge(node, name, state_is(G.RUNNING), within=120)
    assert status.install is not None
    assert status.install.result == "Succeeded"

    data = node.settings.data_dir(ServerKey("agent", name))
    config = (data / "config" / "server_info.cfg").read_text()
    assert "SERVER_NAME Friday Night Light Cycles" in config
    assert "MAX_CLIENTS 12" in config
    assert "TALK_TO_MASTER 0" in config  # lines the edits do not name are kept

    replies = b""
    for _ in range(20):
        replies = await asyncio.to_thread(query, udp)
        if b"Friday Night Light Cycles" in readable(replies):
            break
        await asyncio.sleep(0.5)
    assert b"Friday Night Light Cycles" in readable(replies), readable(replies)[-400:]

    key = ServerKey("agent", name)
    await node.runtime.send_command(key, "SAY hello from the console")
    for _ in range(40):
        if any("hello from the console" in line for line in await node.runtime.logs(key, tail=100)):
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError(await node.runtime.logs(key, tail=100))

    stopped = GameServer.model_validate(document)
    stopped.spec.power.state = "Stopped"  # type: ignore[assignment]
    node.store.put(stopped)
    status = await converge(node, name, state_is(G.STOPPED), within=60)
    assert status.last_exit is not None
    assert status.last_exit.exit_code == 0  # QUIT on the console, not a kill

    (data / "kept.txt").write_text("still here")
    node.store.put(GameServer.model_validate(document))
    await converge(node, name, state_is(G.RUNNING), within=60)
    assert (data / "kept.txt").read_text() == "still here"


async def test_openttd_configured_started_and_saved_on_stop(
    node_factory: Callable[[], Node], docker_client: Any
) -> None:
    require_image(docker_client, "localhost/stellarstack/openttd:1")
    node = node_factory()
    documents = [d for d in yaml.safe_load_all((EXAMPLE.parent / "openttd.yaml").read_text()) if d]
    node.store.put(Blueprint.model_validate(next(d for d in documents if d["kind"] == "Blueprint")))
    document = next(d for d in documents if d["kind"] == "GameServer")
    document["metadata"]["namespace"] = "agent"
    document["spec"]["ports"][0]["hostPort"] = free_port()
    node.store.put(GameServer.model_validate(document))
    name = document["metadata"]["name"]
    await converge(node, name, state_is(G.RUNNING), within=240)
    data = node.settings.data_dir(ServerKey("agent", name))
    assert "server_name = Tycoons Anonymous" in (data / "private.cfg").read_text()

    stopped = GameServer.model_validate(document)
    stopped.spec.power.state = "Stopped"  # type: ignore[assignment]
    node.store.put(stopped)
    status = await converge(node, name, state_is(G.STOPPED), within=60)
    assert status.last_exit is not None
    assert status.last_exit.exit_code == 0  # SIGTERM is its clean stop
    assert list(data.glob("**/exit.sav")), "the game in progress was not saved on stop"
