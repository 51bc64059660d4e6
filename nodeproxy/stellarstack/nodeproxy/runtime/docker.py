"""`GameServerRuntime` on a Docker engine, through the Docker SDK.

The SDK blocks, so every call runs in a worker thread. Power actions are serialised per server
with one lock each: a stop and a start for the same server never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from stellarstack.api.blueprint import StopMethod, StopType
from stellarstack.api.runtime import (
    ConsoleSession,
    ImageUnavailableError,
    InstallOutcome,
    ProcessPhase,
    ProcessStatus,
    ResourceStats,
    ServerKey,
    ServerNotFoundError,
    ServerNotRunningError,
)
from stellarstack.api.workload import Workload, WorkloadSettings
from stellarstack.nodeproxy.diskusage import DiskUsageCache
from stellarstack.nodeproxy.files import FileError, SafeRoot
from stellarstack.nodeproxy.ratelimit import TokenBucket
from stellarstack.nodeproxy.runtime.containers import (
    LABEL_AGENT,
    LABEL_SPEC_HASH,
    DockerSettings,
    container_name,
    desired_container,
    desired_install_container,
    key_of,
)

_LOG_TAIL_LINES = 50


class DockerRuntime:
    """Runs game servers as Docker containers on this node."""

    def __init__(
        self,
        client: docker.DockerClient,
        settings: DockerSettings,
        *,
        console_lines_per_second: float = 500.0,
    ) -> None:
        self._client = client
        self._settings = settings
        self.console_lines_per_second = console_lines_per_second
        self.disk = DiskUsageCache()
        """Cached data-directory usage, shared with the agent's quota checks and the file API."""
        self._locks: dict[ServerKey, asyncio.Lock] = {}
        # Previous CPU sample per server, so that cpu_percent covers the time between samples
        # from one cheap one-shot read instead of a blocking two-sample read.
        self._cpu_samples: dict[ServerKey, tuple[int, int]] = {}

    @property
    def workload_settings(self) -> WorkloadSettings:
        """The node-wide workload settings (user, paths) workloads must be built with."""
        return self._settings.workload

    def _lock(self, key: ServerKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- lookups ---------------------------------------------------------------------------

    def _find(self, key: ServerKey, role: str = "server") -> Container | None:
        try:
            container: Container = self._client.containers.get(container_name(key, role))
        except docker.errors.NotFound:
            return None
        # A same-named container of another agent or of a human is not ours to touch.
        if container.labels.get(LABEL_AGENT) != self._settings.agent_id:
            raise ServerNotFoundError(f"{key}: container exists but belongs to another owner")
        return container

    def _require(self, key: ServerKey) -> Container:
        container = self._find(key)
        if container is None:
            raise ServerNotFoundError(f"{key}: no container; ensure the server first")
        return container

    # -- lifecycle -------------------------------------------------------------------------

    async def ensure(self, workload: Workload) -> bool:
        key = key_of(workload)
        async with self._lock(key):
            return await asyncio.to_thread(self._ensure, workload)

    def _ensure(self, workload: Workload) -> bool:
        key = key_of(workload)
        self.prepare_data_dir(key)
        desired = desired_container(workload, self._settings)
        existing = self._find(key)
        if existing is not None:
            if existing.labels.get(LABEL_SPEC_HASH) == desired["labels"][LABEL_SPEC_HASH]:
                return True
            if existing.status in {"running", "restarting", "paused"}:
                return False
            existing.remove(force=True)
        self._ensure_image(workload.image)
        self._client.containers.create(**desired)
        return True

    def prepare_data_dir(self, key: ServerKey) -> Path:
        """Create the server's data directory, owned by the unprivileged game user."""
        data = self._settings.data_dir(key)
        data.mkdir(parents=True, exist_ok=True, mode=0o750)
        # The game must own its directory; chown the directory itself only (never recursively:
        # that would follow whatever the game left there).
        user = self._settings.workload
        os.chown(data, user.run_as_user, user.run_as_group, follow_symlinks=False)
        data.chmod(0o750)
        return data

    def _ensure_image(self, image: str) -> None:
        try:
            self._client.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                self._client.images.pull(image)
            except docker.errors.APIError as exc:
                raise ImageUnavailableError(
                    f"image {image} is not present and cannot be pulled: {exc.explanation}"
                ) from exc

    async def install(self, workload: Workload) -> InstallOutcome:
        if workload.install is None:
            return InstallOutcome(succeeded=True, exit_code=0, log_tail="")
        key = key_of(workload)
        async with self._lock(key):
            return await asyncio.to_thread(self._install, workload)

    def _install(self, workload: Workload) -> InstallOutcome:
        assert workload.install is not None
        key = key_of(workload)
        self.prepare_data_dir(key)
        state = self._settings.state_dir(key)
        script_dir = state / "install"
        script_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        script = script_dir / "install.sh"
        # Egg scripts often carry Windows line endings, which shells read as part of commands.
        script.write_text(workload.install.script.replace("\r\n", "\n"))
        script.chmod(0o644)
        self._ensure_image(workload.install.image)
        stale = self._find(key, "install")
        if stale is not None:
            stale.remove(force=True)
        container = self._client.containers.create(
            **desired_install_container(workload, self._settings, script)
        )
        try:
            container.start()
            try:
                result = container.wait(timeout=workload.install.timeout_seconds)
                exit_code: int | None = int(result.get("StatusCode", -1))
            except Exception:  # the SDK raises requests' timeout types here
                container.kill()
                exit_code = None
            log = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        finally:
            container.remove(force=True)
        (state / "install.log").write_text(log)
        tail = "\n".join(log.splitlines()[-_LOG_TAIL_LINES:])
        if exit_code is None:
            tail += f"\ninstall timed out after {workload.install.timeout_seconds} s"
        return InstallOutcome(succeeded=exit_code == 0, exit_code=exit_code, log_tail=tail)

    async def start(self, key: ServerKey) -> None:
        async with self._lock(key):
            await asyncio.to_thread(self._start, key)

    def _start(self, key: ServerKey) -> None:
        container = self._require(key)
        if container.status != "running":
            container.start()

    async def stop(self, key: ServerKey, method: StopMethod) -> ProcessStatus:
        async with self._lock(key):
            return await asyncio.to_thread(self._stop, key, method)

    def _stop(self, key: ServerKey, method: StopMethod) -> ProcessStatus:
        container = self._require(key)
        if container.status == "running":
            if method.type is StopType.COMMAND and method.command:
                self._write_stdin(container, method.command)
            else:
                container.kill(signal=method.signal.value)
            try:
                container.wait(timeout=method.grace_period_seconds)
            except Exception:  # requests' ReadTimeout / ConnectionError: the grace period ended
                container.reload()
                if container.status == "running":
                    container.kill(signal="SIGKILL")
                    container.wait(timeout=30)
        return self._status(key)

    async def kill(self, key: ServerKey) -> None:
        async with self._lock(key):
            await asyncio.to_thread(self._kill, key)

    def _kill(self, key: ServerKey) -> None:
        container = self._require(key)
        if container.status == "running":
            container.kill(signal="SIGKILL")
            container.wait(timeout=30)

    async def destroy(self, key: ServerKey, *, keep_data: bool) -> None:
        async with self._lock(key):
            await asyncio.to_thread(self._destroy, key, keep_data)
        self._locks.pop(key, None)
        self._cpu_samples.pop(key, None)

    def _destroy(self, key: ServerKey, keep_data: bool) -> None:
        for role in ("install", "server"):
            container = self._find(key, role)
            if container is not None:
                container.remove(force=True)
        shutil.rmtree(self._settings.state_dir(key), ignore_errors=True)
        if not keep_data:
            # rmtree uses directory fds on Linux and never follows symlinks it meets inside.
            shutil.rmtree(self._settings.data_dir(key), ignore_errors=True)

    async def status(self, key: ServerKey) -> ProcessStatus:
        return await asyncio.to_thread(self._status, key)

    def _status(self, key: ServerKey) -> ProcessStatus:
        container = self._find(key)
        if container is None:
            return ProcessStatus(phase=ProcessPhase.ABSENT)
        state: dict[str, Any] = container.attrs["State"]
        started, finished = _timestamp(state.get("StartedAt")), _timestamp(state.get("FinishedAt"))
        if state.get("Running"):
            phase = ProcessPhase.RUNNING
        elif started is None:
            phase = ProcessPhase.CREATED
        else:
            phase = ProcessPhase.EXITED
        return ProcessStatus(
            phase=phase,
            exit_code=None if phase is not ProcessPhase.EXITED else int(state.get("ExitCode", 0)),
            oom_killed=bool(state.get("OOMKilled")),
            started_at=started,
            finished_at=finished if phase is ProcessPhase.EXITED else None,
            restart_count=int(container.attrs.get("RestartCount", 0)),
        )

    # -- console ---------------------------------------------------------------------------

    async def send_command(self, key: ServerKey, line: str) -> None:
        await asyncio.to_thread(self._send_command, key, line)

    def _send_command(self, key: ServerKey, line: str) -> None:
        container = self._require(key)
        if container.status != "running":
            raise ServerNotRunningError(f"{key}: not running")
        self._write_stdin(container, line)

    def _write_stdin(self, container: Container, line: str) -> None:
        if "\n" in line or "\r" in line:
            raise ValueError("a console command is one line")
        attached = container.attach_socket(params={"stdin": 1, "stream": 1})
        # The SDK hands back a read-only wrapper; writes go through the socket underneath.
        raw: socket.socket = getattr(attached, "_sock", attached)
        try:
            raw.sendall(line.encode() + b"\n")
        finally:
            # Closing the wrapper leaves the socket open; close both.
            attached.close()
            raw.close()

    async def logs(self, key: ServerKey, *, tail: int, since: datetime | None = None) -> list[str]:
        return await asyncio.to_thread(self._logs, key, tail, since)

    def _logs(self, key: ServerKey, tail: int, since: datetime | None) -> list[str]:
        container = self._require(key)
        options: dict[str, Any] = {"stdout": True, "stderr": True, "tail": tail}
        if since is not None:
            # Docker takes whole seconds here; one second early keeps the run's first lines.
            options["since"] = int(since.timestamp()) - 1
        raw: bytes = container.logs(**options)
        return raw.decode("utf-8", "replace").splitlines()

    @asynccontextmanager
    async def attach(self, key: ServerKey, *, backlog: int) -> AsyncIterator[ConsoleSession]:
        container = await asyncio.to_thread(self._require, key)
        session = _DockerConsole(self, key, container, backlog)
        try:
            yield session
        finally:
            session.close()

    # -- stats -----------------------------------------------------------------------------

    async def stats(self, key: ServerKey) -> ResourceStats:
        return await asyncio.to_thread(self._stats, key)

    def _stats(self, key: ServerKey) -> ResourceStats:
        container = self._require(key)
        data = self._settings.data_dir(key)
        disk: int | None = self.disk.get(key, lambda: data_usage(data) or 0)
        if container.status != "running":
            return ResourceStats(
                cpu_percent=None,
                memory_bytes=None,
                memory_limit_bytes=None,
                network_rx_bytes=None,
                network_tx_bytes=None,
                disk_bytes=disk,
                unavailable={
                    "cpu": "not running",
                    "memory": "not running",
                    "network": "not running",
                },
            )
        sample: dict[str, Any] = container.stats(stream=False, one_shot=True)
        cpu_total = int(sample.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0))
        now = time.monotonic_ns()
        previous = self._cpu_samples.get(key)
        self._cpu_samples[key] = (cpu_total, now)
        cpu_percent = None
        unavailable: dict[str, str] = {}
        if previous is None or now <= previous[1]:
            unavailable["cpu"] = "first sample; CPU use is known from the next one"
        else:
            cpu_percent = max(0.0, (cpu_total - previous[0]) / (now - previous[1]) * 100)
        memory = sample.get("memory_stats", {})
        networks = sample.get("networks", {}) or {}
        return ResourceStats(
            cpu_percent=cpu_percent,
            memory_bytes=_memory_in_use(memory),
            memory_limit_bytes=memory.get("limit"),
            network_rx_bytes=sum(int(n.get("rx_bytes", 0)) for n in networks.values()),
            network_tx_bytes=sum(int(n.get("tx_bytes", 0)) for n in networks.values()),
            disk_bytes=disk,
            unavailable=unavailable,
        )


class _DockerConsole:
    """Console output from the container's log stream; input through its stdin."""

    def __init__(
        self, runtime: DockerRuntime, key: ServerKey, container: Container, backlog: int
    ) -> None:
        self._runtime = runtime
        self._key = key
        self._container = container
        self._backlog = backlog
        self._closed = threading.Event()
        self._stream: Any = None
        # A game that floods its console must not flood the agent: past this rate, lines are
        # counted and dropped in the reader thread, before they cost the event loop anything.
        self._limit = runtime.console_lines_per_second

    async def lines(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
        loop = asyncio.get_running_loop()
        reader = threading.Thread(target=self._pump, args=(loop, queue), daemon=True)
        reader.start()
        while True:
            line = await queue.get()
            if line is None:
                return
            yield line

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        def put(item: str | None) -> None:
            # Blocks the reader thread (not the event loop) while the client is slow, which is
            # the back-pressure: Docker buffers, the agent does not.
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

        bucket = TokenBucket.full(self._limit, self._limit * 2, time.monotonic())
        dropped = 0
        try:
            self._stream = self._container.logs(
                stdout=True, stderr=True, stream=True, follow=True, tail=self._backlog
            )
            for text in _split_lines(self._stream):
                if self._closed.is_set():
                    break
                if not bucket.allow(time.monotonic()):
                    dropped += 1
                    continue
                if dropped:
                    put(f"[stellarstack] {dropped} console lines skipped (output rate limit)")
                    dropped = 0
                put(text)
        except Exception:  # the stream ends with a connection error when closed under it
            pass
        finally:
            if not loop.is_closed():
                # The loop may close between the check and the call when a test ends.
                with contextlib.suppress(RuntimeError):
                    put(None)

    async def send(self, line: str) -> None:
        await self._runtime.send_command(self._key, line)

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None and hasattr(stream, "close"):
            stream.close()


def _split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def _memory_in_use(memory: dict[str, Any]) -> int | None:
    usage = memory.get("usage")
    if usage is None:
        return None
    stats = memory.get("stats", {})
    # Page cache is reclaimable and not what users mean by "memory used" (cgroup v1 / v2 keys).
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return max(0, int(usage) - int(cache))


def _timestamp(value: str | None) -> datetime | None:
    # Docker reports UTC with nanoseconds ("...T02:30:01.123456789Z"), and a zero time for
    # "never"; Python's parser takes at most microseconds.
    if not value or value.startswith("0001-01-01"):
        return None
    head, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def data_usage(root: Path) -> int | None:
    """Bytes the server's data directory occupies, measured by the confined file layer."""
    try:
        with SafeRoot(root) as files:
            return files.disk_usage().bytes
    except (OSError, FileError):
        return None
