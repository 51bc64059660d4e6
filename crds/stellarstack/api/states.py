"""The lifecycle of each kind as data: one enum of states, a table of allowed transitions.

Runtimes observe the world, classify what they saw as an event, and ask `next_state` where the
resource goes. A transition that is not in the table is a bug in the caller, never a silent
change; `InvalidTransitionError` names the state and the event so the bug is easy to find.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class InvalidTransitionError(ValueError):
    """An event that the current state does not accept."""

    def __init__(self, state: StrEnum, event: StrEnum) -> None:
        super().__init__(f"event {event.value} is not allowed in state {state.value}")
        self.state = state
        self.event = event


@dataclass(frozen=True)
class StateMachine(Generic[S, E]):
    """Allowed transitions of one kind: `transitions[state][event] -> next state`."""

    initial: S
    transitions: Mapping[S, Mapping[E, S]]

    def next_state(self, state: S, event: E) -> S:
        """The state after `event` in `state`; raises `InvalidTransitionError` when not allowed."""
        try:
            return self.transitions[state][event]
        except KeyError:
            raise InvalidTransitionError(state, event) from None

    def allows(self, state: S, event: E) -> bool:
        """Whether `event` is allowed in `state`."""
        return event in self.transitions.get(state, {})

    def edges(self) -> list[tuple[S, E, S]]:
        """Every allowed transition, for tests and documentation."""
        return [
            (state, event, target)
            for state, by_event in self.transitions.items()
            for event, target in by_event.items()
        ]


# ---------------------------------------------------------------------------------------------
# GameServer


class GameServerState(StrEnum):
    """Where a GameServer is in its lifecycle."""

    PENDING = "Pending"
    """Waiting for what it needs: a ready Blueprint, its volume, its node."""
    INSTALLING = "Installing"
    """The blueprint's install step is running into the data volume."""
    INSTALL_FAILED = "InstallFailed"
    """The install step failed; a reinstall request or a spec change retries it."""
    STARTING = "Starting"
    """The process runs but the blueprint's readiness has not passed yet."""
    RUNNING = "Running"
    """The process runs and the readiness check passed; players can connect."""
    STOPPING = "Stopping"
    """The stop method was sent; waiting for the exit or the end of the grace period."""
    STOPPED = "Stopped"
    """No process runs, by request. Data is kept."""
    CRASHED = "Crashed"
    """The process exited without being asked; it is restarted per the crash policy."""
    SUSPENDED = "Suspended"
    """An admin suspended the server: no process runs and power requests are refused."""
    RESTORING = "Restoring"
    """A backup is being restored into the data volume; the server is not running."""
    ERROR = "Error"
    """The spec cannot be realised (invalid or forbidden); `status.message` says why."""


class GameServerEvent(StrEnum):
    """What a runtime observed or was asked, as input to the GameServer state machine."""

    WAITING = "Waiting"
    """A prerequisite (blueprint, volume, node) is missing."""
    INSTALL_STARTED = "InstallStarted"
    INSTALL_SUCCEEDED = "InstallSucceeded"
    INSTALL_FAILED = "InstallFailed"
    START = "Start"
    """The process was started."""
    READY = "Ready"
    """The readiness check passed."""
    STOP = "Stop"
    """The stop method was sent."""
    EXITED = "Exited"
    """The process ended after a stop, or a kill."""
    CRASHED = "Crashed"
    """The process ended without being asked."""
    SUSPEND = "Suspend"
    UNSUSPEND = "Unsuspend"
    RESTORE_STARTED = "RestoreStarted"
    RESTORE_FINISHED = "RestoreFinished"
    FAILED = "Failed"
    """The spec cannot be realised."""
    RECOVERED = "Recovered"
    """The cause of an Error went away."""


_G = GameServerState
_GE = GameServerEvent
# Events accepted in (almost) every state: a spec can become unrealisable or be suspended at any
# time, and a prerequisite can go missing at any time.
_ALWAYS: dict[GameServerEvent, GameServerState] = {
    _GE.FAILED: _G.ERROR,
    _GE.SUSPEND: _G.SUSPENDED,
    _GE.WAITING: _G.PENDING,
}

GAMESERVER_MACHINE: StateMachine[GameServerState, GameServerEvent] = StateMachine(
    initial=_G.PENDING,
    transitions={
        _G.PENDING: {
            **_ALWAYS,
            _GE.INSTALL_STARTED: _G.INSTALLING,
            _GE.INSTALL_SUCCEEDED: _G.STOPPED,
            _GE.START: _G.STARTING,
            _GE.EXITED: _G.STOPPED,
            _GE.RESTORE_STARTED: _G.RESTORING,
        },
        _G.INSTALLING: {
            **_ALWAYS,
            _GE.INSTALL_SUCCEEDED: _G.STOPPED,
            _GE.INSTALL_FAILED: _G.INSTALL_FAILED,
        },
        _G.INSTALL_FAILED: {**_ALWAYS, _GE.INSTALL_STARTED: _G.INSTALLING},
        _G.STARTING: {
            **_ALWAYS,
            _GE.READY: _G.RUNNING,
            _GE.STOP: _G.STOPPING,
            _GE.EXITED: _G.STOPPED,
            _GE.CRASHED: _G.CRASHED,
        },
        _G.RUNNING: {
            **_ALWAYS,
            _GE.STOP: _G.STOPPING,
            _GE.EXITED: _G.STOPPED,
            _GE.CRASHED: _G.CRASHED,
        },
        _G.STOPPING: {**_ALWAYS, _GE.EXITED: _G.STOPPED, _GE.CRASHED: _G.STOPPED},
        _G.STOPPED: {
            **_ALWAYS,
            _GE.START: _G.STARTING,
            _GE.INSTALL_STARTED: _G.INSTALLING,
            _GE.RESTORE_STARTED: _G.RESTORING,
        },
        _G.CRASHED: {
            **_ALWAYS,
            _GE.START: _G.STARTING,
            _GE.EXITED: _G.STOPPED,
            _GE.INSTALL_STARTED: _G.INSTALLING,
            _GE.RESTORE_STARTED: _G.RESTORING,
        },
        _G.SUSPENDED: {_GE.FAILED: _G.ERROR, _GE.UNSUSPEND: _G.STOPPED},
        _G.RESTORING: {
            _GE.FAILED: _G.ERROR,
            _GE.SUSPEND: _G.SUSPENDED,
            _GE.RESTORE_FINISHED: _G.STOPPED,
        },
        _G.ERROR: {_GE.RECOVERED: _G.PENDING, _GE.SUSPEND: _G.SUSPENDED, _GE.WAITING: _G.PENDING},
    },
)

# States in which a process may be running (a power-off must act).
GAMESERVER_ACTIVE_STATES = frozenset({_G.STARTING, _G.RUNNING, _G.STOPPING})


# ---------------------------------------------------------------------------------------------
# Blueprint


class BlueprintPhase(StrEnum):
    """Lifecycle of a Blueprint."""

    PENDING = "Pending"
    """Not yet checked by the operator."""
    READY = "Ready"
    """Checked; GameServers may use it."""
    INVALID = "Invalid"
    """Checked and refused; `status.problems` names every problem. GameServers wait."""


class BlueprintEvent(StrEnum):
    """Outcome of checking a Blueprint."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


_BLUEPRINT_CHECKED = {
    BlueprintEvent.ACCEPTED: BlueprintPhase.READY,
    BlueprintEvent.REJECTED: BlueprintPhase.INVALID,
}
# Every check result is accepted in every phase: a blueprint is re-checked on each change.
BLUEPRINT_MACHINE: StateMachine[BlueprintPhase, BlueprintEvent] = StateMachine(
    initial=BlueprintPhase.PENDING,
    transitions=dict.fromkeys(BlueprintPhase, _BLUEPRINT_CHECKED),
)


# ---------------------------------------------------------------------------------------------
# Backup


class BackupPhase(StrEnum):
    """Where a Backup is in its lifecycle."""

    PENDING = "Pending"
    """Accepted; waiting for the runtime to start it."""
    RUNNING = "Running"
    """The archive is being written to a partial file and hashed."""
    COMPLETED = "Completed"
    """The archive is complete, fsynced, renamed into place; size and sha256 are known."""
    FAILED = "Failed"
    """Writing the archive failed; `status.message` says why; nothing partial is left."""
    RESTORING = "Restoring"
    """A restore request is being carried out; the server is stopped meanwhile."""


class BackupEvent(StrEnum):
    """What happened to a Backup."""

    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RESTORE_STARTED = "RestoreStarted"
    RESTORE_FINISHED = "RestoreFinished"
    """The restore ended (successfully or refused, e.g. on a checksum mismatch); the
    backup itself is still complete."""


_B = BackupPhase
_BE = BackupEvent
BACKUP_MACHINE: StateMachine[BackupPhase, BackupEvent] = StateMachine(
    initial=_B.PENDING,
    transitions={
        _B.PENDING: {_BE.STARTED: _B.RUNNING, _BE.FAILED: _B.FAILED},
        _B.RUNNING: {_BE.SUCCEEDED: _B.COMPLETED, _BE.FAILED: _B.FAILED},
        _B.COMPLETED: {_BE.RESTORE_STARTED: _B.RESTORING},
        _B.RESTORING: {_BE.RESTORE_FINISHED: _B.COMPLETED},
        _B.FAILED: {},
    },
)


# ---------------------------------------------------------------------------------------------
# Schedule


class ScheduleState(StrEnum):
    """Where a Schedule is."""

    IDLE = "Idle"
    """Enabled and waiting for `status.nextRunAt`."""
    RUNNING = "Running"
    """Its tasks are being carried out."""
    DISABLED = "Disabled"
    """`spec.enabled` is false; nothing runs."""


class ScheduleEvent(StrEnum):
    """What happened to a Schedule."""

    TRIGGERED = "Triggered"
    FINISHED = "Finished"
    ENABLED = "Enabled"
    DISABLED = "Disabled"


_S = ScheduleState
_SE = ScheduleEvent
SCHEDULE_MACHINE: StateMachine[ScheduleState, ScheduleEvent] = StateMachine(
    initial=_S.IDLE,
    transitions={
        _S.IDLE: {_SE.TRIGGERED: _S.RUNNING, _SE.DISABLED: _S.DISABLED},
        # A run that is under way finishes even if the schedule is disabled meanwhile; the
        # runtime then sends DISABLED after FINISHED.
        _S.RUNNING: {_SE.FINISHED: _S.IDLE},
        _S.DISABLED: {_SE.ENABLED: _S.IDLE},
    },
)
