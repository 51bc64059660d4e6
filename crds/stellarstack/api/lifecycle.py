"""What a runtime does next for a GameServer: one pure decision per reconcile step.

A runtime observes (its process, whether readiness passed, the outcome of an install it just
ran), calls `compute_step`, carries out the one `Action` it returns, writes the returned status,
and calls again — until the action is `NONE`. Each step is small and acts only on the state it
finds, so a runtime that crashes at any line resumes correctly from what it observes next time.

Decisions documented here (and tested):

* Any exit the runtime did not ask for while `power.state` is Running is a crash, also with exit
  code 0: a game that stops by itself is restarted, as users expect from a server that "should
  be up". Crash restarts wait `initialDelaySeconds`, doubled per further crash up to
  `maxDelaySeconds`; a run that lasted `resetAfterSeconds` resets the count.
* A kill request kills at once; with `power.state: Running` the server then starts again without
  back-off (a kill is not a crash). A restart request stops with the blueprint's stop method and
  starts again; with `power.state: Stopped` it only stops.
* Suspension stops the server gracefully; restart and kill requests made while suspended are
  acknowledged as refused, so they do not fire later.
* The install step runs before the first start and on each new reinstall request; a failed
  install waits for the next reinstall request.
* A server whose data outgrows `resources.disk` is stopped with its stop method and is not
  started again until enough space is freed (reason `DiskQuotaExceeded`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from stellarstack.api.gameserver import (
    ExitInfo,
    GameServer,
    GameServerStatus,
    InstallResult,
    PowerState,
)
from stellarstack.api.runtime import InstallOutcome, ProcessPhase, ProcessStatus
from stellarstack.api.states import GAMESERVER_MACHINE, GameServerEvent, GameServerState

G = GameServerState
E = GameServerEvent


class Action(StrEnum):
    """The one thing a runtime does in a step."""

    NONE = "None"
    """Nothing to do until something changes (or `requeue_after` passes)."""
    START = "Start"
    """Ensure the workload is current, then start it."""
    STOP = "Stop"
    """Stop with the blueprint's stop method (grace period, then kill)."""
    KILL = "Kill"
    """Kill at once."""
    INSTALL = "Install"
    """Run the install step to its end, then report the outcome in the next step."""


@dataclass(frozen=True)
class Observation:
    """What the runtime saw just before this step."""

    process: ProcessStatus
    now: datetime
    ready: bool = False
    """The blueprint's readiness check passed during the current run."""
    install_outcome: InstallOutcome | None = None
    """Set in the step right after an INSTALL action."""
    blueprint_found: bool = True
    problems: tuple[str, ...] = ()
    """Why the GameServer cannot become a workload (each names its field)."""
    has_install_step: bool = True
    readiness_timeout: timedelta | None = None
    """How long Starting may last before the status says the server is late."""
    over_disk_quota: bool = False
    """The data volume holds more than `resources.disk` (for runtimes that measure it)."""


@dataclass(frozen=True)
class Step:
    """The decision: an action, the status to write, and when to look again."""

    action: Action
    status: GameServerStatus
    events: tuple[GameServerEvent, ...] = ()
    requeue_after: timedelta | None = None


def compute_step(gameserver: GameServer, observed: Observation) -> Step:
    """Decide the next step for `gameserver` from what was observed."""
    status = (gameserver.status or GameServerStatus()).model_copy(deep=True)
    status.observed_generation = gameserver.metadata.generation
    decision = _Decision(gameserver, observed, status)
    return decision.decide()


class _Decision:
    """One step's bookkeeping: events applied through the state machine, then an action."""

    def __init__(
        self, gameserver: GameServer, observed: Observation, status: GameServerStatus
    ) -> None:
        self.spec = gameserver.spec
        self.observed = observed
        self.status = status
        self.events: list[GameServerEvent] = []

    @property
    def state(self) -> GameServerState:
        return self.status.state

    def fire(self, event: GameServerEvent, reason: str = "", message: str = "") -> None:
        target = GAMESERVER_MACHINE.next_state(self.state, event)
        if target is not self.state:
            self.status.state_since = self.observed.now
        self.status.state = target
        self.status.reason = reason
        self.status.message = message
        self.events.append(event)

    def step(self, action: Action, requeue_after: timedelta | None = None) -> Step:
        return Step(
            action=action,
            status=self.status,
            events=tuple(self.events),
            requeue_after=requeue_after,
        )

    @property
    def running(self) -> bool:
        return self.observed.process.phase is ProcessPhase.RUNNING

    def decide(self) -> Step:
        observed, spec = self.observed, self.spec
        if self.running and observed.process.started_at is not None:
            self.status.started_at = observed.process.started_at

        # Suspension overrides everything, even a missing blueprint: stopping needs none.
        if spec.suspended:
            return self.suspended()
        if self.state is G.SUSPENDED:
            self.fire(E.UNSUSPEND, "Unsuspended")
        if self.state is G.RESTORING:
            # A restore is carried out by the Backup's runtime, which ends it.
            return self.step(Action.NONE)

        # Then prerequisites and validity: nothing else can be decided without them.
        if not observed.blueprint_found:
            if self.state is not G.PENDING or self.status.reason != "BlueprintNotFound":
                self.fire(E.WAITING, "BlueprintNotFound", f"Blueprint {spec.blueprint} not found")
            return self.step(Action.NONE)
        if observed.problems:
            message = "; ".join(observed.problems)
            if self.state is not G.ERROR or self.status.message != message:
                self.fire(E.FAILED, "InvalidSpec", message)
            return self.step(Action.NONE)
        if self.state is G.ERROR:
            self.fire(E.RECOVERED, "Recovered", "the spec is valid again")

        if self.state is G.STOPPING and not self.running:
            # A stop finished (perhaps while the runtime was down): account for it first.
            self.record_exit()
            self.fire(E.EXITED, "Stopped")

        if self.state is G.INSTALLING:
            return self.installing()
        install_wanted = self.install_wanted()
        if install_wanted:
            if self.running:
                return self.stop_process("Reinstall")
            self.status.last_reinstall_request = spec.reinstall_request
            if not observed.has_install_step:
                self.fire(E.INSTALL_STARTED, "Installing")
                self.record_install(InstallOutcome(True, 0, "the blueprint has no install step"))
                return self.decide_power()
            self.fire(E.INSTALL_STARTED, "Installing", "running the blueprint's install step")
            return self.step(Action.INSTALL)
        if self.state is G.INSTALL_FAILED:
            return self.step(Action.NONE)

        if spec.power.kill_request and spec.power.kill_request != self.status.last_kill_request:
            self.status.last_kill_request = spec.power.kill_request
            if self.running:
                self.fire_stop("KillRequested", "killed on request")
                return self.step(Action.KILL)
        if (
            spec.power.restart_request
            and spec.power.restart_request != self.status.last_restart_request
        ):
            self.status.last_restart_request = spec.power.restart_request
            if self.running:
                return self.stop_process("RestartRequested")
        return self.decide_power()

    # -- the parts -----------------------------------------------------------------------

    def suspended(self) -> Step:
        power = self.spec.power
        refused = []
        if power.restart_request and power.restart_request != self.status.last_restart_request:
            self.status.last_restart_request = power.restart_request
            refused.append("restart")
        if power.kill_request and power.kill_request != self.status.last_kill_request:
            self.status.last_kill_request = power.kill_request
            refused.append("kill")
        if self.state is not G.SUSPENDED:
            self.fire(E.SUSPEND, "Suspended", "suspended by an administrator")
        if refused:
            self.status.message = f"suspended: {' and '.join(refused)} request refused"
        return self.step(Action.STOP if self.running else Action.NONE)

    def install_wanted(self) -> bool:
        request = self.spec.reinstall_request
        if request and request != self.status.last_reinstall_request:
            return True
        return self.status.install is None

    def installing(self) -> Step:
        outcome = self.observed.install_outcome
        if outcome is None:
            # The runtime stopped mid-install (crash or restart): run it again.
            return self.step(Action.INSTALL)
        self.record_install(outcome)
        if not outcome.succeeded:
            return self.step(Action.NONE)
        return self.decide_power()

    def record_install(self, outcome: InstallOutcome) -> None:
        self.status.install = InstallResult(
            result="Succeeded" if outcome.succeeded else "Failed",
            finished_at=self.observed.now,
            message=outcome.log_tail[-4000:],
            request=self.spec.reinstall_request,
        )
        if outcome.succeeded:
            self.fire(E.INSTALL_SUCCEEDED, "Installed")
        else:
            self.fire(
                E.INSTALL_FAILED,
                "InstallFailed",
                f"the install step exited with {outcome.exit_code}; see status.install.message",
            )

    def fire_stop(self, reason: str, message: str = "") -> None:
        if self.state in {G.STARTING, G.RUNNING}:
            self.fire(E.STOP, reason, message)
        elif self.state is not G.STOPPING:
            # Observed running in a state that does not expect it (re-adopted after a restart of
            # the runtime): account for the run first, then stop it.
            self.fire(E.START, "Adopted")
            self.fire(E.STOP, reason, message)

    def stop_process(self, reason: str) -> Step:
        self.fire_stop(reason)
        return self.step(Action.STOP)

    def decide_power(self) -> Step:
        wanted = self.spec.power.state is PowerState.RUNNING
        if wanted and not self.observed.over_disk_quota:
            return self.keep_running()
        step = self.keep_stopped()
        if not wanted:
            return step
        # Held down by the disk quota: stopped (gracefully) and not started again until the
        # owner frees space; then it starts by itself.
        self.status.reason = "DiskQuotaExceeded"
        self.status.message = (
            f"the data uses more than its {self.spec.resources.disk} quota; "
            "free space to start the server again"
        )
        return self.step(step.action, requeue_after=timedelta(seconds=30))

    def keep_stopped(self) -> Step:
        if self.running:
            return self.stop_process("StopRequested")
        if self.state in {G.STARTING, G.RUNNING, G.CRASHED, G.PENDING}:
            self.record_exit()
            self.fire(E.EXITED, "Stopped")
        return self.step(Action.NONE)

    def keep_running(self) -> Step:
        observed = self.observed
        if self.running:
            if self.state is G.STOPPING:
                # A stop is under way (a restart, or the runtime died mid-stop): finish it.
                return self.step(Action.STOP)
            if self.state not in {G.STARTING, G.RUNNING}:
                self.fire(E.START, "Started")
            if self.state is G.STARTING:
                if observed.ready:
                    self.fire(E.READY, "Ready")
                    return self.step(Action.NONE)
                return self.waiting_for_readiness()
            return self.step(Action.NONE)

        if self.state in {G.STARTING, G.RUNNING}:
            self.record_crash()
        if self.state is G.CRASHED:
            if not self.spec.crash_policy.restart:
                return self.step(Action.NONE)
            wait = self.backoff_remaining()
            if wait > timedelta(0):
                return self.step(Action.NONE, requeue_after=wait)
        self.fire(E.START, "Starting")
        self.status.started_at = observed.now
        return self.step(Action.START)

    def waiting_for_readiness(self) -> Step:
        timeout = self.observed.readiness_timeout
        since = self.status.state_since or self.observed.now
        if timeout is not None and self.observed.now - since > timeout:
            self.status.reason = "ReadinessTimeout"
            self.status.message = (
                f"not ready after {int(timeout.total_seconds())} s; still waiting for the "
                "blueprint's readiness check"
            )
        # Readiness is polled: look again soon.
        return self.step(Action.NONE, requeue_after=timedelta(seconds=1))

    def record_exit(self) -> None:
        process = self.observed.process
        if process.phase is ProcessPhase.EXITED:
            self.status.last_exit = ExitInfo(
                exit_code=process.exit_code,
                reason="OOMKilled" if process.oom_killed else _exit_reason(process.exit_code),
                finished_at=process.finished_at or self.observed.now,
            )

    def record_crash(self) -> None:
        process = self.observed.process
        self.record_exit()
        policy = self.spec.crash_policy
        lasted = None
        if self.status.started_at is not None:
            lasted = (process.finished_at or self.observed.now) - self.status.started_at
        if lasted is not None and lasted >= timedelta(seconds=policy.reset_after_seconds):
            self.status.restart_count = 0
        self.status.restart_count += 1
        exit_info = self.status.last_exit
        detail = f"exit code {exit_info.exit_code}" if exit_info else "no exit code"
        if exit_info is not None and exit_info.reason == "OOMKilled":
            detail = "killed for using more memory than its limit"
        self.fire(E.CRASHED, "Crashed", f"the server exited unexpectedly ({detail})")

    def backoff_remaining(self) -> timedelta:
        policy = self.spec.crash_policy
        count = max(1, self.status.restart_count)
        delay = min(policy.initial_delay_seconds * 2 ** (count - 1), policy.max_delay_seconds)
        since = self.status.state_since or self.observed.now
        return since + timedelta(seconds=delay) - self.observed.now


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "Unknown"
    if code == 0:
        return "Completed"
    if code > 128:
        return f"Signal{code - 128}"
    return "Error"
