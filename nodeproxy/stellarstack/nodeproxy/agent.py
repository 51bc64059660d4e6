"""The node agent's reconcile loop: stored GameServers → Docker containers, status back.

Each pass observes a server, asks `stellarstack.api.lifecycle.compute_step` what to do, does it,
stores the status, and repeats until there is nothing to do. The decision logic is shared and
pure; this module only observes and acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stellarstack.api.blueprint import Blueprint, StopMethod
from stellarstack.api.gameserver import GameServer
from stellarstack.api.lifecycle import Action, Observation, Step, compute_step
from stellarstack.api.probes import probe
from stellarstack.api.runtime import InstallOutcome, ProcessPhase, ServerKey
from stellarstack.api.states import GameServerState
from stellarstack.api.workload import Workload, WorkloadError, build_workload
from stellarstack.nodeproxy.backups import BackupService
from stellarstack.nodeproxy.configedits import apply_config_files
from stellarstack.nodeproxy.files import SafeRoot
from stellarstack.nodeproxy.runtime.docker import DockerRuntime, data_usage
from stellarstack.nodeproxy.schedules import ScheduleService
from stellarstack.nodeproxy.store import CLUSTER, Store

log = logging.getLogger(__name__)

# Enough steps for the longest chain (install → start → ready) plus a stop in between.
_MAX_STEPS = 12
_READINESS_LOG_LINES = 5000
_IDLE_RESYNC = timedelta(seconds=5)


@dataclass(frozen=True)
class AgentSettings:
    """Loop timing and the address probes connect to."""

    probe_host: str = "127.0.0.1"
    resync: timedelta = _IDLE_RESYNC


class NodeAgent:
    """Reconciles every stored GameServer on this node."""

    def __init__(
        self,
        store: Store,
        runtime: DockerRuntime,
        settings: AgentSettings | None = None,
        backups: BackupService | None = None,
        schedules: ScheduleService | None = None,
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._settings = settings or AgentSettings()
        self._backups = backups
        self._schedules = schedules
        self._wake = asyncio.Event()
        self._due: dict[ServerKey, datetime] = {}

    def attach_schedules(self, schedules: ScheduleService) -> None:
        """Run `schedules` in this loop (they need the agent to wake it after power changes)."""
        self._schedules = schedules

    def wake(self) -> None:
        """Reconcile now (call after the desired state changed)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until `stop` is set; each server when due or when woken."""
        while not stop.is_set():
            await self.reconcile_all()
            now = datetime.now(UTC)
            due = [when for when in self._due.values() if when > now]
            delay = min([*(when - now for when in due), self._settings.resync]).total_seconds()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first(self._wake.wait(), stop.wait()), timeout=max(0.05, delay)
                )

    async def reconcile_all(self) -> None:
        """One pass over every server: deletions first, then the rest."""
        for gone in self._store.deleting(GameServer):
            await self.delete(gone)
        now = datetime.now(UTC)
        for gameserver in self._store.of_kind(GameServer):
            key = _key(gameserver)
            if self._due.get(key, now) > now:
                continue
            try:
                step = await self.reconcile(gameserver)
            except Exception:  # one broken server must not stop the others
                log.exception("reconcile of %s failed", key)
                self._due[key] = now + timedelta(seconds=10)
                continue
            if step.requeue_after is not None:
                self._due[key] = now + step.requeue_after
            else:
                self._due.pop(key, None)
        if self._backups is not None:
            # After the servers: a restore stops its server and must not race a start.
            await self._backups.reconcile_all()
        if self._schedules is not None:
            await self._schedules.reconcile_all()

    async def reconcile(self, gameserver: GameServer) -> Step:
        """Step a server until there is nothing to do; returns the last step."""
        key = _key(gameserver)
        blueprint = self._store.get(Blueprint, CLUSTER, gameserver.spec.blueprint)
        workload: Workload | None = None
        problems: tuple[str, ...] = ()
        if blueprint is not None:
            try:
                workload = build_workload(gameserver, blueprint, self._runtime.workload_settings)
            except WorkloadError as exc:
                problems = tuple(exc.problems)
        install_outcome: InstallOutcome | None = None
        step: Step | None = None
        for _ in range(_MAX_STEPS):
            observed = await self._observe(
                gameserver, key, blueprint, workload, problems, install_outcome
            )
            install_outcome = None
            step = compute_step(gameserver, observed)
            if step.status != gameserver.status:
                self._store.set_status(gameserver, step.status)
                gameserver = gameserver.model_copy(update={"status": step.status})
                for event in step.events:
                    log.info("%s: %s -> %s", key, event.value, step.status.state.value)
            if step.action is Action.NONE:
                return step
            install_outcome = await self._act(step.action, key, workload, blueprint)
        assert step is not None
        log.warning("%s did not settle in %d steps", key, _MAX_STEPS)
        return Step(step.action, step.status, step.events, timedelta(seconds=1))

    async def _observe(
        self,
        gameserver: GameServer,
        key: ServerKey,
        blueprint: Blueprint | None,
        workload: Workload | None,
        problems: tuple[str, ...],
        install_outcome: InstallOutcome | None,
    ) -> Observation:
        process = await self._runtime.status(key)
        ready = False
        state = gameserver.status.state if gameserver.status else GameServerState.PENDING
        if (
            workload is not None
            and process.phase is ProcessPhase.RUNNING
            and state
            in {
                GameServerState.STARTING,
                GameServerState.PENDING,
                GameServerState.STOPPED,
                GameServerState.CRASHED,
            }
        ):
            ready = await self._ready(key, workload, process.started_at)
        over_quota = False
        if workload is not None:
            data = self._runtime.prepare_data_dir(key)
            used = await asyncio.to_thread(
                self._runtime.disk.get, key, lambda: data_usage(data) or 0
            )
            over_quota = used > workload.limits.disk_bytes
        return Observation(
            over_disk_quota=over_quota,
            process=process,
            now=datetime.now(UTC),
            ready=ready,
            install_outcome=install_outcome,
            blueprint_found=blueprint is not None,
            problems=problems,
            has_install_step=workload is None or workload.install is not None,
            readiness_timeout=(
                None if workload is None else timedelta(seconds=workload.readiness.timeout_seconds)
            ),
        )

    async def _act(
        self,
        action: Action,
        key: ServerKey,
        workload: Workload | None,
        blueprint: Blueprint | None,
    ) -> InstallOutcome | None:
        stop_method = blueprint.spec.stop if blueprint is not None else StopMethod()
        if action is Action.STOP:
            await self._runtime.stop(key, stop_method)
        elif action is Action.KILL:
            await self._runtime.kill(key)
        elif action is Action.START:
            assert workload is not None  # compute_step starts only valid servers
            await self._runtime.ensure(workload)
            await asyncio.to_thread(self._edit_config_files, key, workload)
            await self._runtime.start(key)
        elif action is Action.INSTALL:
            assert workload is not None
            return await self._runtime.install(workload)
        return None

    def _edit_config_files(self, key: ServerKey, workload: Workload) -> None:
        """Apply the blueprint's config-file edits, through the confined file layer (a game
        that replaced a config file with a symlink gets an error logged, never a write outside).
        A file that does not parse is left alone and logged: the game may still start."""
        if not workload.config_files:
            return
        data = self._runtime.prepare_data_dir(key)
        with SafeRoot(data, owner=(workload.run_as_user, workload.run_as_group)) as root:
            for problem in apply_config_files(root, workload.config_files):
                log.warning("%s: config file %s", key, problem)

    async def _ready(self, key: ServerKey, workload: Workload, started_at: datetime | None) -> bool:
        readiness = workload.readiness
        if readiness.console_patterns:
            lines = await self._runtime.logs(key, tail=_READINESS_LOG_LINES, since=started_at)
            return any(
                _matches(line, pattern, readiness.console_regex)
                for line in lines
                for pattern in readiness.console_patterns
            )
        if workload.probe is None:
            return True  # no readiness defined: running is ready
        published = next(
            (
                p
                for p in workload.ports
                if p.container_port == workload.probe.container_port
                and p.protocol == ("UDP" if workload.probe.type == "udp" else "TCP")
            ),
            None,
        )
        if published is None:
            return False
        return await probe(
            probe_address(published.host_ip, self._settings.probe_host),
            published.host_port,
            workload.probe.type,
            workload.probe.payload,
            workload.probe.path,
        )

    async def delete(self, gameserver: GameServer) -> None:
        """Stop gracefully, remove the container, delete the data unless retained, forget."""
        key = _key(gameserver)
        blueprint = self._store.get(Blueprint, CLUSTER, gameserver.spec.blueprint)
        if (await self._runtime.status(key)).phase is ProcessPhase.RUNNING:
            await self._runtime.stop(key, blueprint.spec.stop if blueprint else StopMethod())
        await self._runtime.destroy(key, keep_data=gameserver.spec.storage.retain_on_delete)
        self._store.forget(GameServer, key.namespace, key.name)
        self._due.pop(key, None)
        self._runtime.disk.forget(key)


def _key(gameserver: GameServer) -> ServerKey:
    return ServerKey(gameserver.metadata.namespace or "default", gameserver.metadata.name or "")


def _matches(line: str, pattern: str, regex: bool) -> bool:
    return re.search(pattern, line) is not None if regex else pattern in line


async def _first(*waits: object) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def probe_address(host_ip: str | None, probe_host: str) -> str:
    """Where a readiness probe reaches a published port: the one address it is published on,
    or `probe_host` when it is published on every address."""
    if host_ip is None or ipaddress.ip_address(host_ip).is_unspecified:
        return probe_host
    return host_ip
