"""The SFTP listener: logins, rate limits, live sessions, revocation and the host key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import asyncssh

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.quantity import byte_count
from stellarstack.nodeproxy.files import Denylist, Quota, SafeRoot
from stellarstack.nodeproxy.ratelimit import TokenBucket
from stellarstack.nodeproxy.store import Store

from .auth import Permission, SftpAuthenticator, SftpGrant, SftpLogin, parse_username
from .handler import ConfinedSFTPServer

log = logging.getLogger(__name__)

HOST_KEY_NAME: Final = "ssh_host_ed25519_key"
# Modern algorithms only: no SHA-1 signatures or MACs, no CBC ciphers. They are what current
# OpenSSH clients prefer anyway, and older ones are a downgrade target.
KEX_ALGS: Final = (
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group16-sha512",
)
ENCRYPTION_ALGS: Final = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes128-ctr",
)
MAC_ALGS: Final = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com")


@dataclass(frozen=True)
class LoginLimits:
    """Login attempts allowed per source address and per user (token buckets; an attempt
    is one password or one public key checked), and per connection."""

    per_ip_rate: float = 0.5
    per_ip_burst: float = 20
    per_user_rate: float = 0.2
    per_user_burst: float = 10
    attempts_per_connection: int = 6
    max_tracked: int = 10_000
    """Buckets kept in memory; the fullest ones are dropped first past this."""


class LoginRateLimiter:
    """In-memory token buckets keyed by source address and by user name."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._ips: dict[str, TokenBucket] = {}
        self._users: dict[str, TokenBucket] = {}

    def allow(self, ip: str, user: str | None) -> bool:
        """Charge one attempt to `ip` and (when known) `user`; False when either is spent."""
        now = self._clock()
        limits = self._limits
        ip_ok = self._bucket(self._ips, ip, limits.per_ip_rate, limits.per_ip_burst, now)
        user_ok = True
        if user is not None:
            user_ok = self._bucket(
                self._users, user, limits.per_user_rate, limits.per_user_burst, now
            )
        return ip_ok and user_ok

    def _bucket(
        self, buckets: dict[str, TokenBucket], key: str, rate: float, burst: float, now: float
    ) -> bool:
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self._limits.max_tracked:
                self._prune(buckets, now)
            bucket = buckets[key] = TokenBucket.full(rate, burst, now)
        return bucket.allow(now)

    def _prune(self, buckets: dict[str, TokenBucket], now: float) -> None:
        # A bucket that has refilled completely carries no information: forget those first.
        # Only if that is not enough (a flood of addresses) are the least recently used half
        # forgotten too, so memory stays bounded whatever arrives.
        full = [k for k, b in buckets.items() if b.tokens + (now - b.updated) * b.rate >= b.burst]
        for key in full:
            del buckets[key]
        if len(buckets) >= self._limits.max_tracked:
            for key in sorted(buckets, key=lambda k: buckets[k].updated)[: len(buckets) // 2]:
                del buckets[key]


@dataclass(frozen=True)
class ServerFiles:
    """Where a server's files are and the rules on them, read from the store at login."""

    data_dir: Path
    denylist: Denylist
    quota_bytes: int | None


@dataclass
class Session:
    """One authenticated connection."""

    login: SftpLogin
    grant: SftpGrant
    files: ServerFiles
    peer: str
    connection: asyncssh.SSHServerConnection


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The node's ed25519 host key: generated on first start, written 0600 and reused, so
    clients' known_hosts entries stay valid across restarts."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path.name} is not a regular file") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, 0o600)
        return asyncssh.import_private_key(path.read_bytes())
    key = asyncssh.generate_private_key("ssh-ed25519")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key("openssh"))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    public = path.with_name(path.name + ".pub")
    public.write_bytes(key.export_public_key("openssh"))
    return key


class SftpService:
    """The SFTP server of a node: one listener, every session confined to its server root.

    `data_dir(namespace, name)` returns (creating if needed) a server's data directory;
    `owner` (uid, gid) owns every file and directory created. Sessions of a server that is
    suspended or deleted are closed by a background check every `check_interval` seconds,
    or at once when the agent calls `server_changed`.
    """

    def __init__(
        self,
        *,
        store: Store,
        data_dir: Callable[[str, str], Path],
        authenticator: SftpAuthenticator,
        host_key: Path,
        owner: tuple[int, int] | None = None,
        host: str = "127.0.0.1",
        port: int = 2022,
        limits: LoginLimits | None = None,
        check_interval: float = 2.0,
        login_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._data_dir = data_dir
        self._authenticator = authenticator
        self._host_key_path = host_key
        self._owner = owner
        self._host = host
        self._port = port
        self._limiter = LoginRateLimiter(limits or LoginLimits())
        self._limits = limits or LoginLimits()
        self._check_interval = check_interval
        self._login_timeout = login_timeout
        self._sessions: dict[asyncssh.SSHServerConnection, Session] = {}
        self._listener: asyncssh.SSHAcceptor | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def port(self) -> int:
        """The port listened on (the real one when started with port 0)."""
        if self._listener is None:
            return self._port
        return int(self._listener.get_port())

    @property
    def sessions(self) -> list[Session]:
        """Live authenticated sessions."""
        return list(self._sessions.values())

    async def start(self) -> None:
        """Listen and start the suspension check."""
        key = await asyncio.to_thread(load_or_create_host_key, self._host_key_path)
        self._listener = await asyncssh.create_server(
            lambda: _Connection(self),
            self._host,
            self._port,
            server_host_keys=[key],
            sftp_factory=self._sftp_factory,
            sftp_version=3,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=self._login_timeout,
            kex_algs=list(KEX_ALGS),
            encryption_algs=list(ENCRYPTION_ALGS),
            mac_algs=list(MAC_ALGS),
            compression_algs=["none"],
        )
        self._watcher = asyncio.create_task(self._watch(), name="sftp-suspension-check")

    async def close(self) -> None:
        """Stop listening and close every session."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None
        for conn in list(self._sessions):
            conn.close()
        for conn in list(self._sessions):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
        self._sessions.clear()

    async def __aenter__(self) -> SftpService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- revocation ---------------------------------------------------------------------------

    def revoke(
        self, user: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> int:
        """Close live sessions matching every given field (none given: all); returns how
        many were closed."""
        closed = 0
        for conn, session in list(self._sessions.items()):
            login = session.login
            if user is not None and login.user != user:
                continue
            if namespace is not None and login.namespace != namespace:
                continue
            if name is not None and login.name != name:
                continue
            self._drop(conn, "access revoked")
            closed += 1
        return closed

    def server_changed(self, namespace: str, name: str) -> None:
        """Hook for the agent: a GameServer changed; re-check its sessions now."""
        del namespace, name
        self._wake.set()

    async def check_servers(self) -> int:
        """Close sessions of servers that are gone, being deleted or suspended."""
        keys = {(s.login.namespace, s.login.name) for s in self._sessions.values()}
        if not keys:
            return 0
        # Store reads are short SQLite queries, made on the loop like the node API does.
        gone = self._unavailable(keys)
        closed = 0
        for conn, session in list(self._sessions.items()):
            reason = gone.get((session.login.namespace, session.login.name))
            if reason is not None:
                self._drop(conn, reason)
                closed += 1
        return closed

    def _unavailable(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        deleting = {
            (gs.metadata.namespace or "default", gs.metadata.name or "")
            for gs in self._store.deleting(GameServer)
        }
        out: dict[tuple[str, str], str] = {}
        for namespace, name in keys:
            gameserver = self._store.get(GameServer, namespace, name)
            if gameserver is None or (namespace, name) in deleting:
                out[(namespace, name)] = "server deleted"
            elif gameserver.spec.suspended:
                out[(namespace, name)] = "server suspended"
        return out

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._check_interval)
            self._wake.clear()
            try:
                await self.check_servers()
            except Exception:  # a store hiccup must not end the checks for good
                log.exception("SFTP suspension check failed")

    def _drop(self, conn: asyncssh.SSHServerConnection, reason: str) -> None:
        session = self._sessions.pop(conn, None)
        if session is not None:
            log.info("closing SFTP session of %s: %s", session.login, reason)
        conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    # -- logins -------------------------------------------------------------------------------

    def resolve(self, namespace: str, name: str) -> tuple[Denylist, int] | str:
        """The server's deny-list and quota from the store (its data directory is prepared
        separately, off the loop), or why it may not be logged in to."""
        gameserver = self._store.get(GameServer, namespace, name)
        if gameserver is None:
            return "no such server"
        if gameserver.spec.suspended:
            return "server suspended"
        if any(
            (gs.metadata.namespace, gs.metadata.name) == (namespace, name)
            for gs in self._store.deleting(GameServer)
        ):
            return "server being deleted"
        blueprint = self._store.get(Blueprint, "", gameserver.spec.blueprint)
        denylist = Denylist.of(blueprint.spec.file_denylist if blueprint else [])
        return denylist, byte_count(gameserver.spec.resources.disk)

    async def check_login(
        self,
        peer: str,
        username: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
    ) -> tuple[SftpLogin, SftpGrant, ServerFiles] | None:
        """One credential check, rate-limited; the session's parts when it succeeds."""
        try:
            login = parse_username(username)
        except ValueError:
            login = None
        if not self._limiter.allow(peer, login.user if login else None):
            log.warning("SFTP login rate limit hit (peer %s, user %r)", peer, username[:80])
            return None
        if login is None:
            return None
        try:
            grant = await self._authenticator.authorize(
                login.user, login.namespace, login.name, password=password, public_key=public_key
            )
        except Exception:
            log.exception("SFTP authenticator failed")
            return None
        if (
            grant is None
            or not grant.allows(Permission.SFTP)
            or (grant.user, grant.namespace, grant.name)
            != (login.user, login.namespace, login.name)
        ):
            return None
        rules = self.resolve(login.namespace, login.name)
        if isinstance(rules, str):
            log.info("SFTP login of %s refused: %s", login, rules)
            return None
        try:
            data_dir = await asyncio.to_thread(self._data_dir, login.namespace, login.name)
        except OSError:
            log.exception("SFTP login of %s: no data directory", login)
            return None
        return login, grant, ServerFiles(data_dir, *rules)

    def _register(self, conn: asyncssh.SSHServerConnection, session: Session) -> None:
        self._sessions[conn] = session

    def _forget(self, conn: asyncssh.SSHServerConnection) -> None:
        self._sessions.pop(conn, None)

    def _sftp_factory(self, chan: asyncssh.SSHServerChannel[bytes]) -> ConfinedSFTPServer:
        session = self._sessions.get(cast(asyncssh.SSHServerConnection, chan.get_connection()))
        if session is None:  # revoked between login and the subsystem request
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "revoked")
        files = session.files
        root = SafeRoot(files.data_dir, denylist=files.denylist, owner=self._owner)
        limit = files.quota_bytes
        root.quota = Quota(limit, lambda: root.disk_usage().bytes)
        return ConfinedSFTPServer(chan, root, session.grant)


class _Connection(asyncssh.SSHServer):
    """Authentication of one SSH connection."""

    def __init__(self, service: SftpService) -> None:
        self._service = service
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "unknown"
        self._attempts = 0
        self._pending: Session | None = None
        self._key_cache: dict[tuple[str, str], Session | None] = {}

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "unknown"

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._service._forget(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every login needs a credential

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        return await self._check(username, password=password)

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        line = key.export_public_key("openssh").decode().split()
        public_key = f"{line[0]} {line[1]}"
        cache_key = (username, public_key)
        # asyncssh asks once when the client offers a key and again with its signature; one
        # key is one attempt (and one authenticator call).
        if cache_key in self._key_cache:
            self._pending = self._key_cache[cache_key]
            return self._pending is not None
        ok = await self._check(username, public_key=public_key)
        self._key_cache[cache_key] = self._pending
        return ok

    async def _check(self, username: str, **credential: Any) -> bool:
        self._pending = None
        self._attempts += 1
        if self._attempts > self._service._limits.attempts_per_connection:
            if self._conn is not None:
                self._conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many")
            return False
        result = await self._service.check_login(self._peer, username, **credential)
        if result is None or self._conn is None:
            return False
        login, grant, files = result
        self._pending = Session(login, grant, files, self._peer, self._conn)
        return True

    def auth_completed(self) -> None:
        # asyncssh completes the login right after the successful check, so the last
        # validated session is the one that authenticated.
        if self._pending is not None and self._conn is not None:
            log.info("SFTP login of %s from %s", self._pending.login, self._peer)
            self._service._register(self._conn, self._pending)
