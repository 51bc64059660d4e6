"""`stellarstack nodeproxy` as a real process: HTTP and WebSocket against a real dockerd,
including `kill -9` of the agent while its server runs."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from stellarstack.api.tokens import ServerGrant, sign_server_token
from support.armagetronad import query, readable
from support.docker_engine import require_image
from support.runtime_harness import TOY_BLUEPRINT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

CLI = Path(sys.executable).parent / "stellarstack"


@dataclass
class NodeProcess:
    """A running agent process and how to reach it."""

    env: dict[str, str]
    port: int
    token: str
    log: Path
    panel_key: Ed25519PrivateKey
    ca: Path | None = None
    """The self-signed certificate clients trust when the node serves HTTPS."""
    process: subprocess.Popen[bytes] | None = None

    def server_token(self, name: str, *scopes: str, namespace: str = "node") -> str:
        """A token the panel would sign for a browser."""
        now = datetime.now(UTC)
        grant = ServerGrant(
            subject="alice",
            namespace=namespace,
            name=name,
            scopes=frozenset(scopes),
            audience=self.env["STELLARSTACK_NODE_AGENT_ID"],
            expires_at=now + timedelta(minutes=5),
        )
        return sign_server_token(self.panel_key, grant, now=now)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "nodeproxy"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"nodeproxy did not answer: {self.log.read_text()}")

    def kill_hard(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30,
            verify=self.verify,
        )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "node.crt", directory / "node.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_node(tmp_path: Path, *, tls: bool = False) -> NodeProcess:
    agent_id = f"api-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex + uuid.uuid4().hex
    port = free_port()
    panel_key = Ed25519PrivateKey.generate()
    public_pem = (
        panel_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(tmp_path / "node"),
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": agent_id,
        "STELLARSTACK_NODE_PUBLISH_ADDRESS": "127.0.0.1",
        "STELLARSTACK_NODE_CONSOLE_CONNECTIONS_PER_SERVER": "2",
        "STELLARSTACK_NODE_PANEL_PUBLIC_KEY": public_pem,
    }
    ca = None
    if tls:
        ca, key = self_signed(tmp_path)
        env["STELLARSTACK_NODE_TLS_CERT"], env["STELLARSTACK_NODE_TLS_KEY"] = str(ca), str(key)
    process = NodeProcess(
        env=env,
        port=port,
        token=token,
        log=tmp_path / "nodeproxy.log",
        panel_key=panel_key,
        ca=ca,
    )
    process.start()
    return process


def remove_containers(docker_client: Any, process: NodeProcess) -> None:
    agent = process.env["STELLARSTACK_NODE_AGENT_ID"]
    for container in docker_client.containers.list(
        all=True, filters={"label": f"stellarstack.io/agent={agent}"}
    ):
        container.remove(force=True)


@pytest.fixture
def node(tmp_path: Path, docker_client: Any, toy_image: str) -> Iterator[NodeProcess]:
    process = start_node(tmp_path)
    yield process
    process.stop()
    remove_containers(docker_client, process)


def gameserver(name: str, port: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "GameServer",
        "metadata": {"name": name, "namespace": "node"},
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


async def drain(ws: Any) -> None:
    """Read until the server closes the connection (bounded)."""
    for _ in range(200):
        await asyncio.wait_for(ws.recv(), 10)


def wait_state(client: httpx.Client, name: str, state: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    current: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/namespaces/node/gameservers/{name}/status")
        assert response.status_code == 200, response.text
        current = response.json()
        if current.get("state") == state:
            return current
        time.sleep(0.3)
    raise AssertionError(f"{name} never reached {state}: {current}")


def wait_log(client: httpx.Client, name: str, text: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines = client.get(f"/api/v1/namespaces/node/gameservers/{name}/logs").json()["lines"]
        if any(text in line for line in lines):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not logged by {name}")


def test_authentication_is_required(node: NodeProcess) -> None:
    assert httpx.get(f"{node.url}/api/v1/blueprints").status_code == 401
    with node.client(token="x" * 64) as wrong:
        assert wrong.get("/api/v1/blueprints").status_code == 401
    with node.client() as client:
        assert client.get("/api/v1/blueprints").json() == []


def test_invalid_resources_are_refused_with_field_paths(node: NodeProcess) -> None:
    with node.client() as client:
        bad = gameserver("bad", free_port())
        bad["spec"]["ports"][0]["port"] = 0
        response = client.put("/api/v1/namespaces/node/gameservers/bad", json=bad)
        assert response.status_code == 422
        assert any(e.startswith("spec.ports[0].port") for e in response.json()["errors"])
        mismatch = client.put("/api/v1/namespaces/node/gameservers/other", json=bad)
        assert "metadata.name" in mismatch.json()["errors"][0]
        assert client.put("/api/v1/namespaces/node/pods/x", json={}).status_code == 404
        assert client.get("/api/v1/namespaces/node/gameservers").json() == []


def test_server_life_through_the_api_including_agent_kill_9(
    node: NodeProcess, docker_client: Any
) -> None:
    with node.client() as client:
        assert client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT).status_code == 200
        created = client.put(
            "/api/v1/namespaces/node/gameservers/api-life",
            json=gameserver("api-life", free_port()),
        )
        assert created.status_code == 200, created.text
        assert created.json()["metadata"]["generation"] == 1
        wait_state(client, "api-life", "Running")

        assert (
            client.post(
                "/api/v1/namespaces/node/gameservers/api-life/command", json={"line": "say via api"}
            ).status_code
            == 204
        )
        wait_log(client, "api-life", "[say] via api")
        stats = client.get("/api/v1/namespaces/node/gameservers/api-life/stats").json()
        assert stats["memoryBytes"] > 0

    containers = docker_client.containers.list(
        filters={"label": f"stellarstack.io/agent={node.env['STELLARSTACK_NODE_AGENT_ID']}"}
    )
    assert len(containers) == 1
    before = containers[0].id

    node.kill_hard()
    node.start()
    with node.client() as client:
        wait_state(client, "api-life", "Running")
        time.sleep(2)  # a few reconcile passes of the new process
        wait_state(client, "api-life", "Running")
        after = docker_client.containers.list(
            all=True,
            filters={"label": f"stellarstack.io/agent={node.env['STELLARSTACK_NODE_AGENT_ID']}"},
        )
        assert [c.id for c in after] == [before]

        power = "/api/v1/namespaces/node/gameservers/api-life/power"
        assert client.post(power, json={"action": "stop"}).status_code == 202
        wait_state(client, "api-life", "Stopped")
        assert client.post(power, json={"action": "start"}).status_code == 202
        wait_state(client, "api-life", "Running")
        wait_log(client, "api-life", "boots=2")
        restart = client.post(power, json={"action": "restart"}).json()
        deadline = time.monotonic() + 60
        while True:
            status = client.get("/api/v1/namespaces/node/gameservers/api-life/status").json()
            if (
                status.get("lastRestartRequest") == restart["request"]
                and status["state"] == "Running"
            ):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.3)
        wait_log(client, "api-life", "boots=3")

        assert client.delete("/api/v1/namespaces/node/gameservers/api-life").status_code == 202
        deadline = time.monotonic() + 60
        while client.get("/api/v1/namespaces/node/gameservers/api-life").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    assert not docker_client.containers.list(
        all=True,
        filters={"label": f"stellarstack.io/agent={node.env['STELLARSTACK_NODE_AGENT_ID']}"},
    )


async def test_console_websocket_backlog_commands_and_limits(node: NodeProcess) -> None:
    with node.client() as client:
        client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT)
        client.put("/api/v1/namespaces/node/gameservers/wsy", json=gameserver("wsy", free_port()))
        wait_state(client, "wsy", "Running")
    url = f"ws://127.0.0.1:{node.port}/api/v1/namespaces/node/gameservers/wsy/console"
    auth = {"Authorization": f"Bearer {node.token}"}

    with pytest.raises(InvalidStatus):
        async with connect(url) as unauthenticated:
            await unauthenticated.recv()

    async def read_until(ws: Any, text: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            seen.append(message)
            if text in message.get("data", "") or text in message.get("message", ""):
                return seen

    async with connect(url, additional_headers=auth) as first:
        await read_until(first, "ready name=wsy")  # the backlog
        await first.send(json.dumps({"type": "command", "line": "say over websocket"}))
        await read_until(first, "[say] over websocket")
        await first.send("not json")
        await read_until(first, "expected")

        async with connect(url, additional_headers=auth) as second:
            await read_until(second, "ready name=wsy")
            # The cap is two connections per server; a third is turned away.
            async with connect(url, additional_headers=auth) as third:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(third.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013

        # Bursts beyond the rate limit are dropped with an error, not queued.
        for number in range(40):
            await first.send(json.dumps({"type": "command", "line": f"say burst {number}"}))
        await read_until(first, "rate limit")

    async with connect(url, additional_headers=auth) as big:
        await big.send(json.dumps({"type": "command", "line": "x" * 10000}))
        with pytest.raises(ConnectionClosed) as closed:
            await drain(big)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


async def test_server_tokens_grant_exactly_their_scopes(node: NodeProcess) -> None:
    with node.client() as client:
        client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT)
        client.put("/api/v1/namespaces/node/gameservers/tok", json=gameserver("tok", free_port()))
        client.put(
            "/api/v1/namespaces/node/gameservers/other", json=gameserver("other", free_port())
        )
        wait_state(client, "tok", "Running")
    viewer = node.server_token("tok", "console.read", "files.read", "stats.read")
    base = f"{node.url}/api/v1/namespaces/node/gameservers"
    with node.client(token=viewer) as browser:
        assert browser.get(f"{base}/tok/files/list").status_code == 200
        assert browser.get(f"{base}/tok/stats").status_code == 200
        assert browser.get(f"{base}/tok/logs").status_code == 200
        denied = browser.put(f"{base}/tok/files/content", params={"path": "x"}, content=b"x")
        assert denied.status_code == 403
        assert "files.write" in denied.json()["detail"]
        assert browser.post(f"{base}/tok/power", json={"action": "kill"}).status_code == 403
        assert browser.post(f"{base}/tok/command", json={"line": "say x"}).status_code == 403
        assert browser.get(f"{base}/other/files/list").status_code == 403
        assert browser.get("/api/v1/blueprints").status_code == 403  # panel-only routes
        assert browser.delete(f"{base}/tok").status_code == 403
    # Browsers may send a server token in the query string; the node token never works there.
    assert httpx.get(f"{base}/tok/files/list", params={"token": viewer}).status_code == 200
    assert httpx.get(f"{base}/tok/files/list", params={"token": node.token}).status_code == 401
    expired_key = Ed25519PrivateKey.generate()
    forged = sign_server_token(
        expired_key,
        ServerGrant(
            "mallory",
            "node",
            "tok",
            frozenset({"files.write"}),
            node.env["STELLARSTACK_NODE_AGENT_ID"],
            datetime.now(UTC) + timedelta(minutes=5),
        ),
        now=datetime.now(UTC),
    )
    with node.client(token=forged) as mallory:
        assert mallory.get(f"{base}/tok/files/list").status_code == 401

    url = f"ws://127.0.0.1:{node.port}/api/v1/namespaces/node/gameservers/tok/console"
    async with connect(f"{url}?token={viewer}") as console:
        while "ready name=tok" not in json.loads(await asyncio.wait_for(console.recv(), 20)).get(
            "data", ""
        ):
            pass
        await console.send(json.dumps({"type": "command", "line": "say from a viewer"}))
        while True:
            message = json.loads(await asyncio.wait_for(console.recv(), 20))
            if message["type"] == "error":
                assert "console.write" in message["message"]
                break
    writer = node.server_token("tok", "console.read", "console.write")
    async with connect(f"{url}?token={writer}") as console:
        await console.send(json.dumps({"type": "command", "line": "say from a writer"}))
        while "[say] from a writer" not in json.loads(
            await asyncio.wait_for(console.recv(), 20)
        ).get("data", ""):
            pass
    no_console = node.server_token("tok", "files.read")
    with pytest.raises(InvalidStatus):
        async with connect(f"{url}?token={no_console}") as refused:
            await refused.recv()


def test_https_openapi_and_stats_stream(tmp_path: Path, docker_client: Any, toy_image: str) -> None:
    node = start_node(tmp_path, tls=True)
    try:
        # Plain HTTP to the TLS port fails; HTTPS with the node's certificate works.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{node.port}/healthz", timeout=3)
        with node.client() as client:
            schema = client.get("/openapi.json").json()
            assert (
                "/api/v1/namespaces/{namespace}/gameservers/{name}/console" not in schema["paths"]
            )  # WebSockets are not in OpenAPI; the HTTP routes are
            assert "/api/v1/namespaces/{namespace}/gameservers/{name}/power" in schema["paths"]
            assert client.get("/docs").status_code == 200
            client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT)
            client.put(
                "/api/v1/namespaces/node/gameservers/streamy",
                json=gameserver("streamy", free_port()),
            )
            wait_state(client, "streamy", "Running")
            events = []
            with client.stream(
                "GET",
                "/api/v1/namespaces/node/gameservers/streamy/stats/stream",
                params={"interval": 1, "count": 3},
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[len("data: ") :]))
            assert len(events) == 3
            assert all(event["memoryBytes"] > 0 for event in events)
            assert events[-1]["cpuPercent"] is not None
            assert events[0]["diskBytes"] > 0
    finally:
        node.stop()
        remove_containers(docker_client, node)


def test_armagetronad_survives_kill_9_of_the_agent(tmp_path: Path, docker_client: Any) -> None:
    require_image(docker_client, "localhost/stellarstack/armagetronad:1")
    examples = Path(__file__).resolve().parents[3] / "examples" / "armagetronad.yaml"
    documents = [d for d in yaml.safe_load_all(examples.read_text()) if d]
    blueprint = next(d for d in documents if d["kind"] == "Blueprint")
    server = next(d for d in documents if d["kind"] == "GameServer")
    udp = free_port()
    server["metadata"]["namespace"] = "node"
    server["spec"]["ports"][0]["hostPort"] = udp
    node = start_node(tmp_path)
    try:
        with node.client() as client:
            client.put("/api/v1/blueprints/armagetronad", json=blueprint)
            client.put("/api/v1/namespaces/node/gameservers/armagetronad", json=server)
            wait_state(client, "armagetronad", "Running", within=120)
        agent = node.env["STELLARSTACK_NODE_AGENT_ID"]
        before = [
            c.id
            for c in docker_client.containers.list(
                all=True, filters={"label": f"stellarstack.io/agent={agent}"}
            )
        ]
        node.kill_hard()
        node.start()
        with node.client() as client:
            time.sleep(2)  # a few passes of the new agent
            wait_state(client, "armagetronad", "Running")
            after = [
                c.id
                for c in docker_client.containers.list(
                    all=True, filters={"label": f"stellarstack.io/agent={agent}"}
                )
            ]
            assert after == before  # re-adopted, not recreated, no duplicate
            assert b"Friday Night Light Cycles" in readable(query(udp))
            assert (
                client.post(
                    "/api/v1/namespaces/node/gameservers/armagetronad/power",
                    json={"action": "stop"},
                ).status_code
                == 202
            )
            status = wait_state(client, "armagetronad", "Stopped")
            assert status["lastExit"]["exitCode"] == 0  # QUIT, after the agent's restart
    finally:
        node.stop()
        remove_containers(docker_client, node)


def test_backups_through_the_api_and_their_download(node: NodeProcess) -> None:
    with node.client() as client:
        client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT)
        client.put(
            "/api/v1/namespaces/node/gameservers/saved", json=gameserver("saved", free_port())
        )
        wait_state(client, "saved", "Running")
        backup = {"kind": "Backup", "metadata": {"name": "b1"}, "spec": {"gameServer": "saved"}}
        assert client.put("/api/v1/namespaces/node/backups/b1", json=backup).status_code == 200
        deadline = time.monotonic() + 60
        while True:
            stored = client.get("/api/v1/namespaces/node/backups/b1").json()
            if stored.get("status", {}).get("phase") == "Completed":
                break
            assert time.monotonic() < deadline, stored
            time.sleep(0.3)
        archive = client.get("/api/v1/namespaces/node/backups/b1/archive")
        assert archive.status_code == 200
        assert hashlib.sha256(archive.content).hexdigest() == stored["status"]["sha256"]
        assert archive.headers["x-checksum-sha256"] == stored["status"]["sha256"]
        part = client.get(
            "/api/v1/namespaces/node/backups/b1/archive", headers={"Range": "bytes=0-9"}
        )
        assert (part.status_code, part.content) == (206, archive.content[:10])
        missing = client.get("/api/v1/namespaces/node/backups/nope/archive")
        assert missing.status_code == 404
        locked = {**backup, "spec": {**backup["spec"], "locked": True}}
        client.put("/api/v1/namespaces/node/backups/b1", json=locked)
        assert client.delete("/api/v1/namespaces/node/backups/b1").status_code == 409
    viewer = node.server_token("saved", "files.read")
    with node.client(token=viewer) as browser:
        # Backups are the panel's: a server token does not reach them.
        assert browser.get("/api/v1/namespaces/node/backups/b1/archive").status_code == 403


def host_cpu_millicores() -> int:
    """What the host offers this process: its CPUs, or the CPU quota set on the cgroup
    hierarchy's root when there is one (the agent also honours quotas further down; the
    tests run where none is set)."""
    cores = float(os.sysconf("SC_NPROCESSORS_ONLN"))
    v2, v1 = Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    if v2.exists() and not v2.read_text().startswith("max"):
        quota, period = v2.read_text().split()
        cores = min(cores, int(quota) / int(period))
    elif v1.exists() and int(v1.read_text()) > 0:
        period = (v1.parent / "cpu.cfs_period_us").read_text()
        cores = min(cores, int(v1.read_text()) / int(period))
    return int(cores * 1000)


def test_node_reports_who_it_is_its_capacity_and_allocations(node: NodeProcess) -> None:
    assert httpx.get(f"{node.url}/api/v1/node").status_code == 401
    with node.client(token=node.server_token("cap", "files.read")) as browser:
        assert browser.get("/api/v1/node").status_code == 403
    data_dir = Path(node.env["STELLARSTACK_NODE_DATA_DIR"])
    with node.client() as client:
        assert client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT).status_code == 200
        empty = client.get("/api/v1/node")
        assert empty.status_code == 200, empty.text
        report = empty.json()
        assert node.process is not None
        assert report["pid"] == node.process.pid
        assert report["agentId"] == node.env["STELLARSTACK_NODE_AGENT_ID"]
        capacity = report["capacity"]
        assert capacity["memoryBytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        disk = shutil.disk_usage(data_dir)
        assert capacity["diskBytes"] == disk.total
        # Free space moves while other work writes; within 1 GiB of what the test sees.
        assert abs(capacity["diskFreeBytes"] - disk.free) < 2**30
        assert capacity["cpuMillicores"] == host_cpu_millicores() > 0
        assert report["allocated"] == {
            "memoryBytes": 0,
            "diskBytes": 0,
            "cpuMillicores": 0,
            "servers": 0,
        }
        for name, resources in (
            ("cap-a", {"cpu": "500m", "memory": "128Mi", "disk": "1Gi"}),
            ("cap-b", {"cpu": "1.5", "memory": "256Mi", "disk": "2Gi"}),
        ):
            document = gameserver(name, free_port(), power={"state": "Stopped"})
            document["spec"]["resources"] = resources
            answer = client.put(f"/api/v1/namespaces/node/gameservers/{name}", json=document)
            assert answer.status_code == 200, answer.text
        assert client.get("/api/v1/node").json()["allocated"] == {
            "memoryBytes": 384 * 2**20,
            "diskBytes": 3 * 2**30,
            "cpuMillicores": 2000,
            "servers": 2,
        }
