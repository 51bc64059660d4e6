"""`stellarstack panel local` (what `make run` starts): the real command, a real Docker engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"panel exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"panel did not answer: {log.read_text()[-3000:]}")


@pytest.mark.docker
def test_local_panel_starts_with_a_registered_docker_node(
    tmp_path: Path, docker_client: Any
) -> None:
    port, node_port = _free_port(), _free_port()
    log = tmp_path / "panel.log"
    command = Path(sys.executable).with_name("stellarstack")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(command),
                "panel",
                "local",
                "--state",
                str(tmp_path / "state"),
                "--port",
                str(port),
                "--node-port",
                str(node_port),
                "--examples",
                str(REPO / "examples"),
            ],
            stdout=output,
            stderr=output,
            env={**os.environ},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", process, log)
        with httpx.Client(base_url=base) as client:
            setup = client.post(
                "/api/auth/setup",
                json={"email": "me@example.com", "name": "Me", "password": "correct horse b"},
            )
            assert setup.status_code == 201, setup.text
            headers = {"X-CSRF-Token": setup.json()["csrf_token"]}
            # Development mode: cookies are not Secure, so plain http on localhost works.
            nodes = client.get("/api/admin/nodes", headers=headers).json()
            assert [n["name"] for n in nodes] == ["local"]
            node = nodes[0]
            assert node["url"] == f"http://127.0.0.1:{node_port}"
            assert node["online"] is True, node
            allocations = client.get(f"/api/admin/nodes/{node['id']}/allocations").json()
            assert {a["port"] for a in allocations} >= {25565, 27015, 7777}
            blueprints = {b["name"] for b in client.get("/api/blueprints").json()}
            assert "toy" in " ".join(blueprints), blueprints
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # The node agent it started is gone with it.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{node_port}/healthz", timeout=1)
