"""The node's SFTP server against real clients: OpenSSH's `sftp` (batch mode, key auth) and
asyncssh's client, both over loopback to an in-process `SftpService` on a free port.

Covers the happy paths, every way a planted link could lead out of the root, `..`, the
deny-list, the quota, permission nodes, refused logins, the login rate limit, revocation and
suspension of a live session."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.nodeproxy.sftp import (
    LocalAuthenticator,
    LoginLimits,
    SftpService,
    hash_password,
)
from stellarstack.nodeproxy.store import Store
from support.files_sandbox import SECRET, Sandbox
from support.runtime_harness import TOY_BLUEPRINT

SFTP = shutil.which("sftp")
OWNER = (1000, 1000)
PASSWORD = "correct horse battery staple"
CLIENT_TIMEOUT = 30.0


@dataclass
class Node:
    service: SftpService
    store: Store
    box: Sandbox
    tmp: Path
    alice_key: Path
    bob_key: Path
    alice_private: asyncssh.SSHKey

    @property
    def root(self) -> Path:
        return self.box.root

    @property
    def port(self) -> int:
        return self.service.port


def _gameserver(name: str, *, suspended: bool = False) -> GameServer:
    return GameServer.model_validate(
        {
            "kind": "GameServer",
            "metadata": {"name": name, "namespace": "games"},
            "spec": {"blueprint": "toy", "resources": {"disk": "100Mi"}, "suspended": suspended},
        }
    )


def _write_key(path: Path) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key("openssh"))
    return key


def _public(key: asyncssh.SSHKey) -> str:
    return str(key.export_public_key("openssh").decode().strip())


async def _start(tmp_path: Path, limits: LoginLimits | None = None) -> Node:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "box").mkdir()
    box = Sandbox.create(tmp_path / "box")
    os.chown(box.root, *OWNER)
    other = tmp_path / "other"
    other.mkdir()
    store = Store(tmp_path / "state.sqlite")
    blueprint = copy.deepcopy(TOY_BLUEPRINT)
    blueprint["spec"]["fileDenylist"] = ["*.secret"]
    store.put(Blueprint.model_validate(blueprint))
    store.put(_gameserver("mc1"))
    store.put(_gameserver("other"))
    alice_private = _write_key(tmp_path / "alice_key")
    bob_private = _write_key(tmp_path / "bob_key")
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    all_perms = ["files.sftp", "files.read", "files.create", "files.update", "files.delete"]
    authenticator = LocalAuthenticator.from_users(
        tmp_path / "users.json",
        {
            "alice": {
                "password": hash_password(PASSWORD),
                "authorized_keys": [_public(alice_private) + " alice@laptop"],
                "servers": {"games/mc1": all_perms},
            },
            "bob": {
                "password": hash_password(PASSWORD),
                "authorized_keys": [_public(bob_private)],
                "servers": {"games/mc1": ["files.sftp", "files.read", "files.create"]},
            },
            "carol": {
                "authorized_keys": [_public(stranger)],
                "servers": {"games/mc1": ["files.read"]},  # no files.sftp
            },
        },
    )
    dirs = {("games", "mc1"): box.root, ("games", "other"): other}
    service = SftpService(
        store=store,
        data_dir=lambda namespace, name: dirs[(namespace, name)],
        authenticator=authenticator,
        host_key=tmp_path / "ssh_host_ed25519_key",
        owner=OWNER,
        port=0,
        # Tests log in many times from one address; the rate-limit test sets its own.
        limits=limits or LoginLimits(per_ip_burst=10_000, per_user_burst=10_000),
        check_interval=0.5,
    )
    await service.start()
    return Node(
        service, store, box, tmp_path, tmp_path / "alice_key", tmp_path / "bob_key", alice_private
    )


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    started = await _start(tmp_path)
    try:
        yield started
    finally:
        await started.service.close()
        started.store.close()


async def _connect(node: Node, user: str = "alice.games.mc1", **auth: Any) -> Any:
    if not auth:
        auth = {"client_keys": [node.alice_private]}
    else:
        auth.setdefault("client_keys", None)
    return await asyncio.wait_for(
        asyncssh.connect(
            "127.0.0.1",
            node.port,
            username=user,
            known_hosts=None,
            agent_path=None,
            config=None,
            **auth,
        ),
        timeout=CLIENT_TIMEOUT,
    )


@dataclass
class Result:
    rc: int
    out: str
    err: str


async def _openssh(node: Node, commands: str, *, key: Path | None = None, user: str = "") -> Result:
    """Run OpenSSH's sftp in batch mode (stops at the first failing command)."""
    assert SFTP is not None
    batch = node.tmp / f"batch-{time.monotonic_ns()}"
    batch.write_text(commands.strip() + "\n")
    process = await asyncio.create_subprocess_exec(
        SFTP,
        "-F",
        "/dev/null",
        "-b",
        str(batch),
        "-P",
        str(node.port),
        "-i",
        str(key or node.alice_key),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        f"{user or 'alice.games.mc1'}@127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=node.tmp,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(node.tmp)},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=CLIENT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


needs_openssh = pytest.mark.skipif(SFTP is None, reason="OpenSSH sftp client not installed")


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob(".stellarstack-*")]


# -- happy paths ---------------------------------------------------------------------------


@needs_openssh
async def test_openssh_put_get_ls_mkdir_rename_chmod_rm(node: Node) -> None:
    local = node.tmp / "upload.txt"
    local.write_bytes(b"hello sftp\n" * 1000)
    result = await _openssh(
        node,
        f"""
        mkdir config
        put {local} config/server.cfg
        ls -l config
        rename config/server.cfg config/renamed.cfg
        chmod 640 config/renamed.cfg
        get config/renamed.cfg {node.tmp / "back.txt"}
        put {local} doomed.txt
        rm doomed.txt
        mkdir emptydir
        rmdir emptydir
        pwd
        """,
    )
    assert result.rc == 0, result.err
    assert "server.cfg" in result.out
    assert "Remote working directory: /" in result.out
    target = node.root / "config" / "renamed.cfg"
    assert target.read_bytes() == local.read_bytes()
    assert (node.tmp / "back.txt").read_bytes() == local.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # Everything created through SFTP belongs to the game user, not to the agent.
    for path in (node.root / "config", target):
        assert (path.stat().st_uid, path.stat().st_gid) == OWNER
    assert not (node.root / "doomed.txt").exists()
    assert not (node.root / "emptydir").exists()
    assert _leftovers(node.root) == []


@needs_openssh
async def test_openssh_resumed_upload_appends_to_the_partial_file(node: Node) -> None:
    local = node.tmp / "world.zip"
    local.write_bytes(os.urandom(300_000))
    partial = node.root / "world.zip"
    partial.write_bytes(local.read_bytes()[:100_000])
    os.chown(partial, *OWNER)
    result = await _openssh(node, f"reput {local} world.zip")
    assert result.rc == 0, result.err
    assert partial.read_bytes() == local.read_bytes()
    assert partial.stat().st_uid == OWNER[0]
    assert _leftovers(node.root) == []


async def test_asyncssh_password_client_round_trip(node: Node) -> None:
    conn = await _connect(node, password=PASSWORD)
    async with conn, conn.start_sftp_client() as sftp:
        async with sftp.open("notes.txt", "wb") as handle:
            await handle.write(b"abc" * 100_000)
        assert (await sftp.stat("notes.txt")).size == 300_000
        async with sftp.open("notes.txt", "rb") as handle:
            assert await handle.read() == b"abc" * 100_000
        await sftp.mkdir("dir")
        await sftp.rename("notes.txt", "dir/notes.txt")
        await sftp.chmod("dir/notes.txt", 0o4755)  # setuid is masked off
        names = sorted(await sftp.listdir("dir"))
        assert "notes.txt" in names
        assert await sftp.realpath("dir/../dir/./notes.txt") == "/dir/notes.txt"
        # Appending keeps the old content (the upload is still atomic).
        async with sftp.open("dir/notes.txt", "ab") as handle:
            await handle.write(b"!")
    path = node.root / "dir" / "notes.txt"
    assert path.read_bytes() == b"abc" * 100_000 + b"!"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert path.stat().st_uid == OWNER[0]


async def test_host_key_is_kept_with_mode_0600(node: Node, tmp_path: Path) -> None:
    key_file = tmp_path / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with await _connect(node) as conn:
        first = conn.get_server_host_key().export_public_key()
    await node.service.close()
    node.service._port = 0  # restart on a new free port with the same data dir
    await node.service.start()
    async with await _connect(node) as conn:
        assert conn.get_server_host_key().export_public_key() == first


# -- confinement ---------------------------------------------------------------------------


def _plant_links(box: Sandbox) -> None:
    root, outside = box.root, box.outside
    (root / "real").mkdir()
    (root / "abs_dir").symlink_to(outside)
    (root / "rel_dir").symlink_to("../outside")
    (root / "up_dir").symlink_to("../" * 12 + str(outside).lstrip("/"))
    (root / "chain_mid").symlink_to(outside)
    (root / "chain_dir").symlink_to("chain_mid")
    (root / "real" / "sub").symlink_to(outside)
    (root / "dangling_dir").symlink_to("../outside/missing")
    (root / "abs_file").symlink_to(outside / "canary.txt")
    (root / "rel_file").symlink_to("../outside/canary.txt")
    (root / "chain_file_mid").symlink_to("../outside/canary.txt")
    (root / "chain_file").symlink_to("chain_file_mid")
    (root / "dangling_file").symlink_to("../outside/missing.txt")


DIR_LINKS = ["abs_dir", "rel_dir", "up_dir", "chain_dir", "real/sub", "dangling_dir"]
FILE_LINKS = ["abs_file", "rel_file", "chain_file", "dangling_file"]


@pytest.mark.slow  # about 60 OpenSSH sessions, one per attempted command
@needs_openssh
async def test_openssh_through_planted_links_fails_and_outside_is_untouched(node: Node) -> None:
    _plant_links(node.box)
    before = node.box.snapshot_outside()
    local = node.tmp / "payload.txt"
    local.write_bytes(b"pwned")
    attempts = []
    for link in DIR_LINKS:
        attempts += [
            f"get {link}/canary.txt {node.tmp / 'leak.txt'}",
            f"put {local} {link}/canary.txt",
            f"put {local} {link}/new.txt",
            f"ls {link}/",
            f"ls {link}/dir",
            f"rm {link}/canary.txt",
            f"chmod 777 {link}/canary.txt",
            f"rename {link}/canary.txt stolen.txt",
            f"rename inside.txt {link}/moved.txt",
            f"mkdir {link}/newdir",
            f"rmdir {link}/dir",
            f"cd {link}",
        ]
    for link in FILE_LINKS:
        attempts += [
            f"get {link} {node.tmp / 'leak.txt'}",
            f"put {local} {link}",
            f"chmod 777 {link}",
        ]
    (node.root / "inside.txt").write_bytes(b"inside")
    for command in attempts:
        result = await _openssh(node, command)
        assert SECRET.decode() not in result.out
        if command.startswith("ls "):
            # OpenSSH echoes a pattern that matched nothing (exit 0) when stat and opendir
            # are refused; what matters is that no name from outside is listed.
            listed = result.out.split("\n", 1)[1]
            assert "canary.txt" not in listed, command
            assert "f.txt" not in listed, command
            continue
        assert result.rc != 0, f"{command!r} succeeded: {result.out}"
    assert not (node.tmp / "leak.txt").exists()
    assert node.box.snapshot_outside() == before
    assert (node.root / "inside.txt").read_bytes() == b"inside"
    # Removing or renaming a link acts on the link itself, inside the root.
    result = await _openssh(node, "rm abs_file\nrename rel_dir moved_link")
    assert result.rc == 0, result.err
    assert not (node.root / "abs_file").is_symlink()
    assert (node.root / "moved_link").is_symlink()
    assert node.box.snapshot_outside() == before
    assert _leftovers(node.root) == []


async def test_asyncssh_links_are_reported_never_followed(node: Node) -> None:
    _plant_links(node.box)
    before = node.box.snapshot_outside()
    async with await _connect(node) as conn, conn.start_sftp_client() as sftp:
        for link in FILE_LINKS:
            attrs = await sftp.lstat(link)  # reported as the link itself
            assert attrs.permissions is not None
            assert stat.S_ISLNK(attrs.permissions)
            with pytest.raises(asyncssh.SFTPError) as caught:
                await sftp.stat(link)  # stat would follow it: refused
            assert caught.value.code == asyncssh.FX_PERMISSION_DENIED
            assert await sftp.readlink(link)
            for mode in ("rb", "wb", "ab"):
                with pytest.raises(asyncssh.SFTPError) as caught:
                    await sftp.open(link, mode)
                assert caught.value.code == asyncssh.FX_PERMISSION_DENIED
            with pytest.raises(asyncssh.SFTPError):
                await sftp.setstat(link, asyncssh.SFTPAttrs(permissions=0o777))
        for link in DIR_LINKS:
            with pytest.raises(asyncssh.SFTPError) as caught:
                await sftp.listdir(link)
            assert caught.value.code == asyncssh.FX_PERMISSION_DENIED
            with pytest.raises(asyncssh.SFTPError):
                await sftp.stat(f"{link}/canary.txt")
            with pytest.raises(asyncssh.SFTPError):
                await sftp.remove(f"{link}/canary.txt")
        with pytest.raises(asyncssh.SFTPError) as caught:
            await sftp.symlink("/etc/passwd", "newlink")
        assert caught.value.code == asyncssh.FX_PERMISSION_DENIED
        with pytest.raises(asyncssh.SFTPError):
            await sftp.link("abs_file", "hard")
        with pytest.raises(asyncssh.SFTPError) as caught:
            await sftp.statvfs("/")
        assert caught.value.code == asyncssh.FX_OP_UNSUPPORTED
    assert not (node.root / "newlink").exists()
    assert not (node.root / "hard").exists()
    assert node.box.snapshot_outside() == before


async def test_dotdot_and_absolute_paths_stay_inside_the_root(node: Node) -> None:
    (node.root / "inside.txt").write_bytes(b"inside")
    async with await _connect(node) as conn, conn.start_sftp_client() as sftp:
        assert await sftp.realpath("/../../etc") == "/etc"
        assert await sftp.realpath("../../..") == "/"
        with pytest.raises(asyncssh.SFTPError) as caught:
            await sftp.stat("/../../etc/passwd")
        assert caught.value.code == asyncssh.FX_NO_SUCH_FILE
        with pytest.raises(asyncssh.SFTPError) as caught:
            await sftp.open(f"/../../../{node.box.outside}/canary.txt", "rb")
        assert caught.value.code == asyncssh.FX_NO_SUCH_FILE
        assert await sftp.listdir("/../..") == await sftp.listdir("/")
        async with sftp.open("../../../escape.txt", "wb") as handle:
            await handle.write(b"x")
        async with sftp.open("/../inside.txt", "rb") as handle:
            assert await handle.read() == b"inside"
    assert (node.root / "escape.txt").read_bytes() == b"x"
    assert not (node.tmp / "escape.txt").exists()
    assert not (node.box.outside / "escape.txt").exists()


@needs_openssh
async def test_openssh_symlink_and_hardlink_creation_refused(node: Node) -> None:
    (node.root / "inside.txt").write_bytes(b"inside")
    for command in ("symlink /etc/passwd evil", "ln -s inside.txt evil", "ln inside.txt evil"):
        result = await _openssh(node, command)
        assert result.rc != 0, command
    assert not os.path.lexists(node.root / "evil")


async def test_denylisted_files_are_refused_and_hidden(node: Node) -> None:
    (node.root / "server.secret").write_bytes(b"token")
    (node.root / "ok.txt").write_bytes(b"ok")
    async with await _connect(node) as conn, conn.start_sftp_client() as sftp:
        assert "server.secret" not in await sftp.listdir("/")
        for call in (
            sftp.open("server.secret", "rb"),
            sftp.open("server.secret", "wb"),
            sftp.open("new.secret", "wb"),
            sftp.stat("server.secret"),
            sftp.remove("server.secret"),
            sftp.rename("server.secret", "plain.txt"),
            sftp.rename("ok.txt", "ok.secret"),
            sftp.chmod("server.secret", 0o777),
            sftp.mkdir("dir.secret"),
        ):
            with pytest.raises(asyncssh.SFTPError) as caught:
                await call
            assert caught.value.code == asyncssh.FX_PERMISSION_DENIED
    assert (node.root / "server.secret").read_bytes() == b"token"
    assert not (node.root / "new.secret").exists()
    assert (node.root / "ok.txt").exists()


@needs_openssh
async def test_quota_exceeded_upload_is_refused_leaving_nothing(node: Node) -> None:
    # Fill the 100Mi quota but for ~1 MiB with allocated (not sparse) blocks.
    filler = node.root / "world.dat"
    with filler.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, 99 * 1024 * 1024)
    local = node.tmp / "big.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024))
    result = await _openssh(node, f"put {local} big.bin")
    assert result.rc != 0
    async with await _connect(node) as conn, conn.start_sftp_client() as sftp:
        with pytest.raises(asyncssh.SFTPError) as caught:
            async with sftp.open("big2.bin", "wb") as handle:
                await handle.write(local.read_bytes())
        assert caught.value.code == asyncssh.FX_FAILURE
        assert "quota" in str(caught.value.reason)
    assert not (node.root / "big.bin").exists()
    assert not (node.root / "big2.bin").exists()
    assert _leftovers(node.root) == []


async def test_sftp_channel_ended_mid_upload_leaves_nothing(node: Node) -> None:
    async with await _connect(node) as conn:
        sftp = await conn.start_sftp_client()
        handle = await sftp.open("partial.bin", "wb")
        await handle.write(b"x" * 100_000)
        sftp.exit()  # ends the SFTP channel with the file still open
        await asyncio.wait_for(sftp.wait_closed(), timeout=5)
        async with conn.start_sftp_client() as again:
            with pytest.raises(asyncssh.SFTPError) as caught:
                await again.stat("partial.bin")
            assert caught.value.code == asyncssh.FX_NO_SUCH_FILE
    assert not (node.root / "partial.bin").exists()
    assert _leftovers(node.root) == []


async def test_dropped_connection_mid_upload_leaves_nothing(node: Node) -> None:
    conn = await _connect(node)
    sftp = await conn.start_sftp_client()
    handle = await sftp.open("partial.bin", "wb")
    await handle.write(b"x" * 100_000)
    conn.abort()
    for _ in range(100):  # bounded: up to 5 s for the server to notice
        if not node.service.sessions:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert not (node.root / "partial.bin").exists()
    assert _leftovers(node.root) == []


# -- permissions and logins ----------------------------------------------------------------


@needs_openssh
async def test_user_without_delete_or_update_cannot_remove_or_overwrite(node: Node) -> None:
    (node.root / "keep.txt").write_bytes(b"keep")
    (node.root / "keepdir").mkdir()
    local = node.tmp / "new.txt"
    local.write_bytes(b"new")
    assert (await _openssh(node, f"put {local} new.txt", key=node.bob_key, user=_bob())).rc == 0
    assert (node.root / "new.txt").read_bytes() == b"new"
    for command in (
        "rm keep.txt",
        "rmdir keepdir",
        f"put {local} keep.txt",
        "rename keep.txt other.txt",
        "chmod 600 keep.txt",
    ):
        result = await _openssh(node, command, key=node.bob_key, user=_bob())
        assert result.rc != 0, command
    assert (node.root / "keep.txt").read_bytes() == b"keep"
    assert (node.root / "keepdir").is_dir()


def _bob() -> str:
    return "bob.games.mc1"


async def test_bad_logins_are_refused(node: Node) -> None:
    refused: list[tuple[str, dict[str, Any]]] = [
        ("alice.games.mc1", {"password": "wrong"}),
        ("alice.games.nope", {"password": PASSWORD}),  # unknown server
        ("alice.games.other", {"password": PASSWORD}),  # a server alice has no grant on
        ("alice", {"password": PASSWORD}),  # not user.namespace.name
        ("mallory.games.mc1", {"password": PASSWORD}),
        ("bob.games.mc1", {"client_keys": [node.alice_private]}),  # someone else's key
    ]
    for user, auth in refused:
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(node, user, **auth)
    # carol's grant lacks files.sftp.
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(node, "carol.games.mc1", password="x")
    node.store.put(_gameserver("mc1", suspended=True))
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(node, password=PASSWORD)
    assert node.service.sessions == []


async def test_login_attempts_are_rate_limited(tmp_path: Path) -> None:
    node = await _start(tmp_path, LoginLimits(per_user_burst=3, per_user_rate=0.001))
    try:
        for _ in range(3):
            with pytest.raises(asyncssh.PermissionDenied):
                await _connect(node, password="guess")
        # The bucket of user alice is spent: even the right password is refused now ...
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(node, password=PASSWORD)
        # ... while bob, from the same address, still gets in.
        async with await _connect(node, _bob(), password=PASSWORD):
            pass
    finally:
        await node.service.close()
        node.store.close()
    ip_node = await _start(tmp_path / "ip", LoginLimits(per_ip_burst=2, per_ip_rate=0.001))
    try:
        for user in ("alice.games.mc1", "bob.games.mc1"):
            with pytest.raises(asyncssh.PermissionDenied):
                await _connect(ip_node, user, password="guess")
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(ip_node, _bob(), password=PASSWORD)
    finally:
        await ip_node.service.close()
        ip_node.store.close()


async def _wait_closed(conn: Any, seconds: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(conn.wait_closed(), timeout=seconds)
    return time.monotonic() - started


async def test_revoke_closes_a_live_session(node: Node) -> None:
    conn = await _connect(node)
    other = await _connect(node, _bob(), password=PASSWORD)
    try:
        sftp = await conn.start_sftp_client()
        assert await sftp.listdir("/") is not None
        assert node.service.revoke(user="alice") == 1
        await _wait_closed(conn, 5)
        with pytest.raises((asyncssh.Error, OSError)):
            await sftp.listdir("/")
        bob_sftp = await other.start_sftp_client()
        await bob_sftp.listdir("/")  # bob's session is untouched
        assert node.service.revoke(namespace="games", name="mc1") == 1
        await _wait_closed(other, 5)
    finally:
        conn.close()
        other.close()


async def test_suspending_the_server_closes_live_sessions(node: Node) -> None:
    conn = await _connect(node)
    try:
        sftp = await conn.start_sftp_client()
        await sftp.listdir("/")
        node.store.put(_gameserver("mc1", suspended=True))
        # The background check runs every 0.5 s here (2 s by default).
        elapsed = await _wait_closed(conn, 5)
        assert elapsed < 5
        assert node.service.sessions == []
    finally:
        conn.close()


async def test_deleting_the_server_closes_live_sessions_via_hook(node: Node) -> None:
    conn = await _connect(node)
    try:
        node.store.forget(GameServer, "games", "mc1")
        node.service.server_changed("games", "mc1")
        await _wait_closed(conn, 5)
    finally:
        conn.close()


async def test_only_sftp_is_served_no_shell_exec_or_forwarding(node: Node) -> None:
    async with await _connect(node) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await asyncio.wait_for(conn.run("id", check=True), timeout=CLIENT_TIMEOUT)
        with pytest.raises(asyncssh.ChannelOpenError):
            await asyncio.wait_for(
                conn.open_connection("127.0.0.1", node.port), timeout=CLIENT_TIMEOUT
            )
        # The session still works for SFTP afterwards.
        async with conn.start_sftp_client() as sftp:
            assert await sftp.realpath(".") == "/"


async def test_open_files_per_session_are_capped(node: Node) -> None:
    (node.root / "f.txt").write_bytes(b"f")
    async with await _connect(node) as conn, conn.start_sftp_client() as sftp:
        handles = [await sftp.open("f.txt", "rb") for _ in range(64)]
        with pytest.raises(asyncssh.SFTPError) as caught:
            await sftp.open("f.txt", "rb")
        assert caught.value.code == asyncssh.FX_FAILURE
        for handle in handles:
            await handle.close()
        async with sftp.open("f.txt", "rb") as handle:
            assert await handle.read() == b"f"


async def test_node_settings_wire_the_sftp_server(tmp_path: Path) -> None:
    from stellarstack.api.runtime import ServerKey
    from stellarstack.api.workload import WorkloadSettings
    from stellarstack.nodeproxy.main import _sftp_service
    from stellarstack.nodeproxy.settings import NodeSettings

    class Runtime:  # what `serve` uses of DockerRuntime, without a Docker engine
        workload_settings = WorkloadSettings()

        def prepare_data_dir(self, key: ServerKey) -> Path:
            path = tmp_path / "servers" / key.namespace / key.name
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, *OWNER)
            return path

    key = asyncssh.generate_private_key("ssh-ed25519")
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n"
        "  alice:\n"
        f"    authorized_keys: ['{_public(key)}']\n"
        "    servers: {games/mc1: [files.sftp, files.read, files.create]}\n"
    )
    settings = NodeSettings(
        token="t" * 48,  # type: ignore[arg-type]
        data_dir=tmp_path,
        sftp_port=1,  # replaced below: the test needs a free port
        sftp_host="127.0.0.1",
        sftp_users_file=users,
    )
    store = Store(settings.state_file)
    blueprint = copy.deepcopy(TOY_BLUEPRINT)
    store.put(Blueprint.model_validate(blueprint))
    store.put(_gameserver("mc1"))
    service = _sftp_service(settings, store, Runtime())  # type: ignore[arg-type]
    assert service is not None
    service._port = 0
    await service.start()
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                "127.0.0.1",
                service.port,
                username="alice.games.mc1",
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                config=None,
            ),
            timeout=CLIENT_TIMEOUT,
        )
        async with conn, conn.start_sftp_client() as sftp, sftp.open("hello.txt", "wb") as f:
            await f.write(b"hi")
    finally:
        await service.close()
        store.close()
    created = tmp_path / "servers" / "games" / "mc1" / "hello.txt"
    assert created.read_bytes() == b"hi"
    assert created.stat().st_uid == OWNER[0]
    host_key = tmp_path / "ssh_host_ed25519_key"
    assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
