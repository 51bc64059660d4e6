"""Servers on a Docker node through the panel API: a real nodeproxy process on a real Docker
engine, the panel on SQLite and on PostgreSQL. Create from a blueprint, reach Running, stop,
delete; variable and image rules; limits under 50 parallel creates; idempotency keys."""

from __future__ import annotations

import copy
import socket
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from stellarstack.panel.db.models import ActivityLog
from support.nodeproxy_process import NodeProxy
from support.panel import Panel, PanelClient, create_user
from support.runtime_harness import TOY_BLUEPRINT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

TOY_PORTS = [
    {"name": "status", "port": 7777, "protocol": "TCP"},
    {"name": "query", "port": 7778, "protocol": "UDP"},
]


def register_node(admin: PanelClient, node: NodeProxy, *, allocations: int = 1) -> dict[str, Any]:
    """The node registered with the panel, with `allocations` free loopback ports, and the
    toy blueprint offered."""
    created = admin.post(
        "/api/admin/nodes",
        json={
            "name": node.agent_id,
            "url": node.url,
            "token": node.token,
            "agent_id": node.agent_id,
            "public_address": "127.0.0.1",
        },
    )
    assert created.status_code == 201, created.text
    ports = sorted({free_port() for _ in range(allocations)})
    while len(ports) < allocations:
        ports = sorted({*ports, free_port()})
    added = admin.post(
        f"/api/admin/nodes/{created.json()['id']}/allocations",
        json={"ip": "127.0.0.1", "ports": [str(p) for p in ports]},
    )
    assert added.status_code == 201, added.text
    if admin.get("/api/admin/blueprints/toy").status_code == 404:
        blueprint = admin.post("/api/admin/blueprints", json=copy.deepcopy(TOY_BLUEPRINT))
        assert blueprint.status_code == 201, blueprint.text
    node_public: dict[str, Any] = created.json()
    return node_public


def tcp_status(port: int) -> bytes:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                answer = conn.recv(4096)
            if answer:
                return answer
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing answers on port {port}"
        time.sleep(0.3)


def wait_state(client: PanelClient, server_id: str, *states: str, within: float = 90) -> Any:
    deadline = time.monotonic() + within
    body: Any = {}
    while time.monotonic() < deadline:
        response = client.get(f"/api/servers/{server_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["state"] in states:
            return body
        time.sleep(0.5)
    raise AssertionError(f"server never reached {states}: {body}")


def test_a_user_creates_runs_stops_and_deletes_a_server_on_a_docker_node(
    panel: Panel, nodeproxy: NodeProxy
) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy)
    create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")
    outsider_id = create_user(panel, admin, "outsider@example.com")
    outsider = panel.login("outsider@example.com")
    body = {
        "name": "Toy world",
        "blueprint": "toy",
        "node_id": node["id"],
        "variables": {"TOY_NAME": "from-panel"},
        "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
        "ports": TOY_PORTS,
    }

    # Users may set only user-editable variables, each under the blueprint's rules, and
    # choose only among the blueprint's images.
    refused = player.post("/api/servers", json={**body, "variables": {"TOY_DATA": "/elsewhere"}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "body.variables.TOY_DATA"
    assert "not editable" in refused.json()["error"]["message"]
    wrong_image = player.post("/api/servers", json={**body, "image": "evil/miner:latest"})
    assert wrong_image.status_code == 422
    assert wrong_image.json()["error"]["field"] == "body.image"
    not_for_users = player.post("/api/servers", json={**body, "owner_id": outsider_id})
    assert not_for_users.json()["error"]["field"] == "body.owner_id"

    created = player.post("/api/servers", json=body)
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["target_kind"] == "docker"
    assert server["spec"]["variables"] == {"TOY_NAME": "from-panel"}
    assert len(server["allocations"]) == 1
    host_port = server["allocations"][0]["port"]
    # The GameServer at the node carries the allocation as its host port.
    with nodeproxy.client() as node_api:
        stored = node_api.get(
            f"/api/v1/namespaces/{server['namespace']}/gameservers/{server['resource_name']}"
        ).json()
    assert [p["hostPort"] for p in stored["spec"]["ports"]] == [host_port, host_port]
    assert stored["spec"]["placement"] == {"type": "DockerNode", "node": nodeproxy.agent_id}

    wait_state(player, server["id"], "Running")
    # The game answers on the allocation's port with the name the user gave it.
    assert b"name=from-panel" in tcp_status(host_port)
    # Someone else cannot even see it.
    assert outsider.get(f"/api/servers/{server['id']}").status_code == 404
    assert (
        outsider.post(f"/api/servers/{server['id']}/power", json={"action": "stop"}).status_code
        == 404
    )
    assert [s["id"] for s in outsider.get("/api/servers").json()["items"]] == []
    assert [s["id"] for s in player.get("/api/servers").json()["items"]] == [server["id"]]
    assert player.get("/api/servers?state=Running").json()["total"] == 1
    assert player.get("/api/servers?name=nothing-like-it").json()["total"] == 0

    stop = player.post(f"/api/servers/{server['id']}/power", json={"action": "stop"})
    assert stop.status_code == 202, stop.text
    wait_state(player, server["id"], "Stopped")

    # Suspended servers refuse power until an admin lifts the suspension.
    assert admin.post(f"/api/admin/servers/{server['id']}/suspend").status_code == 200
    refused_power = player.post(f"/api/servers/{server['id']}/power", json={"action": "start"})
    assert refused_power.status_code == 409
    assert "suspended" in refused_power.json()["error"]["message"]
    assert player.post(f"/api/admin/servers/{server['id']}/unsuspend").status_code == 404
    assert admin.post(f"/api/admin/servers/{server['id']}/unsuspend").status_code == 200

    renamed = player.patch(f"/api/servers/{server['id']}", json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed"
    resources = player.patch(
        f"/api/servers/{server['id']}", json={"resources": {"memory": "256Mi"}}
    )
    assert resources.json()["error"]["field"] == "body.resources"

    with panel.context.sessions() as db:
        logged = db.scalars(select(ActivityLog).where(ActivityLog.server_id == server["id"]))
        events = {entry.event: entry.properties for entry in logged}
    assert {"server.create", "server.power.stop", "server.suspend", "server.update"} <= set(events)
    assert events["server.update"]["before"]["name"] == "Toy world"
    assert events["server.update"]["after"]["name"] == "Renamed"

    deleted = player.delete(f"/api/servers/{server['id']}")
    assert deleted.status_code == 204, deleted.text
    assert player.get(f"/api/servers/{server['id']}").status_code == 404
    # The node still lists it while it stops and cleans up; it does not come back adopted.
    assert admin.post("/api/admin/servers/sync").json()["adopted"] == 0
    assert admin.get("/api/admin/servers/unassigned").json()["total"] == 0
    free = admin.get(f"/api/admin/nodes/{node['id']}/allocations?free=true").json()
    assert [a["port"] for a in free] == [host_port]
    with nodeproxy.client() as node_api:
        deadline = time.monotonic() + 60
        path = f"/api/v1/namespaces/{server['namespace']}/gameservers/{server['resource_name']}"
        while node_api.get(path).status_code != 404:
            assert time.monotonic() < deadline, "the node never removed the GameServer"
            time.sleep(0.5)


def test_fifty_parallel_creates_at_a_limit_of_five_make_exactly_five(
    panel: Panel, nodeproxy: NodeProxy
) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy, allocations=60)
    user_id = create_user(panel, admin, "racer@example.com")
    limited = admin.patch(f"/api/admin/users/{user_id}", json={"server_limit": 5})
    assert limited.status_code == 200, limited.text
    key = panel.login("racer@example.com").create_api_key(["servers:write", "servers:read"])
    clients = [panel.client(api_key=key) for _ in range(50)]
    body = {
        "name": "racer",
        "blueprint": "toy",
        "node_id": node["id"],
        "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
        "ports": TOY_PORTS,
        "start": False,
    }
    answers: list[Any] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def create(index: int) -> None:
        barrier.wait(timeout=60)
        answers[index] = clients[index].post("/api/servers", json=body)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert all(answer is not None for answer in answers)
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) == 5, [(a.status_code, a.text[:200]) for a in answers]
    refusals = [a for a in answers if a.status_code != 201]
    assert {a.status_code for a in refusals} == {409}
    assert all("server limit of 5" in a.json()["error"]["message"] for a in refusals)

    listed = admin.get(f"/api/servers?owner_id={user_id}").json()
    assert listed["total"] == 5
    # Every server got its own allocation.
    ports = [a["port"] for s in listed["items"] for a in s["allocations"]]
    assert len(ports) == len(set(ports)) == 5
    with nodeproxy.client() as node_api:
        stored = node_api.get("/api/v1/namespaces/default/gameservers").json()
    assert len(stored) == 5


def test_an_allocation_is_never_given_to_two_servers(panel: Panel, nodeproxy: NodeProxy) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy, allocations=1)
    allocation = admin.get(f"/api/admin/nodes/{node['id']}/allocations").json()[0]
    body = {
        "name": "first",
        "blueprint": "toy",
        "node_id": node["id"],
        "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
        "ports": TOY_PORTS,
        "allocation_ids": [allocation["id"]],
        "start": False,
    }
    assert admin.post("/api/servers", json=body).status_code == 201
    taken = admin.post("/api/servers", json={**body, "name": "second"})
    assert taken.status_code == 409
    assert taken.json()["error"]["field"] == "body.allocation_ids.0"
    none_free = admin.post("/api/servers", json={**body, "allocation_ids": []})
    assert none_free.status_code == 409
    assert "free allocation" in none_free.json()["error"]["message"]
    # Nothing of the refused creates was kept.
    assert admin.get("/api/servers").json()["total"] == 1


def test_idempotency_key_replays_the_first_create_and_refuses_another_body(
    panel: Panel, nodeproxy: NodeProxy
) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy, allocations=3)
    body = {
        "name": "once",
        "blueprint": "toy",
        "node_id": node["id"],
        "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
        "ports": TOY_PORTS,
        "start": False,
    }
    headers = {"Idempotency-Key": "create-once-1"}
    first = admin.post("/api/servers", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = admin.post("/api/servers", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = admin.post("/api/servers", json={**body, "name": "twice"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "header.Idempotency-Key"
    # Keys belong to their caller: another caller's identical key creates its own server.
    key = admin.create_api_key(["servers:write", "servers:read"])
    by_key = panel.client(api_key=key).post("/api/servers", json=body, headers=headers)
    assert by_key.status_code == 201
    assert by_key.json()["id"] != first.json()["id"]
    assert admin.get("/api/servers").json()["total"] == 2

    # Ten parallel repeats of one key create one server; every answer names it.
    clients = [panel.client(api_key=key) for _ in range(10)]
    answers: list[Any] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))
    parallel = {**body, "name": "parallel"}

    def create(index: int) -> None:
        barrier.wait(timeout=60)
        answers[index] = clients[index].post(
            "/api/servers", json=parallel, headers={"Idempotency-Key": "parallel-1"}
        )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {a.status_code for a in answers} == {201}, [a.text[:200] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert admin.get("/api/servers").json()["total"] == 3


def test_allocation_limit_holds_under_parallel_adds(panel: Panel, nodeproxy: NodeProxy) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy, allocations=30)
    user_id = create_user(panel, admin, "ports@example.com")
    created = admin.post(
        "/api/servers",
        json={
            "name": "many ports",
            "blueprint": "toy",
            "node_id": node["id"],
            "owner_id": user_id,
            "allocation_limit": 3,
            "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
            "ports": TOY_PORTS,
            "start": False,
        },
    )
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["owner_id"] == user_id
    primary = server["allocations"][0]
    owner = panel.login("ports@example.com")
    key = owner.create_api_key(["servers:write", "servers:read"])
    clients = [panel.client(api_key=key) for _ in range(20)]
    answers: list[Any] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def add(index: int) -> None:
        barrier.wait(timeout=60)
        answers[index] = clients[index].post(f"/api/servers/{server['id']}/allocations", json={})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    added = [a.json() for a in answers if a is not None and a.status_code == 201]
    refused = [a for a in answers if a is not None and a.status_code != 201]
    assert len(added) == 2, [(a.status_code, a.text[:200]) for a in answers if a is not None]
    assert len(refused) == 18
    assert all(a.status_code == 409 for a in refused)
    assert all("allocation limit of 3" in a.json()["error"]["message"] for a in refused)

    held = owner.get(f"/api/servers/{server['id']}/allocations").json()
    assert sorted(a["port"] for a in held) == sorted([primary["port"], *(a["port"] for a in added)])
    path = f"/api/v1/namespaces/{server['namespace']}/gameservers/{server['resource_name']}"
    with nodeproxy.client() as node_api:
        ports = node_api.get(path).json()["spec"]["ports"]
    extra = sorted((p["port"], p["protocol"], p["hostPort"]) for p in ports[2:])
    assert extra == sorted((a["port"], "TCPUDP", a["port"]) for a in added)

    # The primary allocation stays; another one goes back to the node.
    keep = owner.delete(f"/api/servers/{server['id']}/allocations/{primary['id']}")
    assert keep.status_code == 409
    assert (
        owner.delete(f"/api/servers/{server['id']}/allocations/{added[0]['id']}").status_code == 204
    )
    with nodeproxy.client() as node_api:
        ports = node_api.get(path).json()["spec"]["ports"]
    assert added[0]["port"] not in {p["hostPort"] for p in ports}
    assert len(owner.get(f"/api/servers/{server['id']}/allocations").json()) == 2


def test_variables_image_and_reinstall_reach_the_gameserver(
    panel: Panel, nodeproxy: NodeProxy
) -> None:
    admin = panel.setup_admin()
    node = register_node(admin, nodeproxy)
    create_user(panel, admin, "tinker@example.com")
    user = panel.login("tinker@example.com")
    created = user.post(
        "/api/servers",
        json={
            "name": "tinker",
            "blueprint": "toy",
            "node_id": node["id"],
            "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
            "ports": TOY_PORTS,
        },
    )
    assert created.status_code == 201, created.text
    server = created.json()
    url = f"/api/servers/{server['id']}"

    changed = user.patch(url, json={"variables": {"TOY_NAME": "renamed-game"}, "image": "Toy"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["spec"]["variables"] == {"TOY_NAME": "renamed-game"}
    refused = user.patch(url, json={"variables": {"TOY_TCP_PORT": "1"}})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "body.variables.TOY_TCP_PORT"
    # Admins may set any variable.
    by_admin = admin.patch(url, json={"variables": {"TOY_DATA": "/home/container"}})
    assert by_admin.status_code == 200, by_admin.text
    # The admin's value does not stop the user from changing their own.
    again = user.patch(url, json={"variables": {"TOY_NAME": "renamed-game"}})
    assert again.status_code == 200, again.text

    path = f"/api/v1/namespaces/{server['namespace']}/gameservers/{server['resource_name']}"
    with nodeproxy.client() as node_api:
        spec = node_api.get(path).json()["spec"]
    assert spec["variables"] == {"TOY_NAME": "renamed-game", "TOY_DATA": "/home/container"}
    assert spec["image"] == "Toy"

    reinstall = user.post(f"{url}/reinstall")
    assert reinstall.status_code == 202, reinstall.text
    request = reinstall.json()["request"]
    deadline = time.monotonic() + 90
    while True:
        status = user.get(url).json()["status"]
        if status.get("lastReinstallRequest") == request and status.get("state") == "Running":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
