"""Who may log in to SFTP, to which server, with which permissions.

The SSH user name names both the user and the game server: `<user>.<namespace>.<name>`
(`alice.games.mc1` is user `alice` on GameServer `games/mc1`). User names and namespaces
contain no dots (namespaces are DNS labels), so the first two dots split it unambiguously and
the server name keeps any dots it has.

Credentials are checked by an `SftpAuthenticator`. `LocalAuthenticator` reads a JSON or YAML
file for standalone nodes; the panel's authenticator (an HTTP callback) implements the same
Protocol later.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import yaml


class Permission(enum.StrEnum):
    """Permission nodes of an SFTP grant (named like the panel's subuser permissions)."""

    SFTP = "files.sftp"
    """May log in over SFTP at all."""
    READ = "files.read"
    """List, stat and download."""
    CREATE = "files.create"
    """Upload new files and make directories."""
    UPDATE = "files.update"
    """Overwrite existing files, rename, chmod and set times."""
    DELETE = "files.delete"
    """Remove files and directories (and replace a file by renaming over it)."""


ALL_PERMISSIONS: Final = frozenset(Permission)

_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_NAMESPACE = re.compile(_LABEL)
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class SftpLogin:
    """A parsed SSH user name."""

    user: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.user}.{self.namespace}.{self.name}"


def parse_username(login: str) -> SftpLogin:
    """Split `<user>.<namespace>.<name>`; `ValueError` names what is wrong."""
    user, sep1, rest = login.partition(".")
    namespace, sep2, name = rest.partition(".")
    if not (sep1 and sep2):
        raise ValueError("the user name must be <user>.<namespace>.<server>")
    if not _USER.fullmatch(user):
        raise ValueError("user names are 1-64 letters, digits, '_' or '-'")
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError("the namespace must be a DNS label")
    if len(name) > 253 or not _NAME.fullmatch(name):
        raise ValueError("the server name must be a DNS subdomain")
    return SftpLogin(user, namespace, name)


@dataclass(frozen=True)
class SftpGrant:
    """What an authenticated user may do on one server."""

    user: str
    namespace: str
    name: str
    permissions: frozenset[str]

    def allows(self, permission: Permission) -> bool:
        """Whether the grant carries `permission`."""
        return permission.value in self.permissions


class SftpAuthenticator(Protocol):
    """Checks one credential of a user for one server.

    Exactly one of `password` and `public_key` is given; `public_key` is the OpenSSH
    one-line form `<algorithm> <base64>` (no comment). Return a grant, or `None` to refuse.
    A grant without `files.sftp` is refused too. Implementations must not raise for bad
    credentials; an exception is logged and counts as a refusal.
    """

    async def authorize(
        self,
        user: str,
        namespace: str,
        name: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
    ) -> SftpGrant | None:
        """The grant of `user` on `namespace/name` for this credential, or `None`."""
        ...


# scrypt cost: 32 MiB of memory and ~50 ms per check, which is what makes offline guessing
# of a leaked users file expensive; the login rate limit bounds online guessing.
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_MAXMEM: Final = 128 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A `scrypt$N$r$p$salt$hash` string for the users file."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
        dklen=32,
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a `hash_password` string (constant-time compare)."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(base64.b64decode(expected)),
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# Checked against when the user is unknown, so timing does not reveal which users exist.
_DUMMY_HASH: Final = hash_password(secrets.token_hex(16))


def normalise_public_key(line: str) -> str:
    """`<algorithm> <base64>` of an authorized_keys line (options are not supported)."""
    fields = line.split()
    if len(fields) < 2:
        raise ValueError("a public key is '<algorithm> <base64> [comment]'")
    return f"{fields[0]} {fields[1]}"


@dataclass(frozen=True)
class LocalUser:
    """One user of the users file."""

    password_hash: str | None
    authorized_keys: frozenset[str]
    servers: Mapping[str, frozenset[str]]
    """`namespace/name` -> permission nodes."""


def parse_users(document: Any) -> dict[str, LocalUser]:
    """Validate a users document (see docs/sftp.md); `ValueError` names the bad field."""
    if not isinstance(document, dict) or not isinstance(document.get("users"), dict):
        raise ValueError("users: a mapping of user name to settings is required")
    known = {p.value for p in Permission}
    users: dict[str, LocalUser] = {}
    for user, body in document["users"].items():
        where = f"users.{user}"
        if not isinstance(user, str) or not _USER.fullmatch(user):
            raise ValueError(f"{where}: user names are 1-64 letters, digits, '_' or '-'")
        if not isinstance(body, dict):
            raise ValueError(f"{where}: must be a mapping")
        password = body.get("password")
        if password is not None and not (
            isinstance(password, str) and password.startswith("scrypt$")
        ):
            raise ValueError(f"{where}.password: must be a scrypt hash (hash_password)")
        keys = body.get("authorized_keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"{where}.authorized_keys: must be a list of key lines")
        try:
            normalised = frozenset(normalise_public_key(k) for k in keys)
        except ValueError as exc:
            raise ValueError(f"{where}.authorized_keys: {exc}") from None
        servers = body.get("servers", {})
        if not isinstance(servers, dict):
            raise ValueError(f"{where}.servers: must map 'namespace/name' to permissions")
        grants: dict[str, frozenset[str]] = {}
        for server, perms in servers.items():
            if not isinstance(server, str) or server.count("/") != 1:
                raise ValueError(f"{where}.servers: keys are 'namespace/name', got {server!r}")
            if not isinstance(perms, list) or not set(perms) <= known:
                raise ValueError(
                    f"{where}.servers.{server}: a list of permissions from {sorted(known)}"
                )
            grants[server] = frozenset(perms)
        users[user] = LocalUser(password, normalised, grants)
    return users


class LocalAuthenticator:
    """`SftpAuthenticator` over a local JSON or YAML users file, re-read when it changes.

    Editing the file affects new logins only; call `SftpService.revoke` to end live sessions.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, LocalUser] = {}
        self._load()

    @classmethod
    def from_users(cls, path: Path, users: Mapping[str, Any]) -> LocalAuthenticator:
        """Write a users document (mode 0600) and load it (tests, first-time set-up)."""
        parse_users({"users": dict(users)})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"users": dict(users)}, handle, indent=2)
        return cls(path)

    def _load(self) -> None:
        st = self._path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            text = self._path.read_text()
            document = json.loads(text) if self._path.suffix == ".json" else yaml.safe_load(text)
            self._users = parse_users(document)
            self._stamp = stamp

    async def authorize(
        self,
        user: str,
        namespace: str,
        name: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
    ) -> SftpGrant | None:
        """See `SftpAuthenticator`; password checks run in a thread (scrypt is slow on
        purpose)."""
        await asyncio.to_thread(self._load)
        entry = self._users.get(user)
        if password is not None:
            encoded = entry.password_hash if entry and entry.password_hash else _DUMMY_HASH
            ok = await asyncio.to_thread(verify_password, password, encoded)
            ok = ok and entry is not None and entry.password_hash is not None
        elif public_key is not None:
            ok = entry is not None and normalise_public_key(public_key) in entry.authorized_keys
        else:
            ok = False
        if not ok or entry is None:
            return None
        perms = entry.servers.get(f"{namespace}/{name}")
        if perms is None:
            return None
        return SftpGrant(user, namespace, name, perms)
