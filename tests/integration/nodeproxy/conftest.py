"""Fixtures of the node agent tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.workload import WorkloadSettings
from stellarstack.nodeproxy.agent import NodeAgent
from stellarstack.nodeproxy.backups import BackupService
from stellarstack.nodeproxy.runtime.containers import DockerSettings
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.store import Store
from support.node_agent import Node


@pytest.fixture
async def node_factory(
    docker_client: Any, toy_image: str, tmp_path: Path
) -> AsyncIterator[Callable[[], Node]]:
    agent_id = f"test-{uuid.uuid4().hex[:8]}"
    settings = DockerSettings(
        data_root=tmp_path / "servers",
        agent_id=agent_id,
        bind_address="127.0.0.1",
        workload=WorkloadSettings(),
    )
    made: list[Node] = []

    def make() -> Node:
        store = Store(tmp_path / "state" / "nodeproxy.sqlite")
        runtime = DockerRuntime(docker_client, settings)
        backups = BackupService(store, runtime, tmp_path / "backups")
        node = Node(store, NodeAgent(store, runtime, backups=backups), runtime, settings, backups)
        made.append(node)
        return node

    yield make
    for container in docker_client.containers.list(
        all=True, filters={"label": f"stellarstack.io/agent={agent_id}"}
    ):
        container.remove(force=True)
    for node in made:
        node.store.close()
