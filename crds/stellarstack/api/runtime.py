"""The one interface every runtime implements: the Docker node agent and the Kubernetes side.

Callers (the panel's backends, the operator's power handling, nodeproxy's API) speak only this
interface; no Docker or Kubernetes type appears here. One contract test suite
(`tests/contract/`) runs against every implementation, so both behave the same way.

Every method is safe to repeat: each says when it does nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from stellarstack.api.blueprint import StopMethod
from stellarstack.api.workload import Workload


@dataclass(frozen=True, order=True)
class ServerKey:
    """Identifies one game server in a runtime: its namespace and GameServer name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ProcessPhase(StrEnum):
    """What a runtime observes about a server's process (the GameServer state is richer)."""

    ABSENT = "Absent"
    """Nothing exists for the server (never ensured, or destroyed)."""
    CREATED = "Created"
    """The workload exists and has never run since it was (re)created."""
    RUNNING = "Running"
    """The process runs."""
    EXITED = "Exited"
    """The process ran and ended; `exit_code` says how."""


@dataclass(frozen=True)
class ProcessStatus:
    """One observation of a server's process."""

    phase: ProcessPhase
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    """Restarts the runtime itself performed (0 where the caller owns restarts)."""


@dataclass(frozen=True)
class ResourceStats:
    """A sample of resource use. A figure a runtime cannot measure is None, and `unavailable`
    names it with the reason, so the panel can say so instead of showing zero."""

    cpu_percent: float | None
    """CPU use since the previous sample, in percent of one core (200.0 = two cores)."""
    memory_bytes: int | None
    memory_limit_bytes: int | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None
    disk_bytes: int | None
    """Space used by the data volume."""
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InstallOutcome:
    """Result of running a workload's install step to the end."""

    succeeded: bool
    exit_code: int | None
    log_tail: str
    """The last lines of the install log."""


class RuntimeFailureError(Exception):
    """Base of the errors runtimes raise; the message names the server and the cause."""


class ServerNotFoundError(RuntimeFailureError):
    """The server does not exist in this runtime (ensure it first)."""


class ServerNotRunningError(RuntimeFailureError):
    """The operation needs a running process (e.g. sending a console command)."""


class ImageUnavailableError(RuntimeFailureError):
    """The workload's image is neither present nor pullable."""


class ConsoleSession(Protocol):
    """An attached console: the backlog then live output, and command input."""

    def lines(self) -> AsyncIterator[str]:
        """Output lines without their line ending: first the backlog, then live output.
        Ends when the process ends or the session is closed."""
        ...

    async def send(self, line: str) -> None:
        """Write one command line to the process's stdin."""
        ...


@runtime_checkable
class GameServerRuntime(Protocol):
    """Runs game servers described by `Workload`s."""

    async def ensure(self, workload: Workload) -> bool:
        """Create the server's workload and data volume, or bring them in line with `workload`.

        Does nothing when what exists already matches. A running process is never replaced:
        the change is kept for the next start, and the method returns False ("restart to
        apply"); otherwise it returns True.
        """
        ...

    async def install(self, workload: Workload) -> InstallOutcome:
        """Run the install step into the data volume and wait for it to end.

        Does nothing (and reports success) when the workload has no install step.
        """
        ...

    async def start(self, key: ServerKey) -> None:
        """Start the process. Does nothing when it is already running."""
        ...

    async def stop(self, key: ServerKey, method: StopMethod) -> ProcessStatus:
        """Stop with the blueprint's method, wait the grace period, then kill.

        Does nothing when the process is not running. Returns the status after the stop.
        """
        ...

    async def kill(self, key: ServerKey) -> None:
        """Kill the process at once. Does nothing when it is not running."""
        ...

    async def destroy(self, key: ServerKey, *, keep_data: bool) -> None:
        """Remove the workload, and its data unless `keep_data`. Does nothing when absent."""
        ...

    async def status(self, key: ServerKey) -> ProcessStatus:
        """Observe the process. `ProcessPhase.ABSENT` when nothing exists."""
        ...

    async def send_command(self, key: ServerKey, line: str) -> None:
        """Write one console line to the process. Raises `ServerNotRunningError`."""
        ...

    async def logs(self, key: ServerKey, *, tail: int, since: datetime | None = None) -> list[str]:
        """The last `tail` console lines, only those written at or after `since` when given
        (pass the current run's start to see only that run)."""
        ...

    def attach(
        self, key: ServerKey, *, backlog: int
    ) -> AbstractAsyncContextManager[ConsoleSession]:
        """Attach to the console, replaying the last `backlog` lines first. Leaving the context
        detaches; the process's stdin stays open for the next client."""
        ...

    async def stats(self, key: ServerKey) -> ResourceStats:
        """Sample resource use. Raises `ServerNotFoundError` when absent."""
        ...
