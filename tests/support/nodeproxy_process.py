"""`stellarstack nodeproxy` as a real process for panel tests (pytest plugin): a node token, a
fresh data directory, a loopback port, and its containers removed afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.runtime_harness import free_port

CLI = Path(sys.executable).parent / "stellarstack"


@dataclass
class NodeProxy:
    url: str
    token: str
    agent_id: str
    log: Path
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_nodeproxy(
    directory: Path,
    panel_public_key_pem: str | None = None,
    *,
    publish_address: str | None = "127.0.0.1",
) -> NodeProxy:
    """A node agent process; `publish_address` None leaves the node's default (every
    address), as `stellarstack panel local` runs it."""
    agent_id = f"panel-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex + uuid.uuid4().hex
    port = free_port()
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(directory / "node"),
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": agent_id,
    }
    if publish_address is not None:
        env["STELLARSTACK_NODE_PUBLISH_ADDRESS"] = publish_address
    if panel_public_key_pem is not None:
        env["STELLARSTACK_NODE_PANEL_PUBLIC_KEY"] = panel_public_key_pem
    log = directory / "nodeproxy.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [CLI, "nodeproxy"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    node = NodeProxy(f"http://127.0.0.1:{port}", token, agent_id, log, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{node.url}/healthz", timeout=1).status_code == 200:
                return node
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"nodeproxy exited: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    node.stop()
    raise AssertionError(f"nodeproxy did not answer: {log.read_text()[-3000:]}")


@pytest.fixture
def nodeproxy(tmp_path: Path, docker_client: Any, toy_image: str) -> Iterator[NodeProxy]:
    """A node agent on loopback over the real Docker engine, with the toy image present."""
    node = start_nodeproxy(tmp_path)
    yield node
    node.stop()
    for container in docker_client.containers.list(
        all=True, filters={"label": f"stellarstack.io/agent={node.agent_id}"}
    ):
        container.remove(force=True)
