"""A server made through the panel from a name, a blueprint and a Docker node alone is reachable:
it gets the blueprint's default ports, each published on a free allocation's address and
number only. A real nodeproxy process publishing on every address by default (as the local
node does), the real Docker engine, the panel on SQLite and on PostgreSQL. Also: the refusals
that say what to pass, an explicit `"ports": []`, the preferred allocation number, and 50
parallel default-port creates that never give one allocation twice."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.nodeproxy_process import NodeProxy, start_nodeproxy
from support.panel import Panel, PanelClient, create_user
from support.runtime_harness import TOY_BLUEPRINT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SMALL = {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64}


def example_toy() -> dict[str, Any]:
    """The toy Blueprint exactly as examples/toy.yaml declares it (default ports included)."""
    for document in yaml.safe_load_all((EXAMPLES / "toy.yaml").read_text()):
        if document.get("kind") == "Blueprint":
            return dict(document)
    raise AssertionError("examples/toy.yaml has no Blueprint")


@pytest.fixture
def node_everywhere(tmp_path: Path, docker_client: Any, toy_image: str) -> Iterator[NodeProxy]:
    """A node agent left at its default publish address (every address), like the local
    node `make run` starts: only the allocation's address keeps a port off other addresses."""
    node = start_nodeproxy(tmp_path, publish_address=None)
    yield node
    node.stop()
    for container in docker_client.containers.list(
        all=True, filters={"label": f"stellarstack.io/agent={node.agent_id}"}
    ):
        container.remove(force=True)


def register(admin: PanelClient, node: NodeProxy, allocations: dict[str, list[int]]) -> str:
    """The node in the panel with allocations per IP; returns the node id."""
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
    node_id: str = created.json()["id"]
    for ip, ports in allocations.items():
        added = admin.post(
            f"/api/admin/nodes/{node_id}/allocations",
            json={"ip": ip, "ports": [str(port) for port in ports]},
        )
        assert added.status_code == 201, added.text
    return node_id


def add_blueprint(admin: PanelClient, document: dict[str, Any]) -> None:
    answer = admin.post("/api/admin/blueprints", json=copy.deepcopy(document))
    assert answer.status_code == 201, answer.text


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    for _ in range(count * 20):
        if len(ports) == count:
            break
        ports.add(free_port())
    assert len(ports) == count
    return sorted(ports)


def wait_running(client: PanelClient, server_id: str, within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = client.get(f"/api/servers/{server_id}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["state"] == "Running":
            return body
        assert body["state"] not in {"Error", "InstallFailed", "Crashed"}, body
        time.sleep(0.3)
    raise AssertionError(f"the server never ran: {body}")


def tcp_status(ip: str, port: int, within: float = 30) -> bytes:
    """The toy's status line on ip:port. docker-proxy accepts a connection even when nothing
    listens in the container, so only a payload counts."""
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection((ip, port), timeout=5) as connection:
                answer = connection.recv(4096)
            if answer:
                return answer
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no status line on {ip}:{port}"
        time.sleep(0.3)


def udp_status(ip: str, port: int, within: float = 30) -> bytes:
    deadline = time.monotonic() + within
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        while True:
            try:
                sock.sendto(b"status\n", (ip, port))
                answer, _ = sock.recvfrom(4096)
                if answer:
                    return answer
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no UDP status on {ip}:{port}"


def refused_on(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def published(docker_client: Any, server: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """`docker inspect`'s view of where the server's container is published."""
    container = docker_client.containers.get(
        f"stellarstack-{server['namespace']}-{server['resource_name']}"
    )
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"] or {}
    return {
        key: sorted((b["HostIp"], b["HostPort"]) for b in bindings or [])
        for key, bindings in ports.items()
    }


def test_name_blueprint_and_node_alone_make_a_server_that_answers_on_its_allocation(
    panel: Panel, node_everywhere: NodeProxy, docker_client: Any
) -> None:
    admin = panel.setup_admin()
    first, second = free_ports(2)
    node_id = register(admin, node_everywhere, {"127.0.0.1": [first], "127.0.0.2": [second]})
    add_blueprint(admin, example_toy())
    create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")

    created = player.post(
        "/api/servers", json={"name": "Just a toy", "blueprint": "toy", "node_id": node_id}
    )
    assert created.status_code == 201, created.text
    server = created.json()
    assert [(a["ip"], a["port"]) for a in server["allocations"]] == [("127.0.0.1", first)]
    # The blueprint's default ports, the primary first, both on the one allocation; the
    # variables that carry their numbers got them.
    assert server["spec"]["ports"] == [
        {
            "name": "status",
            "port": 7777,
            "protocol": "TCP",
            "hostPort": first,
            "hostIP": "127.0.0.1",
        },
        {
            "name": "query",
            "port": 7778,
            "protocol": "UDP",
            "hostPort": first,
            "hostIP": "127.0.0.1",
        },
    ]
    assert server["spec"]["variables"] == {"TOY_TCP_PORT": "7777", "TOY_UDP_PORT": "7778"}

    wait_running(player, server["id"])
    assert tcp_status("127.0.0.1", first).startswith(b"TOY name=Toy ")
    assert udp_status("127.0.0.1", first).startswith(b"TOY name=Toy ")
    # Published on the allocation's address only, although the node would publish everywhere.
    assert published(docker_client, server) == {
        "7777/tcp": [("127.0.0.1", str(first))],
        "7778/udp": [("127.0.0.1", str(first))],
    }

    # The next server takes the next free allocation, on another loopback address, and does
    # not answer on 127.0.0.1.
    other = admin.post(
        "/api/servers",
        json={
            "name": "Elsewhere",
            "blueprint": "toy",
            "node_id": node_id,
            "variables": {"TOY_NAME": "elsewhere"},
        },
    )
    assert other.status_code == 201, other.text
    elsewhere = other.json()
    assert [(a["ip"], a["port"]) for a in elsewhere["allocations"]] == [("127.0.0.2", second)]
    wait_running(admin, elsewhere["id"])
    assert tcp_status("127.0.0.2", second).startswith(b"TOY name=elsewhere ")
    assert refused_on("127.0.0.1", second)
    assert published(docker_client, elsewhere) == {
        "7777/tcp": [("127.0.0.2", str(second))],
        "7778/udp": [("127.0.0.2", str(second))],
    }

    # No allocation left: refused, naming the node and what else to pass; nothing is kept.
    full = player.post(
        "/api/servers", json={"name": "Third", "blueprint": "toy", "node_id": node_id}
    )
    assert full.status_code == 409, full.text
    error = full.json()["error"]
    assert error["field"] == "body.node_id"
    assert "the node has 0 free allocation(s); 1 needed" in error["message"]
    assert '"ports": []' in error["message"]
    # Asking for no ports on purpose is allowed: no allocation, no published port.
    unreachable = player.post(
        "/api/servers",
        json={"name": "Quiet", "blueprint": "toy", "node_id": node_id, "ports": [], "start": False},
    )
    assert unreachable.status_code == 201, unreachable.text
    assert unreachable.json()["allocations"] == []
    assert unreachable.json()["spec"]["ports"] == []
    assert admin.get("/api/servers").json()["total"] == 3


def test_a_blueprint_without_default_ports_needs_ports_named(
    panel: Panel, node_everywhere: NodeProxy
) -> None:
    admin = panel.setup_admin()
    node_id = register(admin, node_everywhere, {"127.0.0.1": free_ports(1)})
    bare = copy.deepcopy(TOY_BLUEPRINT)
    bare["metadata"] = {"name": "bare"}
    add_blueprint(admin, bare)

    refused = admin.post(
        "/api/servers", json={"name": "x", "blueprint": "bare", "node_id": node_id}
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "body.ports"
    assert "the blueprint 'bare' declares no default ports" in error["message"]
    assert "pass ports" in error["message"]
    assert '"ports": []' in error["message"]
    assert admin.get("/api/servers").json()["total"] == 0
    free = admin.get(f"/api/admin/nodes/{node_id}/allocations?free=true").json()
    assert len(free) == 1

    # A value that contradicts the port carrying it is refused with the variable's path.
    add_blueprint(admin, example_toy())
    contradicting = admin.post(
        "/api/servers",
        json={
            "name": "x",
            "blueprint": "toy",
            "node_id": node_id,
            "variables": {"TOY_TCP_PORT": "9000"},
            "start": False,
        },
    )
    assert contradicting.status_code == 422, contradicting.text
    assert contradicting.json()["error"]["field"] == "body.variables.TOY_TCP_PORT"


def test_the_allocation_with_the_port_own_number_is_preferred(
    panel: Panel, node_everywhere: NodeProxy
) -> None:
    """A game that is told its number (here the toy's TCP port through TOY_TCP_PORT) is best
    published on the same number: players and the game then agree on it."""
    admin = panel.setup_admin()
    low, wanted, high = free_ports(3)
    node_id = register(admin, node_everywhere, {"127.0.0.1": [low, wanted, high]})
    toy = example_toy()
    toy["spec"]["ports"][0]["port"] = wanted
    toy["spec"]["variables"][1]["default"] = str(wanted)
    toy["metadata"]["name"] = "toy-moved"
    add_blueprint(admin, toy)
    created = admin.post(
        "/api/servers",
        json={"name": "moved", "blueprint": "toy-moved", "node_id": node_id, "resources": SMALL},
    )
    assert created.status_code == 201, created.text
    server = created.json()
    assert [a["port"] for a in server["allocations"]] == [wanted]
    assert server["spec"]["variables"]["TOY_TCP_PORT"] == str(wanted)
    wait_running(admin, server["id"])
    assert tcp_status("127.0.0.1", wanted).startswith(b"TOY name=")


def test_fifty_parallel_default_port_creates_never_share_an_allocation(
    panel: Panel, node_everywhere: NodeProxy
) -> None:
    """Ten owners (so that the per-owner lock does not line the creates up), 50 creates
    without ports at once, 20 free allocations: exactly 20 servers, each with its own."""
    admin = panel.setup_admin()
    ports = free_ports(20)
    node_id = register(admin, node_everywhere, {"127.0.0.1": ports})
    quick = example_toy()
    # No install step: the node has nothing to run for a stopped server.
    quick["spec"].pop("install")
    add_blueprint(admin, quick)
    owners = [create_user(panel, admin, f"owner{i}@example.com") for i in range(10)]
    key = admin.create_api_key(["servers:write", "servers:read"])
    clients = [panel.client(api_key=key) for _ in range(50)]
    answers: list[Any] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def create(index: int) -> None:
        barrier.wait(timeout=60)
        answers[index] = clients[index].post(
            "/api/servers",
            json={
                "name": f"racer {index}",
                "blueprint": "toy",
                "node_id": node_id,
                "owner_id": owners[index % len(owners)],
                "resources": SMALL,
                "start": False,
            },
        )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert all(answer is not None for answer in answers)
    made = [a.json() for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(made) == 20, [(a.status_code, a.text[:200]) for a in answers]
    assert {a.status_code for a in refused} == {409}
    assert all("free allocation" in a.json()["error"]["message"] for a in refused)

    given = [(s["allocations"][0]["ip"], s["allocations"][0]["port"]) for s in made]
    assert all(len(s["allocations"]) == 1 for s in made)
    assert sorted(port for _, port in given) == ports
    # Each GameServer is published on exactly the allocation its server holds.
    for server in made:
        allocation = server["allocations"][0]
        assert {(p["hostIP"], p["hostPort"]) for p in server["spec"]["ports"]} == {
            (allocation["ip"], allocation["port"])
        }
    listed = admin.get("/api/servers?per_page=200").json()
    assert listed["total"] == 20
    assert admin.get(f"/api/admin/nodes/{node_id}/allocations?free=true").json() == []
    with node_everywhere.client() as node_api:
        stored = node_api.get("/api/v1/namespaces/default/gameservers").json()
    assert len(stored) == 20
