"""Helpers for node agent tests: an agent incarnation, toy servers, waiting for a state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stellarstack.api.gameserver import GameServer, GameServerStatus
from stellarstack.api.states import GameServerState as G
from stellarstack.nodeproxy.agent import NodeAgent
from stellarstack.nodeproxy.backups import BackupService
from stellarstack.nodeproxy.runtime.containers import DockerSettings
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.store import Store
from support.runtime_harness import free_port


@dataclass
class Node:
    """One agent incarnation over a data root and a state file that outlive it."""

    store: Store
    agent: NodeAgent
    runtime: DockerRuntime
    settings: DockerSettings
    backups: BackupService


def toy_server(name: str, **spec: Any) -> GameServer:
    port = free_port()
    document: dict[str, Any] = {
        "kind": "GameServer",
        "metadata": {"name": name, "namespace": "agent"},
        "spec": {
            "blueprint": "toy",
            "variables": {"TOY_NAME": name},
            "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": port},
                {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": port},
            ],
            "crashPolicy": {"initialDelaySeconds": 1, "maxDelaySeconds": 2},
        },
    }
    document["spec"].update(spec)
    return GameServer.model_validate(document)


async def converge(
    node: Node, name: str, predicate: Callable[[GameServerStatus], bool], *, within: float = 60
) -> GameServerStatus:
    deadline = time.monotonic() + within
    status = GameServerStatus()
    while time.monotonic() < deadline:
        await node.agent.reconcile_all()
        stored = node.store.get(GameServer, "agent", name)
        assert stored is not None
        status = stored.status or GameServerStatus()
        if predicate(status):
            return status
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name} did not converge within {within} s: {status}")


def state_is(*states: G) -> Callable[[GameServerStatus], bool]:
    return lambda status: status.state in states
