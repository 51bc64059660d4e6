"""`stellarstack nodeproxy files`: the file API of exactly one GameServer, on its own.

On Kubernetes a GameServer's files are served by a small Pod of their own (`<name>-files`, see
docs/operator.md), which runs this command over the server's data volume. It serves the very
routes of the node API's file manager (`files_router`, unchanged, through `SafeRoot`), so the
panel speaks one files API to a Docker node and to a cluster: the same paths
(`/api/v1/namespaces/{namespace}/gameservers/{name}/files/...`), bodies, errors and scopes.

What differs is who may call it: there is no node token here, only server tokens the panel
signs (`ServerTokenAuthenticator`), checked against the panel's public key and this service's
audience. The GameServer and its Blueprint come from a file the operator writes (the deny-list
and the disk quota are theirs); they are held in an in-memory `Store`, the same store the node
agent keeps on disk, so the routes find them exactly as they do on a node.

With `--sftp-listen` it also serves SFTP over the same store and directory (the node's
`SftpService`, unchanged). The password of an SFTP login `<user>.<namespace>.<name>` is a
server token for that server whose subject is `<user>`; its files scopes become the SFTP
permission nodes (`TokenSftpAuthenticator`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI
from pydantic import ValidationError

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.netpolicy import AddressPolicy
from stellarstack.api.runtime import ServerKey
from stellarstack.api.tokens import TokenError, verify_server_token
from stellarstack.nodeproxy.api.auth import ServerTokenAuthenticator, depends
from stellarstack.nodeproxy.api.files import files_router, install_file_error_handler
from stellarstack.nodeproxy.diskusage import DiskUsageCache
from stellarstack.nodeproxy.sftp import Permission, SftpGrant, SftpService
from stellarstack.nodeproxy.store import Store

DEFAULT_AUDIENCE = "kubernetes"
"""The audience server tokens for a cluster's files services carry (a node's is its agent id)."""

log = logging.getLogger(__name__)


class FilesConfigError(ValueError):
    """A setting or input file of the files service that cannot work; names what is wrong."""


@dataclass(frozen=True)
class FilesServiceConfig:
    """Everything the single-server files service needs, checked before it listens."""

    root: Path
    """The server's data directory (the mounted volume)."""
    gameserver: GameServer
    blueprint: Blueprint
    public_key: Ed25519PublicKey
    """The panel's key: server tokens must verify against it."""
    audience: str = DEFAULT_AUDIENCE
    host: str = "0.0.0.0"
    port: int = 8080
    owner: tuple[int, int] = field(default_factory=lambda: (os.getuid(), os.getgid()))
    """uid and gid every created file gets: the game's user (the Pod runs as it)."""
    pull_max_bytes: int = 2 * 1024**3
    pull_allowed: tuple[str, ...] = ()
    sftp: tuple[str, int] | None = None
    """Where SFTP listens; None: no SFTP."""
    sftp_host_key: Path | None = None
    """The SFTP host key (OpenSSH ed25519); required with `sftp`."""

    @property
    def key(self) -> ServerKey:
        meta = self.gameserver.metadata
        return ServerKey(meta.namespace or "", meta.name or "")

    # What `files_router` reads from `services.settings` (the node agent's NodeSettings).
    def pull_policy(self) -> AddressPolicy:
        """URL pulls reach public addresses only, plus the listed `address:port` pairs."""
        exceptions = set()
        for entry in self.pull_allowed:
            address, _, port = entry.rpartition(":")
            exceptions.add((address.strip("[]"), int(port)))
        return AddressPolicy(frozenset(exceptions))


def load_resources(path: Path, server: str) -> tuple[GameServer, Blueprint]:
    """The GameServer `namespace/name` and its Blueprint from a YAML stream of both."""
    namespace, _, name = server.partition("/")
    if not namespace or not name:
        raise FilesConfigError(f"--server: expected namespace/name, got {server!r}")
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise FilesConfigError(f"--resources: cannot read {path.name}: {exc}") from None
    found: dict[str, Any] = {}
    for index, document in enumerate(documents):
        kind = document.get("kind") if isinstance(document, dict) else None
        if kind not in {"GameServer", "Blueprint"} or kind in found:
            raise FilesConfigError(
                f"--resources: document {index}: expected one GameServer and one Blueprint"
            )
        found[kind] = document
    if set(found) != {"GameServer", "Blueprint"}:
        raise FilesConfigError("--resources: expected one GameServer and one Blueprint")
    try:
        gameserver = GameServer.model_validate(found["GameServer"])
        blueprint = Blueprint.model_validate(found["Blueprint"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise FilesConfigError(f"--resources: {where}: {first['msg']}") from None
    meta = gameserver.metadata
    if (meta.namespace, meta.name) != (namespace, name):
        raise FilesConfigError(
            f"--resources: the GameServer is {meta.namespace}/{meta.name}, not {server}"
        )
    if blueprint.metadata.name != gameserver.spec.blueprint:
        raise FilesConfigError(
            f"--resources: the Blueprint is {blueprint.metadata.name}, "
            f"but spec.blueprint names {gameserver.spec.blueprint}"
        )
    return gameserver, blueprint


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The panel's Ed25519 public key (PEM)."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise FilesConfigError(f"--public-key-file: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FilesConfigError("--public-key-file: the panel's key must be an Ed25519 key")
    return key


def check_host_key(path: Path | None) -> None:
    """The SFTP host key must be a readable OpenSSH (or PEM) private key."""
    import asyncssh

    if path is None:
        raise FilesConfigError("--sftp-host-key: required with --sftp-listen")
    try:
        asyncssh.import_private_key(path.read_bytes())
    except (OSError, asyncssh.KeyImportError) as exc:
        raise FilesConfigError(f"--sftp-host-key: not a usable private key ({exc})") from None


def parse_listen(value: str, flag: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise FilesConfigError(f"{flag}: expected host:port, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class _Owner:
    """The two fields of WorkloadSettings that `files_router` reads."""

    run_as_user: int
    run_as_group: int


class OneServerRuntime:
    """The part of the node's runtime that `files_router` uses, for one data directory."""

    def __init__(self, key: ServerKey, root: Path, owner: tuple[int, int]) -> None:
        self._key = key
        self._root = root
        self.workload_settings = _Owner(*owner)
        self.disk = DiskUsageCache()
        """Shared by every request's quota check, as on a node (a full walk per upload of a
        large world would be too slow)."""

    def prepare_data_dir(self, key: ServerKey) -> Path:
        if key != self._key:
            # The routes look the server up in the store first, which holds only this one.
            raise LookupError(f"this service serves {self._key.namespace}/{self._key.name} only")
        return self._root


@dataclass
class OneServerServices:
    """What `files_router` needs (`NodeServices` on a node), for the one server."""

    settings: FilesServiceConfig
    store: Store
    runtime: OneServerRuntime


# What each token scope allows over SFTP (the file manager's scopes, the SFTP nodes).
_SFTP_PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    "files.read": (Permission.READ,),
    "files.write": (Permission.CREATE, Permission.UPDATE),
    "files.delete": (Permission.DELETE,),
}


class TokenSftpAuthenticator:
    """SFTP logins with a server token as the password (an `SftpAuthenticator`).

    The token must verify against the panel's key and audience, name the server logged in to,
    and have been issued to the user named in the login, so the session (and its log lines)
    is the panel user's. Any files scope allows logging in; public keys are not accepted (the
    panel holds no user keys for this service). Tokens expire; a session that is open keeps
    going, as on a node after a users-file change.
    """

    def __init__(self, panel_key: Ed25519PublicKey, *, audience: str) -> None:
        self._panel_key = panel_key
        self._audience = audience

    async def authorize(
        self,
        user: str,
        namespace: str,
        name: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
    ) -> SftpGrant | None:
        if password is None:
            return None
        try:
            grant = verify_server_token(
                password, self._panel_key, audience=self._audience, now=datetime.now(UTC)
            )
        except TokenError:
            return None
        if (grant.namespace, grant.name, grant.subject) != (namespace, name, user):
            return None
        permissions = {p for scope in grant.scopes for p in _SFTP_PERMISSIONS.get(scope, ())}
        if not permissions:
            return None
        permissions.add(Permission.SFTP)
        return SftpGrant(user, namespace, name, frozenset(p.value for p in permissions))


def build_services(config: FilesServiceConfig) -> OneServerServices:
    """The one-server store and runtime both the HTTP routes and SFTP use."""
    if not config.root.is_dir():
        raise FilesConfigError(f"--root: {config.root} is not a directory")
    # An in-memory store: the two resources come from the operator's file at every start.
    store = Store(Path(":memory:"))
    store.put(config.blueprint)
    store.put(config.gameserver)
    return OneServerServices(config, store, OneServerRuntime(config.key, config.root, config.owner))


def create_files_app(
    config: FilesServiceConfig, services: OneServerServices | None = None
) -> FastAPI:
    """The files API of `config.gameserver` under the node API's paths, plus `/healthz`."""
    services = services or build_services(config)
    app = FastAPI(
        title="StellarStack files service",
        version="v1",
        description=f"The files of GameServer {config.key.namespace}/{config.key.name}; "
        "the routes and bodies of the node API's files routes, server tokens only.",
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    authenticator = ServerTokenAuthenticator(config.public_key, audience=config.audience)
    install_file_error_handler(app)
    app.include_router(files_router(services, lambda scope: depends(authenticator, scope)))
    return app


def run_files(args: argparse.Namespace) -> int:
    """`stellarstack nodeproxy files` (its arguments are defined in `main`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        gameserver, blueprint = load_resources(args.resources, args.server)
        host, port = parse_listen(args.listen, "--listen")
        sftp = parse_listen(args.sftp_listen, "--sftp-listen") if args.sftp_listen else None
        if sftp is not None:
            check_host_key(args.sftp_host_key)
        config = FilesServiceConfig(
            root=args.root,
            gameserver=gameserver,
            blueprint=blueprint,
            public_key=load_public_key(args.public_key_file),
            audience=args.audience,
            host=host,
            port=port,
            sftp=sftp,
            sftp_host_key=args.sftp_host_key,
        )
        services = build_services(config)
        app = create_files_app(config, services)
    except FilesConfigError as exc:
        log.error("%s", exc)
        return 2
    asyncio.run(_serve(app, config, services))
    return 0


async def _serve(app: FastAPI, config: FilesServiceConfig, services: OneServerServices) -> None:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_level="info")
    )
    # uvicorn shuts down on SIGTERM (how the kubelet stops the Pod), then raises the signal
    # again for whatever handler was there before; this one makes that a clean exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="stellarstack-sftp-") as scratch:
        sftp = _sftp_service(config, services, Path(scratch))
        try:
            if sftp is not None:
                await sftp.start()
            await server.serve()
        finally:
            if sftp is not None:
                await sftp.close()


def _sftp_service(
    config: FilesServiceConfig, services: OneServerServices, scratch: Path
) -> SftpService | None:
    if config.sftp is None or config.sftp_host_key is None:
        return None
    # The key arrives in a mounted Secret: read-only, and group-readable once the kubelet
    # applies the Pod's fsGroup, which the host-key loader rightly refuses to use as it is. A
    # private 0600 copy in a private directory is what it expects.
    host_key = scratch / "ssh_host_ed25519_key"
    fd = os.open(host_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(config.sftp_host_key.read_bytes())
    host, port = config.sftp
    runtime = services.runtime
    return SftpService(
        store=services.store,
        data_dir=lambda namespace, name: runtime.prepare_data_dir(ServerKey(namespace, name)),
        authenticator=TokenSftpAuthenticator(config.public_key, audience=config.audience),
        host_key=host_key,
        owner=config.owner,
        host=host,
        port=port,
    )
