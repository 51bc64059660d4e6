"""The panel in front of a real node: a `stellarstack nodeproxy` process on the local Docker
engine, panel rows pointing at it, and the panel served by uvicorn on loopback (real sockets,
so WebSocket tests have timeouts and close codes as a browser sees them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Node, Server, Subuser, TargetKind
from support.panel import Panel
from support.runtime_harness import TOY_BLUEPRINT, free_port

CLI = Path(sys.executable).parent / "stellarstack"
NAMESPACE = "default"
"""Where the panel keeps a node's resources (`DockerNodeBackend`'s namespace)."""


@dataclass
class NodeProcess:
    """A running nodeproxy and how to reach it."""

    url: str
    token: str
    agent_id: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def server_dir(self, name: str) -> Path:
        return self.data_dir / "servers" / NAMESPACE / name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_node(directory: Path) -> NodeProcess:
    agent_id = f"panel-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex + uuid.uuid4().hex
    port = free_port()
    data_dir = directory / "node"
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(data_dir),
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": agent_id,
        "STELLARSTACK_NODE_PUBLISH_ADDRESS": "127.0.0.1",
        "STELLARSTACK_NODE_CONSOLE_CONNECTIONS_PER_SERVER": "16",
    }
    log = directory / "nodeproxy.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [CLI, "nodeproxy"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    node = NodeProcess(f"http://127.0.0.1:{port}", token, agent_id, data_dir, log, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{node.url}/healthz", timeout=1).status_code == 200:
                with node.client() as client:
                    answer = client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT)
                    assert answer.status_code == 200, answer.text
                return node
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    node.stop()
    raise AssertionError(f"nodeproxy did not answer: {log.read_text()}")


def remove_containers(docker_client: Any, node: NodeProcess) -> None:
    for container in docker_client.containers.list(
        all=True, filters={"label": f"stellarstack.io/agent={node.agent_id}"}
    ):
        container.remove(force=True)


def toy_gameserver(name: str, **spec: Any) -> dict[str, Any]:
    port = free_port()
    return {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "GameServer",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "blueprint": "toy",
            "variables": {"TOY_NAME": name},
            "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": port},
                {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": port},
            ],
            **spec,
        },
    }


def run_toy(node: NodeProcess, name: str, *, within: float = 90) -> None:
    """Create a toy GameServer on the node and wait until it runs."""
    with node.client() as client:
        answer = client.put(
            f"/api/v1/namespaces/{NAMESPACE}/gameservers/{name}", json=toy_gameserver(name)
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + within
        state: Any = None
        while time.monotonic() < deadline:
            state = client.get(f"/api/v1/namespaces/{NAMESPACE}/gameservers/{name}/status").json()
            if state.get("state") == "Running":
                return
            time.sleep(0.3)
    raise AssertionError(f"{name} did not run: {state}\n{node.log.read_text()[-3000:]}")


def register_server(
    panel: Panel, node: NodeProcess, *, owner_id: str, resource_name: str, **fields: Any
) -> str:
    """Panel rows for a server on `node` (the servers API is not what these tests are about);
    returns the server id."""
    with transaction(panel.context.sessions) as db:
        row = db.query(Node).filter(Node.agent_id == node.agent_id).one_or_none()
        if row is None:
            row = Node(name=node.agent_id, url=node.url, token=node.token, agent_id=node.agent_id)
            db.add(row)
            db.flush()
        server = Server(
            name=resource_name,
            owner_id=owner_id,
            target_kind=TargetKind.DOCKER,
            node_id=row.id,
            namespace=NAMESPACE,
            resource_name=resource_name,
            blueprint="toy",
            state="Running",
            **fields,
        )
        db.add(server)
        db.flush()
        return server.id


def add_subuser(panel: Panel, server_id: str, user_id: str, nodes: list[str]) -> None:
    with transaction(panel.context.sessions) as db:
        db.add(Subuser(server_id=server_id, user_id=user_id, permissions=nodes))


def set_server(panel: Panel, server_id: str, **fields: Any) -> None:
    with transaction(panel.context.sessions) as db:
        server = db.get(Server, server_id)
        assert server is not None
        for key, value in fields.items():
            setattr(server, key, value)


@contextlib.contextmanager
def served(panel: Panel, port: int | None = None) -> Iterator[str]:
    """The panel's app on a loopback port (`port`, else a free one) for the duration of the
    block; yields its URL."""
    port = port or free_port()
    config = uvicorn.Config(
        panel.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the panel did not start"
        assert time.monotonic() < deadline, "the panel did not start within 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
