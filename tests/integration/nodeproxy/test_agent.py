"""The node agent against a real Docker engine: stored resources become running toy servers."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ServerKey
from stellarstack.api.states import GameServerState as G
from stellarstack.nodeproxy.runtime.containers import container_name
from stellarstack.nodeproxy.store import CLUSTER
from support.node_agent import Node, converge, state_is, toy_server
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]


async def test_install_start_console_stop_start_and_readopt(
    node_factory: Callable[[], Node], docker_client: Any
) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("life"))
    status = await converge(node, "life", state_is(G.RUNNING))
    assert status.install is not None
    assert status.install.result == "Succeeded"
    key = ServerKey("agent", "life")
    data = node.settings.data_dir(key)
    assert (data / "installed.txt").read_text() == "installed\n"

    await node.runtime.send_command(key, "say hello agent")
    deadline = time.monotonic() + 20
    while not any("[say] hello agent" in line for line in await node.runtime.logs(key, tail=50)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)

    # Stop through the desired state: the blueprint's `stop` command, a clean exit.
    stopped = toy_server("life")
    stopped.spec.power.state = "Stopped"  # type: ignore[assignment]
    node.store.put(stopped)
    status = await converge(node, "life", state_is(G.STOPPED))
    assert status.last_exit is not None
    assert status.last_exit.exit_code == 0

    node.store.put(toy_server("life"))
    await converge(node, "life", state_is(G.RUNNING))
    assert (data / "boots").read_text().strip() == "2"

    # A new agent over the same state file and data (as after `kill -9` of the agent process)
    # re-adopts the running container: same container, no duplicate, still Running.
    before = docker_client.containers.get(container_name(key)).id
    reborn = node_factory()
    status = await converge(reborn, "life", state_is(G.RUNNING))
    containers = docker_client.containers.list(
        all=True, filters={"label": "stellarstack.io/gameserver=life"}
    )
    assert [
        c.id for c in containers if c.labels.get("stellarstack.io/agent") == node.settings.agent_id
    ] == [before]
    assert (data / "boots").read_text().strip() == "2"


async def test_restart_request_is_acted_on_once(node_factory: Callable[[], Node]) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("again"))
    await converge(node, "again", state_is(G.RUNNING))
    request = toy_server("again")
    request.spec.power.restart_request = "r-1"
    node.store.put(request)
    status = await converge(
        node, "again", lambda s: s.state is G.RUNNING and s.last_restart_request == "r-1"
    )
    boots = node.settings.data_dir(ServerKey("agent", "again")) / "boots"
    assert boots.read_text().strip() == "2"
    for _ in range(5):
        await node.agent.reconcile_all()
    assert boots.read_text().strip() == "2"
    assert status.restart_count == 0


async def test_a_crash_is_reported_and_restarted(
    node_factory: Callable[[], Node], docker_client: Any
) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("crashy"))
    await converge(node, "crashy", state_is(G.RUNNING))
    docker_client.containers.get(container_name(ServerKey("agent", "crashy"))).kill("SIGKILL")
    status = await converge(node, "crashy", lambda s: s.restart_count == 1)
    assert status.last_exit is not None
    assert status.last_exit.exit_code == 137
    status = await converge(node, "crashy", state_is(G.RUNNING))
    assert status.restart_count == 1


async def test_missing_blueprint_then_invalid_values_then_fixed(
    node_factory: Callable[[], Node],
) -> None:
    node = node_factory()
    node.store.put(toy_server("waiting"))
    status = await converge(node, "waiting", lambda s: s.reason == "BlueprintNotFound")
    assert status.state is G.PENDING
    strict = copy.deepcopy(TOY_BLUEPRINT)
    strict["spec"]["variables"][0]["rules"] = {"max": 3}
    node.store.put(Blueprint.model_validate(strict))
    status = await converge(node, "waiting", state_is(G.ERROR))
    assert "spec.variables.TOY_NAME: must be at most 3 characters" in status.message
    node.store.put(toy_server("waiting", variables={"TOY_NAME": "ok"}))
    await converge(node, "waiting", state_is(G.RUNNING))


@pytest.mark.parametrize("retain", [False, True])
async def test_delete_with_and_without_retain(
    node_factory: Callable[[], Node], docker_client: Any, retain: bool
) -> None:
    node = node_factory()
    name = f"gone-{str(retain).lower()}"
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server(name, storage={"retainOnDelete": retain}))
    await converge(node, name, state_is(G.RUNNING))
    key = ServerKey("agent", name)
    assert node.store.mark_deleting(GameServer, "agent", name)
    await node.agent.reconcile_all()
    assert node.store.get(GameServer, "agent", name) is None
    assert not docker_client.containers.list(all=True, filters={"name": container_name(key)})
    assert node.settings.data_dir(key).exists() is retain
    assert node.store.get(Blueprint, CLUSTER, "toy") is not None


async def test_a_server_over_its_disk_quota_is_stopped_until_space_is_freed(
    node_factory: Callable[[], Node],
) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("hoarder", resources={"disk": "100Mi", "memory": "128Mi"}))
    await converge(node, "hoarder", state_is(G.RUNNING))
    key = ServerKey("agent", "hoarder")
    hoard = node.settings.data_dir(key) / "hoard.bin"
    with hoard.open("wb") as handle:  # what a game writing past its quota leaves behind
        handle.write(b"\0" * (101 * 2**20))
    node.runtime.disk.forget(key)
    status = await converge(node, "hoarder", state_is(G.STOPPED))
    assert status.reason == "DiskQuotaExceeded"
    assert status.last_exit is not None
    assert status.last_exit.exit_code == 0  # stopped with its stop method, not killed
    hoard.unlink()
    node.runtime.disk.forget(key)
    await converge(node, "hoarder", state_is(G.RUNNING))
