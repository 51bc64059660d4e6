"""Schedules on a Docker node: cron runs of power actions, console commands and backups.

Each due schedule runs in its own task so that task delays (up to 15 minutes each) never hold
up the reconcile loop. A run's outcome is kept in `status.history` (bounded); a run cut short
by an agent restart is recorded as failed ("interrupted") rather than silently repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from stellarstack.api.backup import Backup, BackupSpec, Compression
from stellarstack.api.common import ObjectMeta
from stellarstack.api.cron import next_run
from stellarstack.api.gameserver import GameServer, PowerState
from stellarstack.api.retention import BackupRecord, select_for_deletion
from stellarstack.api.runtime import RuntimeFailureError, ServerKey
from stellarstack.api.schedule import (
    PowerAction,
    RunResult,
    Schedule,
    ScheduleRun,
    ScheduleSpec,
    ScheduleStatus,
    Task,
    TaskAction,
)
from stellarstack.api.states import (
    SCHEDULE_MACHINE,
    BackupPhase,
    GameServerState,
    ScheduleEvent,
    ScheduleState,
)
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.store import Store

log = logging.getLogger(__name__)

LABEL_SCHEDULE = "stellarstack.io/schedule"
# How long a task waits for its effect (a server reaching a state, a backup completing).
TASK_TIMEOUT = timedelta(minutes=30)
_POLL_SECONDS = 0.5


class TaskFailedError(Exception):
    """A task did not achieve its effect; the message says why."""


class ScheduleService:
    """Runs the Schedules stored on this node."""

    def __init__(
        self,
        store: Store,
        runtime: DockerRuntime,
        wake_agent: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._wake_agent = wake_agent
        self._clock = clock
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def reconcile_all(self) -> None:
        """Start every due run; keep `nextRunAt` and the state current."""
        for schedule in self._store.of_kind(Schedule):
            self.reconcile(schedule)

    def reconcile(self, schedule: Schedule) -> None:
        """One schedule: enable/disable, compute the next run, start it when due."""
        key = (schedule.metadata.namespace or "default", schedule.metadata.name or "")
        status = (schedule.status or ScheduleStatus()).model_copy(deep=True)
        now = self._clock()
        spec = schedule.spec
        changed = status.observed_generation != schedule.metadata.generation
        if status.state is ScheduleState.RUNNING and key not in self._running:
            # The agent restarted during a run: record it, do not repeat it blindly.
            self._finish(status, now, RunResult.FAILED, "interrupted by an agent restart", spec)
        if status.state is ScheduleState.RUNNING:
            return
        if not spec.enabled:
            if status.state is not ScheduleState.DISABLED:
                status.state = SCHEDULE_MACHINE.next_state(status.state, ScheduleEvent.DISABLED)
            status.next_run_at = None
        else:
            if status.state is ScheduleState.DISABLED:
                status.state = SCHEDULE_MACHINE.next_state(status.state, ScheduleEvent.ENABLED)
                changed = True
            if status.next_run_at is None or changed:
                status.next_run_at = next_run(spec.cron, spec.time_zone, now)
            if status.next_run_at <= now:
                status.state = SCHEDULE_MACHINE.next_state(status.state, ScheduleEvent.TRIGGERED)
                status.last_run_at = now
                self._running[key] = asyncio.create_task(self._run(schedule, now))
        status.observed_generation = schedule.metadata.generation
        if status != schedule.status:
            self._store.set_status(schedule, status)

    async def wait_idle(self) -> None:
        """Wait for every run under way (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _run(self, schedule: Schedule, started: datetime) -> None:
        namespace = schedule.metadata.namespace or "default"
        key = (namespace, schedule.metadata.name or "")
        result, message = RunResult.SUCCEEDED, ""
        try:
            server = ServerKey(namespace, schedule.spec.game_server)
            gameserver = self._store.get(GameServer, server.namespace, server.name)
            state = gameserver.status.state if gameserver and gameserver.status else None
            if gameserver is None:
                result, message = RunResult.FAILED, "the GameServer does not exist"
            elif schedule.spec.only_when_running and state is not GameServerState.RUNNING:
                result, message = RunResult.SKIPPED, f"the server is {state or 'Pending'}"
            else:
                failures = []
                for index, task in enumerate(schedule.spec.tasks):
                    await asyncio.sleep(task.delay_seconds)
                    try:
                        await self._task(schedule, server, task, started)
                    except (TaskFailedError, RuntimeFailureError) as exc:
                        failures.append(f"tasks[{index}] ({task.action.value}): {exc}")
                        if not task.continue_on_failure:
                            break
                if failures:
                    result, message = RunResult.FAILED, "; ".join(failures)
        except Exception as exc:  # a bug in a run must still end the run
            log.exception("schedule %s/%s failed", *key)
            result, message = RunResult.FAILED, f"internal error: {exc}"
        finally:
            self._running.pop(key, None)
        current = self._store.get(Schedule, *key)
        if current is not None:
            status = (current.status or ScheduleStatus()).model_copy(deep=True)
            self._finish(status, self._clock(), result, message, current.spec)
            self._store.set_status(current, status)

    def _finish(
        self,
        status: ScheduleStatus,
        now: datetime,
        result: RunResult,
        message: str,
        spec: ScheduleSpec,
    ) -> None:
        status.state = SCHEDULE_MACHINE.next_state(status.state, ScheduleEvent.FINISHED)
        status.last_result = result
        run = ScheduleRun(
            started_at=status.last_run_at or now, finished_at=now, result=result, message=message
        )
        status.history = [run, *status.history][: spec.history_limit]
        status.next_run_at = next_run(spec.cron, spec.time_zone, now) if spec.enabled else None

    async def _task(
        self, schedule: Schedule, server: ServerKey, task: Task, started: datetime
    ) -> None:
        if task.action is TaskAction.COMMAND:
            assert task.command is not None
            await self._runtime.send_command(server, task.command)
        elif task.action is TaskAction.POWER:
            assert task.power is not None
            await self._power(server, task.power)
        else:
            await self._backup(schedule, server, task, started)

    async def _power(self, server: ServerKey, action: PowerAction) -> None:
        gameserver = self._store.get(GameServer, server.namespace, server.name)
        if gameserver is None:
            raise TaskFailedError("the GameServer does not exist")
        if gameserver.spec.suspended:
            raise TaskFailedError("the server is suspended")
        spec = gameserver.spec.model_copy(deep=True)
        request = uuid.uuid4().hex
        if action is PowerAction.START:
            spec.power.state = PowerState.RUNNING
        elif action is PowerAction.STOP:
            spec.power.state = PowerState.STOPPED
        elif action is PowerAction.RESTART:
            spec.power.restart_request = request
        else:
            spec.power.kill_request = request
        self._store.put(gameserver.model_copy(update={"spec": spec}))
        self._wake_agent()

        def done(current: GameServer) -> bool:
            status = current.status
            if status is None:
                return False
            if action is PowerAction.STOP:
                return status.state is GameServerState.STOPPED
            if action is PowerAction.KILL:
                return status.last_kill_request == request
            if action is PowerAction.RESTART and status.last_restart_request != request:
                return False
            wanted_running = current.spec.power.state is PowerState.RUNNING
            return not wanted_running or status.state is GameServerState.RUNNING

        await self._wait(server, done, f"the server did not {action.value} in time")

    async def _wait(
        self, server: ServerKey, done: Callable[[GameServer], bool], failure: str
    ) -> None:
        # Waits use the monotonic clock: the schedule clock says when runs are due, not how
        # long an effect may take.
        deadline = time.monotonic() + TASK_TIMEOUT.total_seconds()
        while time.monotonic() < deadline:
            current = self._store.get(GameServer, server.namespace, server.name)
            if current is None:
                raise TaskFailedError("the GameServer was deleted")
            if done(current):
                return
            await asyncio.sleep(_POLL_SECONDS)
        raise TaskFailedError(failure)

    async def _backup(
        self, schedule: Schedule, server: ServerKey, task: Task, started: datetime
    ) -> None:
        settings = task.backup
        name = f"{schedule.metadata.name}-{started.strftime('%Y%m%d%H%M%S')}"
        backup = Backup(
            metadata=ObjectMeta(
                name=name[:63].rstrip("-"),
                namespace=server.namespace,
                labels={LABEL_SCHEDULE: schedule.metadata.name or ""},
            ),
            spec=BackupSpec(
                game_server=server.name,
                compression=settings.compression if settings else Compression.ZSTD,
                ignore=list(settings.ignore) if settings else [],
            ),
        )
        stored = self._store.put(backup)
        self._wake_agent()
        deadline = time.monotonic() + TASK_TIMEOUT.total_seconds()
        while time.monotonic() < deadline:
            current = self._store.get(Backup, server.namespace, stored.metadata.name or "")
            phase = current.status.phase if current and current.status else None
            if phase is BackupPhase.COMPLETED:
                break
            if phase is BackupPhase.FAILED or current is None:
                reason = current.status.message if current and current.status else "deleted"
                raise TaskFailedError(f"the backup failed: {reason}")
            await asyncio.sleep(_POLL_SECONDS)
        else:
            raise TaskFailedError("the backup did not complete in time")
        if schedule.spec.retention is not None:
            self._prune(schedule, server.namespace)

    def _prune(self, schedule: Schedule, namespace: str) -> None:
        assert schedule.spec.retention is not None
        own = [
            b
            for b in self._store.of_kind(Backup, namespace)
            if b.metadata.labels.get(LABEL_SCHEDULE) == schedule.metadata.name
        ]
        records = [
            BackupRecord(
                name=b.metadata.name or "",
                completed_at=b.status.completed_at if b.status else None,
                locked=b.spec.locked,
            )
            for b in own
        ]
        for name in select_for_deletion(
            records, schedule.spec.retention, zone=schedule.spec.time_zone
        ):
            self._store.mark_deleting(Backup, namespace, name)
        self._wake_agent()
