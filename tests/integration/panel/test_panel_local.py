"""`stellarstack panel local` (what `make run` starts): the real command, a real Docker engine."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stellarstack.panel.local import NODE_PORT

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


@contextlib.contextmanager
def local_panel(tmp_path: Path, state: Path, *flags: str) -> Iterator[tuple[str, Path]]:
    """`stellarstack panel local` on a free port with `flags`; yields its URL and log once it
    answers, and stops it (SIGTERM) after, checking it exited."""
    port = _free_port()
    log = tmp_path / f"panel-{port}.log"
    command = Path(sys.executable).with_name("stellarstack")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(command),
                "panel",
                "local",
                "--state",
                str(state),
                "--port",
                str(port),
                "--examples",
                str(REPO / "examples"),
                *flags,
            ],
            stdout=output,
            stderr=output,
            env={**os.environ},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", process, log)
        yield base, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _admin(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base) as client:
        account = {"email": "me@example.com", "password": "correct horse b"}
        setup = client.post("/api/auth/setup", json={**account, "name": "Me"})
        if setup.status_code != 201:  # the state directory has its admin from an earlier run
            login = client.post("/api/auth/login", json=account)
            assert login.status_code == 200, login.text
        yield client


def _local_node_once_heard(client: httpx.Client, within: float = 30) -> dict[str, Any]:
    """The node "local" once the panel's heartbeat heard from it (its first round runs as the
    panel starts, in the background)."""
    deadline = time.monotonic() + within
    nodes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        nodes = client.get("/api/admin/nodes").json()
        assert [n["name"] for n in nodes] == ["local"], nodes
        if nodes[0]["online"] or nodes[0]["last_error"]:
            return nodes[0]
        time.sleep(0.3)
    raise AssertionError(f"no heartbeat of the local node within {within} s: {nodes}")


@pytest.mark.docker
def test_local_panel_starts_with_a_registered_docker_node(
    tmp_path: Path, docker_client: Any
) -> None:
    node_port = _free_port()
    with (
        local_panel(tmp_path, tmp_path / "state", "--node-port", str(node_port)) as (base, _),
        _admin(base) as client,
    ):
        # Development mode: cookies are not Secure, so plain http on localhost works.
        node = _local_node_once_heard(client)
        assert node["url"] == f"http://127.0.0.1:{node_port}"
        assert node["online"] is True, node
        allocations = client.get(f"/api/admin/nodes/{node['id']}/allocations").json()
        assert {a["port"] for a in allocations} >= {25565, 27015, 7777}
        blueprints = {b["name"] for b in client.get("/api/blueprints").json()}
        assert "toy" in " ".join(blueprints), blueprints
    # The node agent it started is gone with it.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{node_port}/healthz", timeout=1)


class _Impostor(BaseHTTPRequestHandler):
    """Something else on the node port that looks healthy: `/healthz` answers 200, everything
    else 401 (another agent with another token)."""

    def do_GET(self) -> None:
        healthy = self.path == "/healthz"
        body = b'{"status": "ok"}' if healthy else b'{"detail": "invalid token"}'
        self.send_response(200 if healthy else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def occupied(port: int) -> Iterator[None]:
    """`127.0.0.1:port` held by an impostor for the block (or already held by someone else,
    which occupies it just as well)."""
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _Impostor)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        yield
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.docker
def test_a_taken_default_node_port_moves_the_local_node_to_its_own_agent(
    tmp_path: Path, docker_client: Any
) -> None:
    state = tmp_path / "state"
    first_port = _free_port()
    with (
        local_panel(tmp_path, state, "--node-port", str(first_port)) as (base, _),
        _admin(base) as client,
    ):
        assert client.get("/api/admin/nodes").json()[0]["url"].endswith(f":{first_port}")
    token = json.loads((state / "secrets.json").read_text())["node_token"]
    with occupied(NODE_PORT), local_panel(tmp_path, state) as (base, log), _admin(base) as client:
        node = _local_node_once_heard(client)
        port = int(node["url"].rpartition(":")[2])
        assert node["url"] == f"http://127.0.0.1:{port}"
        assert port not in (NODE_PORT, first_port)
        # Its own agent: it takes this state's token and is the agent "local"; the heartbeat
        # found the same, so the node is online and reports this host's memory.
        answer = httpx.get(
            f"{node['url']}/api/v1/node", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["agentId"] == "local"
        assert node["online"] is True, (node, log.read_text()[-3000:])
        memory_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        assert node["reported"]["memory_mib"] == memory_mib
        assert node["capacity"]["cpu_millicores"] > 0


@pytest.mark.docker
def test_a_taken_node_port_given_on_the_command_line_is_refused(
    tmp_path: Path, docker_client: Any
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        command = Path(sys.executable).with_name("stellarstack")
        finished = subprocess.run(
            [
                str(command),
                "panel",
                "local",
                "--state",
                str(tmp_path / "state"),
                "--port",
                str(_free_port()),
                "--node-port",
                str(taken),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert finished.returncode == 2, finished
    message = finished.stderr.decode()
    assert f"--node-port {taken}: 127.0.0.1:{taken} is already in use" in message, message
    assert "leave --node-port out" in message
    assert "Traceback" not in message
