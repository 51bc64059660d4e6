"""A node's capacity in the panel, from a real node agent: the heartbeat reads what the host has
and what the node's servers are given; admin figures override; a node that refuses the token
or is another agent is not online. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stellarstack.panel.services.heartbeat import check_nodes
from support.panel import Panel, PanelClient
from support.panel_node import NAMESPACE, NodeProcess, remove_containers, start_node, toy_gameserver

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
MIB = 1024 * 1024


@pytest.fixture
def node(tmp_path: Path, docker_client: Any) -> Iterator[NodeProcess]:
    # One per test: the allocations it reports are the test's own.
    process = start_node(tmp_path)
    try:
        yield process
    finally:
        process.stop()
        remove_containers(docker_client, process)


def heartbeat(panel: Panel) -> None:
    async def one_round() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await check_nodes(panel.context, client)

    asyncio.run(one_round())


def register(admin: PanelClient, node: NodeProcess, **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"cap-{node.agent_id}",
        "url": node.url,
        "token": node.token,
        "agent_id": node.agent_id,
        **fields,
    }
    created = admin.post("/api/admin/nodes", json=body)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def host_cpu_millicores() -> int:
    """The host's CPUs, or the CPU quota of the cgroup hierarchy's root when one is set."""
    cores = float(os.sysconf("SC_NPROCESSORS_ONLN"))
    v2, v1 = Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    if v2.exists() and not v2.read_text().startswith("max"):
        quota, period = v2.read_text().split()
        cores = min(cores, int(quota) / int(period))
    elif v1.exists() and int(v1.read_text()) > 0:
        period = (v1.parent / "cpu.cfs_period_us").read_text()
        cores = min(cores, int(v1.read_text()) / int(period))
    return int(cores * 1000)


def test_the_node_shows_what_the_host_has_and_what_its_servers_are_given(
    panel: Panel, node: NodeProcess
) -> None:
    admin = panel.setup_admin()
    created = register(admin, node)
    assert created["online"] is False
    assert created["reported"] is None
    assert created["allocated"] is None
    assert created["capacity"] == {
        "memory_mib": 0,
        "disk_mib": 0,
        "cpu_millicores": 0,
        "overridden": [],
    }

    heartbeat(panel)
    shown = admin.get(f"/api/admin/nodes/{created['id']}").json()
    assert shown["online"] is True, shown
    assert shown["last_error"] is None
    memory_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB
    disk = shutil.disk_usage(node.data_dir)
    assert shown["reported"]["memory_mib"] == memory_mib > 0
    assert shown["reported"]["disk_mib"] == disk.total // MIB > 0
    assert abs(shown["reported"]["disk_free_mib"] - disk.free // MIB) < 1024
    assert shown["reported"]["cpu_millicores"] == host_cpu_millicores() > 0
    assert shown["capacity"] == {
        "memory_mib": memory_mib,
        "disk_mib": disk.total // MIB,
        "cpu_millicores": host_cpu_millicores(),
        "overridden": [],
    }
    assert shown["allocated"] == {"memory_mib": 0, "disk_mib": 0, "cpu_millicores": 0, "servers": 0}

    # A stopped server's limits are still promised to it.
    with node.client() as client:
        for name, resources in (
            ("cap-a", {"cpu": "500m", "memory": "128Mi", "disk": "1Gi"}),
            ("cap-b", {"cpu": "1.5", "memory": "1Gi", "disk": "10G"}),
        ):
            document = toy_gameserver(name, power={"state": "Stopped"})
            document["spec"]["resources"] = resources
            answer = client.put(f"/api/v1/namespaces/{NAMESPACE}/gameservers/{name}", json=document)
            assert answer.status_code == 200, answer.text
    heartbeat(panel)
    listed = {n["id"]: n for n in admin.get("/api/admin/nodes").json()}
    assert listed[created["id"]]["allocated"] == {
        "memory_mib": 128 + 1024,
        "disk_mib": 1024 + 9537,  # 10G is 9536.74 MiB, rounded up
        "cpu_millicores": 2000,
        "servers": 2,
    }

    # An admin's figure overrides the report for that field only.
    changed = admin.patch(f"/api/admin/nodes/{created['id']}", json={"memory_mib": 4096})
    assert changed.status_code == 200, changed.text
    assert changed.json()["capacity"] == {
        "memory_mib": 4096,
        "disk_mib": disk.total // MIB,
        "cpu_millicores": host_cpu_millicores(),
        "overridden": ["memory_mib"],
    }
    assert changed.json()["reported"]["memory_mib"] == memory_mib
    cleared = admin.patch(f"/api/admin/nodes/{created['id']}", json={"memory_mib": 0})
    assert cleared.json()["capacity"]["memory_mib"] == memory_mib


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"token": "w" * 64}, "the node refused the panel's token (HTTP 401)"),
        ({"agent_id": "someone-else"}, "the agent at this address is"),
    ],
)
def test_a_node_that_is_not_the_registered_agent_is_not_online(
    panel: Panel, node: NodeProcess, fields: dict[str, Any], error: str
) -> None:
    admin = panel.setup_admin()
    created = register(admin, node, **fields)
    heartbeat(panel)
    shown = admin.get(f"/api/admin/nodes/{created['id']}").json()
    assert shown["online"] is False
    assert shown["last_error"].startswith(error), shown["last_error"]
    assert shown["reported"] is None
