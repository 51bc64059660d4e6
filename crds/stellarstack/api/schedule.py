"""Schedule: cron-driven tasks for one GameServer (power actions, console commands, backups)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stellarstack.api.backup import Compression
from stellarstack.api.common import ApiModel, DnsSubdomain, Resource
from stellarstack.api.cron import check_cron, check_time_zone
from stellarstack.api.retention import RetentionPolicy
from stellarstack.api.states import ScheduleState

MAX_TASKS = 32
MAX_HISTORY = 50


class TaskAction(StrEnum):
    """What a task does."""

    POWER = "Power"
    COMMAND = "Command"
    BACKUP = "Backup"


class PowerAction(StrEnum):
    """Power actions a task can take."""

    START = "start"
    STOP = "stop"
    RESTART = "restart"
    KILL = "kill"


class BackupTask(ApiModel):
    """Settings of the Backup a task creates."""

    compression: Compression = Compression.ZSTD
    """Archive compression."""
    ignore: list[str] = Field(default_factory=list, max_length=256)
    """Glob patterns left out of the archive."""


class Task(ApiModel):
    """One step of a schedule's run."""

    action: TaskAction
    """Power, Command or Backup."""
    power: PowerAction | None = None
    """For Power: start, stop, restart or kill."""
    command: str | None = Field(default=None, min_length=1, max_length=1024)
    """For Command: the console line to send."""
    backup: BackupTask | None = None
    """For Backup: settings of the Backup created."""
    delay_seconds: int = Field(default=0, ge=0, le=900)
    """Wait this long after the previous task finished (or after the run began, for the first)."""
    continue_on_failure: bool = False
    """Run the next tasks even if this one fails."""

    @model_validator(mode="after")
    def _settings_match_action(self) -> Task:
        if self.action is TaskAction.POWER and self.power is None:
            raise ValueError("power: required when action is Power")
        if self.action is TaskAction.COMMAND and self.command is None:
            raise ValueError("command: required when action is Command")
        if self.action is not TaskAction.POWER and self.power is not None:
            raise ValueError("power: only allowed when action is Power")
        if self.action is not TaskAction.COMMAND and self.command is not None:
            raise ValueError("command: only allowed when action is Command")
        if self.action is not TaskAction.BACKUP and self.backup is not None:
            raise ValueError("backup: only allowed when action is Backup")
        if "\n" in (self.command or ""):
            raise ValueError("command: must be a single line")
        return self


class ScheduleSpec(ApiModel):
    """When to run which tasks."""

    game_server: DnsSubdomain
    """Name of the GameServer (same namespace) the tasks act on."""
    cron: str = Field(min_length=1, max_length=256)
    """Five-field cron expression (minute hour day-of-month month day-of-week) or a macro such as
    `@daily`; runs more often than once a minute are refused."""
    time_zone: str = "UTC"
    """IANA time zone the cron expression is read in, e.g. `Europe/Berlin`."""
    enabled: bool = True
    """Whether the schedule runs."""
    only_when_running: bool = False
    """Skip a run when the server is not Running."""
    tasks: list[Task] = Field(min_length=1, max_length=MAX_TASKS)
    """Tasks carried out in order."""
    retention: RetentionPolicy | None = None
    """Prune this schedule's own backups after each run (locked backups are never pruned)."""
    history_limit: int = Field(default=10, ge=0, le=MAX_HISTORY)
    """How many past runs `status.history` keeps."""

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        return check_cron(cron)

    @field_validator("time_zone")
    @classmethod
    def _valid_time_zone(cls, zone: str) -> str:
        return check_time_zone(zone)


class RunResult(StrEnum):
    """How a run ended."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class ScheduleRun(ApiModel):
    """One past run."""

    started_at: datetime
    """When the run began."""
    finished_at: datetime | None = None
    """When it ended."""
    result: RunResult
    """Succeeded, Failed or Skipped."""
    message: str = ""
    """What failed, or why the run was skipped."""


class ScheduleStatus(ApiModel):
    """What the runtime last observed."""

    state: ScheduleState = ScheduleState.IDLE
    """Idle, Running or Disabled."""
    last_run_at: datetime | None = None
    """When the last run began."""
    next_run_at: datetime | None = None
    """When the next run is due."""
    last_result: RunResult | None = None
    """How the last run ended."""
    history: list[ScheduleRun] = Field(default_factory=list, max_length=MAX_HISTORY)
    """Recent runs, newest first, at most `spec.historyLimit`."""
    observed_generation: int | None = None
    """The generation this status describes."""


class Schedule(Resource):
    """Cron-driven tasks for one GameServer."""

    KIND: ClassVar[str] = "Schedule"
    PLURAL: ClassVar[str] = "schedules"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gsschedule",)

    kind: Literal["Schedule"] = "Schedule"
    spec: ScheduleSpec
    """When to run which tasks."""
    status: ScheduleStatus | None = None
    """Set by the runtime."""
