"""The panel's one interface to a place servers run.

The panel manages servers by writing the same four resources everywhere (GameServer, Blueprint,
Backup, Schedule, as their wire documents) and reading their status back; a Docker node stores
them in nodeproxy, Kubernetes in the API server. Interactive access — console, logs, stats,
files, backup archives — goes through the same backend. No Docker, Kubernetes or HTTP-client
type appears here; one contract test suite runs against each implementation.

Every method says when it does nothing; every failure is a `BackendError` subclass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from stellarstack.api.runtime import ConsoleSession, ResourceStats


class Kind(StrEnum):
    """The resources the panel writes; Blueprints are cluster-scoped (namespace "")."""

    GAMESERVER = "GameServer"
    BLUEPRINT = "Blueprint"
    BACKUP = "Backup"
    SCHEDULE = "Schedule"


PowerAction = Literal["start", "stop", "restart", "kill"]


class BackendError(Exception):
    """Base of backend failures; the message says which backend and why."""


class BackendUnavailableError(BackendError):
    """The node or cluster cannot be reached (or answered 5xx); retrying later may work."""


class ResourceInvalidError(BackendError):
    """The backend refused a document; `problems` name the fields."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ResourceMissingError(BackendError):
    """The resource does not exist at the backend."""


class ServerNotRunningError(BackendError):
    """The operation needs a running server (console input, live stats)."""


@dataclass(frozen=True)
class ProxiedResponse:
    """A response from the backend's files or archive endpoints, streamed through the panel."""

    status_code: int
    headers: Mapping[str, str]
    body: AsyncIterator[bytes]
    close: Any = field(default=None, compare=False)
    """Awaitable callable releasing the connection (called once the body is sent)."""


class ServerBackend(Protocol):
    """One Docker node or one Kubernetes target."""

    # --- resources ---------------------------------------------------------------------

    async def apply(self, kind: Kind, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the spec of a resource (metadata.name names it); returns the
        stored document with its status. Does nothing to the status. Raises
        `ResourceInvalidError` naming the fields the backend refused."""
        ...

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored document with its status; None when it does not exist."""
        ...

    async def list_resources(
        self, kind: Kind, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Every resource of `kind` (in `namespace` when given, else everywhere it can see)."""
        ...

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Ask for deletion (GameServers stop first and keep their data when retained).
        Does nothing when it does not exist."""
        ...

    async def power(self, namespace: str, name: str, action: PowerAction) -> str | None:
        """Record a power action on a GameServer; returns the request id the status will
        echo for restart/kill, else None. Raises `ResourceMissingError`."""
        ...

    # --- interactive ---------------------------------------------------------------------

    def console(
        self, namespace: str, name: str, *, backlog: int
    ) -> AbstractAsyncContextManager[ConsoleSession]:
        """Attach to a server's console (the backlog first, then live lines)."""
        ...

    async def logs(self, namespace: str, name: str, *, tail: int) -> list[str]:
        """The last `tail` console lines; empty when the server never ran."""
        ...

    async def stats(self, namespace: str, name: str) -> ResourceStats:
        """A sample of resource use; what cannot be measured is listed in `unavailable`."""
        ...

    async def files(
        self,
        namespace: str,
        name: str,
        *,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | bytes | None,
    ) -> ProxiedResponse:
        """Forward one request of the files API (`path` is relative to the server's files
        root, e.g. "list" or "content") and stream the answer back unchanged."""
        ...

    async def backup_archive(self, namespace: str, name: str) -> ProxiedResponse:
        """Stream a completed Backup's archive. Raises `ResourceMissingError`."""
        ...

    async def aclose(self) -> None:
        """Release connections. Does nothing when already closed."""
        ...
