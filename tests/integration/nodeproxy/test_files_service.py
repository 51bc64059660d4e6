"""`stellarstack nodeproxy files` as a real process on loopback: one server's files, the node
API's routes and SFTP, panel-signed server tokens only."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.tokens import ServerGrant, sign_server_token
from stellarstack.operator.filespod import files_resources_document
from support.runtime_harness import TOY_BLUEPRINT, free_port

NAMESPACE, NAME = "games", "mc1"
BASE = f"/api/v1/namespaces/{NAMESPACE}/gameservers/{NAME}/files"
ALL_FILES = frozenset({"files.read", "files.write", "files.delete", "files.archive"})


def token(
    key: Ed25519PrivateKey,
    *,
    namespace: str = NAMESPACE,
    name: str = NAME,
    scopes: frozenset[str] = ALL_FILES,
    audience: str = "kubernetes",
    subject: str = "alice",
) -> str:
    now = datetime.now(UTC)
    grant = ServerGrant(
        subject=subject,
        namespace=namespace,
        name=name,
        scopes=scopes,
        audience=audience,
        expires_at=now + timedelta(minutes=5),
    )
    return sign_server_token(key, grant, now=now)


def stellarstack() -> str:
    executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
    assert executable, "the stellarstack entry point is installed (make install)"
    return executable


def write_inputs(folder: Path, key: Ed25519PrivateKey) -> tuple[Path, Path]:
    blueprint = copy.deepcopy(TOY_BLUEPRINT)
    blueprint["spec"]["fileDenylist"] = ["*.secret"]
    gameserver = GameServer.model_validate(
        {
            "kind": "GameServer",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"blueprint": "toy", "resources": {"disk": "100Mi"}},
        }
    )
    resources = folder / "server.yaml"
    resources.write_text(files_resources_document(gameserver, Blueprint.model_validate(blueprint)))
    public = folder / "panel.pem"
    public.write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return resources, public


@dataclass
class Service:
    url: str
    root: Path
    key: Ed25519PrivateKey
    sftp_port: int
    host_key: asyncssh.SSHKey


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    key = Ed25519PrivateKey.generate()
    resources, public = write_inputs(tmp_path, key)
    root = tmp_path / "data"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "host_key").write_bytes(host_key.export_private_key("openssh"))
    port, sftp_port = free_port(), free_port()
    log = (tmp_path / "files.log").open("w")
    process = subprocess.Popen(
        [
            stellarstack(),
            "nodeproxy",
            "files",
            "--root",
            str(root),
            "--server",
            f"{NAMESPACE}/{NAME}",
            "--resources",
            str(resources),
            "--public-key-file",
            str(public),
            "--listen",
            f"127.0.0.1:{port}",
            "--sftp-listen",
            f"127.0.0.1:{sftp_port}",
            "--sftp-host-key",
            str(tmp_path / "host_key"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("STELLARSTACK_NODE_")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "files.log").read_text()
            assert time.monotonic() < deadline, "the files service did not answer in 30 s"
            time.sleep(0.2)
        yield Service(url, root, key, sftp_port, host_key)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
        finally:
            log.close()
    assert code == 0, (tmp_path / "files.log").read_text()[-3000:]


def test_upload_list_and_download_with_a_server_token(service: Service) -> None:
    headers = {"Authorization": f"Bearer {token(service.key)}"}
    put = httpx.put(
        f"{service.url}{BASE}/content",
        params={"path": "config/server.properties"},
        content=b"motd=hello\n",
        headers=headers,
    )
    assert put.status_code == 201, put.text
    assert (service.root / "config" / "server.properties").read_bytes() == b"motd=hello\n"
    listed = httpx.get(f"{service.url}{BASE}/list", params={"path": "config"}, headers=headers)
    assert [e["name"] for e in listed.json()] == ["server.properties"]
    # The query parameter is how a token passes the API server's service proxy.
    got = httpx.get(
        f"{service.url}{BASE}/content",
        params={"path": "config/server.properties", "token": token(service.key)},
    )
    assert got.status_code == 200
    assert got.content == b"motd=hello\n"


@pytest.mark.parametrize(
    ("make_token", "status"),
    [
        (lambda key: token(key, name="other"), 403),  # a valid token, for another server
        (lambda key: token(key, namespace="elsewhere"), 403),
        (lambda key: token(key, scopes=frozenset({"files.read"})), 403),  # no files.write
        (lambda key: token(key, audience="node-1"), 401),  # a Docker node's token
        (lambda key: token(Ed25519PrivateKey.generate()), 401),  # not signed by the panel
        (lambda key: "t" * 48, 401),  # a node token means nothing here
        (lambda key: "", 401),
    ],
)
def test_only_this_servers_tokens_with_the_scope_may_write(
    service: Service, make_token: object, status: int
) -> None:
    presented = make_token(service.key)  # type: ignore[operator]
    headers = {"Authorization": f"Bearer {presented}"} if presented else {}
    response = httpx.put(
        f"{service.url}{BASE}/content",
        params={"path": "x.txt"},
        content=b"x",
        headers=headers,
    )
    assert response.status_code == status, response.text
    assert not (service.root / "x.txt").exists()


def test_another_servers_path_is_not_served_even_with_its_token(service: Service) -> None:
    other = token(service.key, name="other")
    response = httpx.get(
        f"{service.url}/api/v1/namespaces/{NAMESPACE}/gameservers/other/files/list",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 404, response.text


def test_denylist_and_symlinks_are_enforced(service: Service, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {token(service.key)}"}
    denied = httpx.put(
        f"{service.url}{BASE}/content", params={"path": "a.secret"}, content=b"x", headers=headers
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "denied"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host.txt").write_text("host data")
    (service.root / "escape").symlink_to(outside)
    read = httpx.get(
        f"{service.url}{BASE}/content", params={"path": "escape/host.txt"}, headers=headers
    )
    assert read.status_code == 403
    assert read.json()["code"] == "symlink_refused"
    write = httpx.put(
        f"{service.url}{BASE}/content",
        params={"path": "escape/planted.txt"},
        content=b"x",
        headers=headers,
    )
    assert write.status_code == 403
    assert not (outside / "planted.txt").exists()


def test_bad_inputs_are_refused_naming_the_flag(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    resources, public = write_inputs(tmp_path, key)
    (tmp_path / "data").mkdir()
    base = [stellarstack(), "nodeproxy", "files", "--root", str(tmp_path / "data")]
    cases = [
        (["--server", "games/other", "--resources", str(resources)], "--resources"),
        (["--server", "nonamespace", "--resources", str(resources)], "--server"),
        (["--server", f"{NAMESPACE}/{NAME}", "--resources", str(public)], "--resources"),
    ]
    for args, flag in cases:
        done = subprocess.run(
            [*base, *args, "--public-key-file", str(public), "--listen", "127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert flag in done.stderr
    done = subprocess.run(
        [
            *base,
            "--server",
            f"{NAMESPACE}/{NAME}",
            "--resources",
            str(resources),
            "--public-key-file",
            str(resources),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--public-key-file" in done.stderr


async def sftp_login(service: Service, user: str, password: str) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(
        asyncssh.connect(
            "127.0.0.1",
            service.sftp_port,
            username=user,
            password=password,
            client_keys=None,
            known_hosts=None,
            agent_path=None,
            config=None,
        ),
        timeout=30,
    )


async def test_sftp_login_with_a_server_token(service: Service) -> None:
    (service.root / "installed.txt").write_text("installed\n")
    async with (
        await sftp_login(service, f"alice.{NAMESPACE}.{NAME}", token(service.key)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert conn.get_server_host_key().get_fingerprint() == service.host_key.get_fingerprint()
        assert "installed.txt" in await sftp.listdir("/")
        async with sftp.open("/installed.txt", "rb") as handle:
            assert await handle.read() == b"installed\n"
        async with sftp.open("/uploaded.cfg", "wb") as handle:
            await handle.write(b"x=1\n")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("/a.secret", "wb")  # the Blueprint's deny-list
    assert (service.root / "uploaded.cfg").read_bytes() == b"x=1\n"


async def test_sftp_permissions_follow_the_token_scopes(service: Service) -> None:
    read_only = token(service.key, scopes=frozenset({"files.read"}))
    async with (
        await sftp_login(service, f"alice.{NAMESPACE}.{NAME}", read_only) as conn,
        conn.start_sftp_client() as sftp,
    ):
        await sftp.listdir("/")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("/new.cfg", "wb")
    assert not (service.root / "new.cfg").exists()


@pytest.mark.parametrize(
    ("user", "make_token"),
    [
        ("bob", lambda key: token(key)),  # issued to alice, presented by bob
        ("alice", lambda key: token(key, name="other")),
        ("alice", lambda key: token(key, audience="node-1")),
        ("alice", lambda key: token(Ed25519PrivateKey.generate())),
        ("alice", lambda key: token(key, scopes=frozenset({"console.read"}))),
        ("alice", lambda key: "t" * 48),
    ],
)
async def test_sftp_refuses_other_credentials(
    service: Service, user: str, make_token: object
) -> None:
    password = make_token(service.key)  # type: ignore[operator]
    with pytest.raises(asyncssh.PermissionDenied):
        await sftp_login(service, f"{user}.{NAMESPACE}.{NAME}", password)
