"""The GameServer decision function, step by step and through whole simulated lives."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stellarstack.api.gameserver import GameServer
from stellarstack.api.lifecycle import Action, Observation, Step, compute_step
from stellarstack.api.runtime import InstallOutcome, ProcessPhase, ProcessStatus
from stellarstack.api.states import GameServerState as G

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RUNNING = ProcessStatus(ProcessPhase.RUNNING, started_at=NOW - timedelta(minutes=5))
ABSENT = ProcessStatus(ProcessPhase.ABSENT)


def exited(
    code: int = 1, *, oom: bool = False, after: timedelta = timedelta(minutes=5)
) -> ProcessStatus:
    return ProcessStatus(
        ProcessPhase.EXITED,
        exit_code=code,
        oom_killed=oom,
        started_at=NOW - after,
        finished_at=NOW,
    )


def server(gameserver_doc: dict[str, Any], state: G | None = None, **status: Any) -> GameServer:
    document = copy.deepcopy(gameserver_doc)
    if state is not None:
        document["status"] = {
            "state": state.value,
            "install": {"result": "Succeeded"},
            **status,
        }
    return GameServer.model_validate(document)


def step(gs: GameServer, process: ProcessStatus = ABSENT, **observed: Any) -> Step:
    return compute_step(gs, Observation(process=process, now=observed.pop("now", NOW), **observed))


def test_a_new_server_installs_then_starts_then_becomes_ready(
    gameserver_doc: dict[str, Any],
) -> None:
    gs = server(gameserver_doc)
    first = step(gs)
    assert (first.action, first.status.state) == (Action.INSTALL, G.INSTALLING)

    gs.status = first.status
    second = step(gs, install_outcome=InstallOutcome(True, 0, "done"))
    assert (second.action, second.status.state) == (Action.START, G.STARTING)
    assert second.status.install is not None
    assert second.status.install.result == "Succeeded"

    gs.status = second.status
    waiting = step(gs, RUNNING)
    assert (waiting.action, waiting.status.state) == (Action.NONE, G.STARTING)
    assert waiting.requeue_after == timedelta(seconds=1)

    ready = step(gs, RUNNING, ready=True)
    assert (ready.action, ready.status.state, ready.status.reason) == (
        Action.NONE,
        G.RUNNING,
        "Ready",
    )


def test_without_install_step_the_server_starts_directly(gameserver_doc: dict[str, Any]) -> None:
    result = step(server(gameserver_doc), has_install_step=False)
    assert (result.action, result.status.state) == (Action.START, G.STARTING)
    assert result.status.install is not None


def test_a_failed_install_waits_for_a_reinstall_request(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc, G.INSTALLING)
    failed = step(gs, install_outcome=InstallOutcome(False, 3, "boom"))
    assert (failed.action, failed.status.state) == (Action.NONE, G.INSTALL_FAILED)
    assert "exited with 3" in failed.status.message
    gs.status = failed.status
    assert step(gs).action is Action.NONE
    gs.spec.reinstall_request = "r1"
    retry = step(gs)
    assert (retry.action, retry.status.state) == (Action.INSTALL, G.INSTALLING)
    assert retry.status.last_reinstall_request == "r1"


def test_an_interrupted_install_runs_again(gameserver_doc: dict[str, Any]) -> None:
    result = step(server(gameserver_doc, G.INSTALLING))
    assert (result.action, result.status.state) == (Action.INSTALL, G.INSTALLING)


def test_reinstall_of_a_running_server_stops_it_first(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc, G.RUNNING)
    gs.spec.reinstall_request = "r2"
    first = step(gs, RUNNING)
    assert (first.action, first.status.state) == (Action.STOP, G.STOPPING)
    gs.status = first.status
    second = step(gs, exited(0))
    assert (second.action, second.status.state) == (Action.INSTALL, G.INSTALLING)


def test_crash_is_detected_and_restarted_with_backoff(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc, G.RUNNING, startedAt=(NOW - timedelta(minutes=5)).isoformat())
    crashed = step(gs, exited(2))
    assert (crashed.action, crashed.status.state) == (Action.NONE, G.CRASHED)
    assert crashed.status.restart_count == 1
    assert crashed.status.last_exit is not None
    assert crashed.status.last_exit.exit_code == 2
    assert crashed.requeue_after == timedelta(seconds=10)
    gs.status = crashed.status
    early = step(gs, exited(2), now=NOW + timedelta(seconds=4))
    assert early.action is Action.NONE
    assert early.requeue_after == timedelta(seconds=6)
    later = step(gs, exited(2), now=NOW + timedelta(seconds=10))
    assert (later.action, later.status.state) == (Action.START, G.STARTING)


def test_backoff_doubles_and_is_capped(gameserver_doc: dict[str, Any]) -> None:
    for count, delay in [(1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (20, 300)]:
        gs = server(gameserver_doc, G.CRASHED, restartCount=count, stateSince=NOW.isoformat())
        assert step(gs, exited()).requeue_after == timedelta(seconds=delay)


def test_a_long_run_resets_the_crash_count(gameserver_doc: dict[str, Any]) -> None:
    started = NOW - timedelta(hours=2)
    gs = server(gameserver_doc, G.RUNNING, restartCount=6, startedAt=started.isoformat())
    crashed = step(gs, exited(1, after=timedelta(hours=2)))
    assert crashed.status.restart_count == 1


def test_oom_kill_is_reported(gameserver_doc: dict[str, Any]) -> None:
    crashed = step(server(gameserver_doc, G.RUNNING), exited(137, oom=True))
    assert crashed.status.last_exit is not None
    assert crashed.status.last_exit.reason == "OOMKilled"
    assert "more memory than its limit" in crashed.status.message


def test_no_restart_when_the_policy_says_so(gameserver_doc: dict[str, Any]) -> None:
    gameserver_doc["spec"]["crashPolicy"] = {"restart": False}
    gs = server(gameserver_doc, G.CRASHED, stateSince=(NOW - timedelta(hours=1)).isoformat())
    assert step(gs, exited()).action is Action.NONE


def test_stop_then_stopped(gameserver_doc: dict[str, Any]) -> None:
    gameserver_doc["spec"]["power"] = {"state": "Stopped"}
    gs = server(gameserver_doc, G.RUNNING)
    first = step(gs, RUNNING)
    assert (first.action, first.status.state) == (Action.STOP, G.STOPPING)
    gs.status = first.status
    second = step(gs, exited(0))
    assert (second.action, second.status.state) == (Action.NONE, G.STOPPED)
    gs.status = second.status
    assert step(gs, exited(0)).action is Action.NONE


def test_restart_request_is_acted_on_once(gameserver_doc: dict[str, Any]) -> None:
    gameserver_doc["spec"]["power"] = {"state": "Running", "restartRequest": "req-1"}
    gs = server(gameserver_doc, G.RUNNING)
    first = step(gs, RUNNING)
    assert (first.action, first.status.state) == (Action.STOP, G.STOPPING)
    assert first.status.last_restart_request == "req-1"
    gs.status = first.status
    second = step(gs, exited(0))
    assert (second.action, second.status.state) == (Action.START, G.STARTING)
    gs.status = second.status
    third = step(gs, RUNNING, ready=True)
    assert (third.action, third.status.state) == (Action.NONE, G.RUNNING)
    gs.status = third.status
    assert step(gs, RUNNING).action is Action.NONE


def test_kill_request_kills_and_starts_again_without_backoff(
    gameserver_doc: dict[str, Any],
) -> None:
    gameserver_doc["spec"]["power"] = {"state": "Running", "killRequest": "k-1"}
    gs = server(gameserver_doc, G.RUNNING)
    first = step(gs, RUNNING)
    assert (first.action, first.status.state) == (Action.KILL, G.STOPPING)
    gs.status = first.status
    second = step(gs, exited(137))
    assert (second.action, second.status.state) == (Action.START, G.STARTING)
    assert second.status.restart_count == 0


def test_suspension_stops_and_refuses_power_requests(gameserver_doc: dict[str, Any]) -> None:
    gameserver_doc["spec"]["suspended"] = True
    gameserver_doc["spec"]["power"] = {"state": "Running", "restartRequest": "r"}
    gs = server(gameserver_doc, G.RUNNING)
    first = step(gs, RUNNING)
    assert (first.action, first.status.state) == (Action.STOP, G.SUSPENDED)
    assert "restart request refused" in first.status.message
    gs.status = first.status
    assert step(gs, exited(0)).action is Action.NONE
    gs.spec.suspended = False
    resumed = step(gs, exited(0))
    assert (resumed.action, resumed.status.state) == (Action.START, G.STARTING)


def test_missing_blueprint_waits_and_recovers(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc)
    waiting = step(gs, blueprint_found=False)
    assert (waiting.action, waiting.status.state, waiting.status.reason) == (
        Action.NONE,
        G.PENDING,
        "BlueprintNotFound",
    )
    gs.status = waiting.status
    assert step(gs).action is Action.INSTALL


def test_invalid_spec_is_an_error_naming_the_field_and_recovers(
    gameserver_doc: dict[str, Any],
) -> None:
    gs = server(gameserver_doc, G.STOPPED)
    broken = step(gs, problems=("spec.variables.X: must be an integer",))
    assert (broken.action, broken.status.state) == (Action.NONE, G.ERROR)
    assert broken.status.message == "spec.variables.X: must be an integer"
    gs.status = broken.status
    fixed = step(gs)
    assert (fixed.action, fixed.status.state) == (Action.START, G.STARTING)


def test_a_running_process_found_after_a_runtime_restart_is_adopted(
    gameserver_doc: dict[str, Any],
) -> None:
    adopted = step(server(gameserver_doc, G.STOPPED), RUNNING, ready=True)
    assert (adopted.action, adopted.status.state) == (Action.NONE, G.RUNNING)


def test_readiness_timeout_is_reported(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc, G.STARTING, stateSince=(NOW - timedelta(minutes=20)).isoformat())
    late = step(gs, RUNNING, readiness_timeout=timedelta(minutes=15))
    assert (late.status.state, late.status.reason) == (G.STARTING, "ReadinessTimeout")


def test_disk_quota_stops_and_holds_the_server(gameserver_doc: dict[str, Any]) -> None:
    gs = server(gameserver_doc, G.RUNNING)
    first = step(gs, RUNNING, over_disk_quota=True)
    assert (first.action, first.status.state, first.status.reason) == (
        Action.STOP,
        G.STOPPING,
        "DiskQuotaExceeded",
    )
    gs.status = first.status
    held = step(gs, exited(0), over_disk_quota=True)
    assert (held.action, held.status.state, held.status.reason) == (
        Action.NONE,
        G.STOPPED,
        "DiskQuotaExceeded",
    )
    assert "1Gi quota" in held.status.message
    assert held.requeue_after == timedelta(seconds=30)
    gs.status = held.status
    freed = step(gs, exited(0))
    assert (freed.action, freed.status.state) == (Action.START, G.STARTING)


# -- whole lives: a tiny simulated runtime drives compute_step through random changes ---------

CHANGES = st.sampled_from(
    [
        "run",
        "stop",
        "restart",
        "kill",
        "suspend",
        "unsuspend",
        "reinstall",
        "crash",
        "ready",
        "install-fails",
        "break",
        "fix",
        "lose-blueprint",
        "tick",
    ]
)
LIFE_SERVER: dict[str, Any] = {
    "kind": "GameServer",
    "metadata": {"name": "life", "namespace": "games", "generation": 1},
    "spec": {"blueprint": "toy", "ports": [{"name": "game", "port": 7777}]},
}


class SimulatedRuntime:
    """Carries out actions on an imaginary process, as a real runtime would."""

    def __init__(self) -> None:
        self.process = ABSENT
        self.now = NOW
        self.ready = False
        self.install_outcome: InstallOutcome | None = None
        self.install_fails = False

    def observe(self, **extra: Any) -> Observation:
        outcome, self.install_outcome = self.install_outcome, None
        return Observation(
            process=self.process, now=self.now, ready=self.ready, install_outcome=outcome, **extra
        )

    def carry_out(self, action: Action) -> None:
        if action is Action.START:
            self.process = ProcessStatus(ProcessPhase.RUNNING, started_at=self.now)
            self.ready = False
        elif action in {Action.STOP, Action.KILL} and self.process.phase is ProcessPhase.RUNNING:
            code = 0 if action is Action.STOP else 137
            self.process = ProcessStatus(
                ProcessPhase.EXITED,
                exit_code=code,
                started_at=self.process.started_at,
                finished_at=self.now,
            )
        elif action is Action.INSTALL:
            assert self.process.phase is not ProcessPhase.RUNNING, "install while running"
            self.install_outcome = InstallOutcome(not self.install_fails, 1, "log")


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(CHANGES, max_size=30))
def test_any_sequence_of_changes_takes_only_allowed_transitions(changes: list[str]) -> None:
    gs = GameServer.model_validate(copy.deepcopy(LIFE_SERVER))
    world = SimulatedRuntime()
    problems: tuple[str, ...] = ()
    blueprint_found = True
    full = False
    for number, change in enumerate(changes):
        spec = gs.spec
        if change in {"run", "stop"}:
            spec.power.state = "Running" if change == "run" else "Stopped"  # type: ignore[assignment]
        elif change in {"restart", "kill", "reinstall"}:
            request = f"{change}-{number}"
            if change == "restart":
                spec.power.restart_request = request
            elif change == "kill":
                spec.power.kill_request = request
            else:
                spec.reinstall_request = request
        elif change in {"suspend", "unsuspend"}:
            spec.suspended = change == "suspend"
        elif change == "crash" and world.process.phase is ProcessPhase.RUNNING:
            world.carry_out(Action.KILL)
        elif change == "ready":
            world.ready = True
        elif change == "install-fails":
            world.install_fails = not world.install_fails
        elif change in {"break", "fix"}:
            problems = ("spec.variables.X: bad",) if change == "break" else ()
        elif change == "lose-blueprint":
            blueprint_found = not blueprint_found
        elif change == "fill-disk":
            full = not full
        world.now += timedelta(hours=1)
        # Converge: a runtime repeats steps until there is nothing to do.
        for _ in range(12):
            decision = compute_step(
                gs,
                world.observe(
                    problems=problems, blueprint_found=blueprint_found, over_disk_quota=full
                ),
            )
            gs.status = decision.status
            world.carry_out(decision.action)
            if decision.action is Action.NONE:
                if decision.status.state is G.CRASHED and decision.requeue_after:
                    world.now += decision.requeue_after  # the back-off timer fires
                    continue
                break
        else:
            raise AssertionError(f"no convergence after {changes[: number + 1]}")
        state = gs.status.state
        running = world.process.phase is ProcessPhase.RUNNING
        assert not (state is G.RUNNING and not running), changes[: number + 1]
        if state in {G.SUSPENDED, G.STOPPED, G.INSTALLING, G.INSTALL_FAILED}:
            assert not running, (state, changes[: number + 1])
        if spec.suspended:
            assert state is G.SUSPENDED
            assert not running
        if full and blueprint_found and not problems:
            assert not running, changes[: number + 1]
        healthy = blueprint_found and not problems and not spec.suspended and not full
        if healthy and state is not G.INSTALL_FAILED:
            # An hour passed, so no back-off can still be holding the server down.
            wanted = spec.power.state == "Running"
            assert running == wanted, (state, changes[: number + 1])
            assert state in ({G.STARTING, G.RUNNING} if wanted else {G.STOPPED})
