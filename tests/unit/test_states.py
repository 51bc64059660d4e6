"""Every edge of every state machine, and every non-edge refused."""

from __future__ import annotations

import inspect
from enum import StrEnum
from typing import Any

import pytest

from stellarstack.api.states import (
    BACKUP_MACHINE,
    BLUEPRINT_MACHINE,
    GAMESERVER_MACHINE,
    SCHEDULE_MACHINE,
    BackupEvent,
    BackupPhase,
    BlueprintEvent,
    BlueprintPhase,
    GameServerEvent,
    GameServerState,
    InvalidTransitionError,
    ScheduleEvent,
    ScheduleState,
    StateMachine,
)

G, GE = GameServerState, GameServerEvent

# The GameServer table spelled out once more, independently of the implementation, so that an
# accidental edit of the table fails here.
GAMESERVER_EDGES = {
    (G.PENDING, GE.INSTALL_STARTED): G.INSTALLING,
    (G.PENDING, GE.INSTALL_SUCCEEDED): G.STOPPED,
    (G.PENDING, GE.START): G.STARTING,
    (G.PENDING, GE.EXITED): G.STOPPED,
    (G.PENDING, GE.RESTORE_STARTED): G.RESTORING,
    (G.INSTALLING, GE.INSTALL_SUCCEEDED): G.STOPPED,
    (G.INSTALLING, GE.INSTALL_FAILED): G.INSTALL_FAILED,
    (G.INSTALL_FAILED, GE.INSTALL_STARTED): G.INSTALLING,
    (G.STARTING, GE.READY): G.RUNNING,
    (G.STARTING, GE.STOP): G.STOPPING,
    (G.STARTING, GE.EXITED): G.STOPPED,
    (G.STARTING, GE.CRASHED): G.CRASHED,
    (G.RUNNING, GE.STOP): G.STOPPING,
    (G.RUNNING, GE.EXITED): G.STOPPED,
    (G.RUNNING, GE.CRASHED): G.CRASHED,
    (G.STOPPING, GE.EXITED): G.STOPPED,
    (G.STOPPING, GE.CRASHED): G.STOPPED,
    (G.STOPPED, GE.START): G.STARTING,
    (G.STOPPED, GE.INSTALL_STARTED): G.INSTALLING,
    (G.STOPPED, GE.RESTORE_STARTED): G.RESTORING,
    (G.CRASHED, GE.START): G.STARTING,
    (G.CRASHED, GE.EXITED): G.STOPPED,
    (G.CRASHED, GE.INSTALL_STARTED): G.INSTALLING,
    (G.CRASHED, GE.RESTORE_STARTED): G.RESTORING,
    (G.SUSPENDED, GE.FAILED): G.ERROR,
    (G.SUSPENDED, GE.UNSUSPEND): G.STOPPED,
    (G.RESTORING, GE.FAILED): G.ERROR,
    (G.RESTORING, GE.SUSPEND): G.SUSPENDED,
    (G.RESTORING, GE.RESTORE_FINISHED): G.STOPPED,
    (G.ERROR, GE.RECOVERED): G.PENDING,
    (G.ERROR, GE.SUSPEND): G.SUSPENDED,
    (G.ERROR, GE.WAITING): G.PENDING,
}
for _state in (
    G.PENDING,
    G.INSTALLING,
    G.INSTALL_FAILED,
    G.STARTING,
    G.RUNNING,
    G.STOPPING,
    G.STOPPED,
    G.CRASHED,
):
    GAMESERVER_EDGES[(_state, GE.FAILED)] = G.ERROR
    GAMESERVER_EDGES[(_state, GE.SUSPEND)] = G.SUSPENDED
    GAMESERVER_EDGES[(_state, GE.WAITING)] = G.PENDING

BP, BE = BlueprintPhase, BlueprintEvent
BLUEPRINT_EDGES = {
    (phase, event): target
    for phase in BP
    for event, target in ((BE.ACCEPTED, BP.READY), (BE.REJECTED, BP.INVALID))
}
B, BKE = BackupPhase, BackupEvent
BACKUP_EDGES = {
    (B.PENDING, BKE.STARTED): B.RUNNING,
    (B.PENDING, BKE.FAILED): B.FAILED,
    (B.RUNNING, BKE.SUCCEEDED): B.COMPLETED,
    (B.RUNNING, BKE.FAILED): B.FAILED,
    (B.COMPLETED, BKE.RESTORE_STARTED): B.RESTORING,
    (B.RESTORING, BKE.RESTORE_FINISHED): B.COMPLETED,
}
S, SE = ScheduleState, ScheduleEvent
SCHEDULE_EDGES = {
    (S.IDLE, SE.TRIGGERED): S.RUNNING,
    (S.IDLE, SE.DISABLED): S.DISABLED,
    (S.RUNNING, SE.FINISHED): S.IDLE,
    (S.DISABLED, SE.ENABLED): S.IDLE,
}

MACHINES: list[tuple[str, StateMachine[Any, Any], type[StrEnum], type[StrEnum], dict[Any, Any]]] = [
    ("gameserver", GAMESERVER_MACHINE, GameServerState, GameServerEvent, GAMESERVER_EDGES),
    ("blueprint", BLUEPRINT_MACHINE, BlueprintPhase, BlueprintEvent, BLUEPRINT_EDGES),
    ("backup", BACKUP_MACHINE, BackupPhase, BackupEvent, BACKUP_EDGES),
    ("schedule", SCHEDULE_MACHINE, ScheduleState, ScheduleEvent, SCHEDULE_EDGES),
]


def _all_pairs() -> list[Any]:
    cases = []
    for label, machine, states, events, edges in MACHINES:
        for state in states:
            for event in events:
                cases.append(
                    pytest.param(
                        machine,
                        state,
                        event,
                        edges.get((state, event)),
                        id=f"{label}-{state.value}-{event.value}",
                    )
                )
    return cases


@pytest.mark.parametrize(("machine", "state", "event", "expected"), _all_pairs())
def test_transition(
    machine: StateMachine[Any, Any], state: StrEnum, event: StrEnum, expected: StrEnum | None
) -> None:
    if expected is None:
        assert not machine.allows(state, event)
        with pytest.raises(InvalidTransitionError, match=f"{event.value}.*{state.value}"):
            machine.next_state(state, event)
    else:
        assert machine.allows(state, event)
        assert machine.next_state(state, event) is expected


@pytest.mark.parametrize(
    ("label", "machine", "states", "events", "edges"), MACHINES, ids=[m[0] for m in MACHINES]
)
def test_table_has_exactly_the_documented_edges(
    label: str,
    machine: StateMachine[Any, Any],
    states: type[StrEnum],
    events: type[StrEnum],
    edges: dict[Any, Any],
) -> None:
    assert {(s, e): t for s, e, t in machine.edges()} == edges


@pytest.mark.parametrize(
    ("label", "machine", "states", "events", "edges"), MACHINES, ids=[m[0] for m in MACHINES]
)
def test_every_state_is_documented_and_reachable(
    label: str,
    machine: StateMachine[Any, Any],
    states: type[StrEnum],
    events: type[StrEnum],
    edges: dict[Any, Any],
) -> None:
    reachable = {machine.initial}
    frontier = [machine.initial]
    while frontier:
        state = frontier.pop()
        for (source, _), target in edges.items():
            if source == state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(states)
    # Every state carries its own one-line doc comment (the enum docstring is not enough).
    source = inspect.getsource(states)
    for state in states:
        assert f'{state.name} = "{state.value}"\n    """' in source, f"{state} is undocumented"
