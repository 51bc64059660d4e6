"""Schedules on a Docker node: due runs carry out their tasks on a real toy server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.runtime import ServerKey
from stellarstack.api.schedule import RunResult, Schedule, ScheduleStatus
from stellarstack.api.states import GameServerState as G
from stellarstack.api.states import ScheduleState
from stellarstack.nodeproxy.schedules import LABEL_SCHEDULE, ScheduleService
from support.node_agent import Node, converge, state_is, toy_server
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]


class Clock:
    """A clock the test moves; schedules read it, waits use real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 3, 59, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def schedule(name: str, tasks: list[dict[str, Any]], **spec: Any) -> Schedule:
    return Schedule.model_validate(
        {
            "kind": "Schedule",
            "metadata": {"name": name, "namespace": "agent"},
            "spec": {"gameServer": "sched", "cron": "0 4 * * *", "tasks": tasks, **spec},
        }
    )


async def run_once(node: Node, clock: Clock, service: ScheduleService, name: str) -> ScheduleStatus:
    await node.agent.reconcile_all()  # computes nextRunAt
    stored = node.store.get(Schedule, "agent", name)
    assert stored is not None
    assert stored.status is not None
    assert stored.status.next_run_at == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    clock.now = stored.status.next_run_at + timedelta(seconds=1)
    await node.agent.reconcile_all()  # starts the run
    for _ in range(120):  # the run's tasks need the agent loop (power, backups)
        await node.agent.reconcile_all()
        if not service._running:
            break
        await asyncio.sleep(0.5)
    await service.wait_idle()
    stored = node.store.get(Schedule, "agent", name)
    assert stored is not None
    assert stored.status is not None
    return stored.status


@pytest.fixture
async def scheduled(node_factory: Callable[[], Node]) -> tuple[Node, Clock, ScheduleService]:
    node = node_factory()
    clock = Clock()
    service = ScheduleService(node.store, node.runtime, node.agent.wake, clock=clock)
    node.agent.attach_schedules(service)
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("sched"))
    await converge(node, "sched", state_is(G.RUNNING))
    return node, clock, service


async def test_a_run_warns_restarts_and_backs_up_with_retention(scheduled: Any) -> None:
    node, clock, service = scheduled
    for old in range(3):  # older backups of the same schedule, completed earlier
        node.store.put(
            Backup.model_validate(
                {
                    "kind": "Backup",
                    "metadata": {
                        "name": f"old-{old}",
                        "namespace": "agent",
                        "labels": {LABEL_SCHEDULE: "nightly"},
                    },
                    "spec": {"gameServer": "sched"},
                }
            )
        )
    await node.agent.reconcile_all()
    node.store.put(
        schedule(
            "nightly",
            [
                {"action": "Command", "command": "say restarting now"},
                {"action": "Power", "power": "restart"},
                {"action": "Backup"},
            ],
            retention={"keepLast": 2},
        )
    )
    status = await run_once(node, clock, service, "nightly")
    assert status.last_result is RunResult.SUCCEEDED, status.history
    assert status.state is ScheduleState.IDLE
    assert status.next_run_at == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    assert [run.result for run in status.history] == [RunResult.SUCCEEDED]
    lines = await node.runtime.logs(ServerKey("agent", "sched"), tail=200)
    assert any("[say] restarting now" in line for line in lines)
    boots = node.settings.data_dir(ServerKey("agent", "sched")) / "boots"
    assert boots.read_text().strip() == "2"
    await node.agent.reconcile_all()  # prunes
    remaining = sorted(b.metadata.name or "" for b in node.store.of_kind(Backup, "agent"))
    # keepLast 2: the new backup and the newest of the older ones.
    assert len(remaining) == 2
    assert any(name.startswith("nightly-") for name in remaining)
    assert "old-2" in remaining


async def test_only_when_running_skips_a_stopped_server(scheduled: Any) -> None:
    node, clock, service = scheduled
    stopped = toy_server("sched")
    stopped.spec.power.state = "Stopped"  # type: ignore[assignment]
    node.store.put(stopped)
    await converge(node, "sched", state_is(G.STOPPED))
    node.store.put(
        schedule("guarded", [{"action": "Command", "command": "say hi"}], onlyWhenRunning=True)
    )
    status = await run_once(node, clock, service, "guarded")
    assert status.last_result is RunResult.SKIPPED
    assert "Stopped" in status.history[0].message


async def test_a_failed_task_stops_the_run_unless_told_to_continue(scheduled: Any) -> None:
    node, clock, service = scheduled
    stopped = toy_server("sched")
    stopped.spec.power.state = "Stopped"  # type: ignore[assignment]
    node.store.put(stopped)
    await converge(node, "sched", state_is(G.STOPPED))
    node.store.put(
        schedule(
            "fragile",
            [
                {
                    "action": "Command",
                    "command": "say nobody hears this",
                    "continueOnFailure": True,
                },
                {"action": "Power", "power": "start"},
                {"action": "Command", "command": "say now it runs"},
            ],
        )
    )
    status = await run_once(node, clock, service, "fragile")
    assert status.last_result is RunResult.FAILED
    assert status.history[0].message.startswith("tasks[0] (Command)")
    lines = await node.runtime.logs(ServerKey("agent", "sched"), tail=200)
    assert any("[say] now it runs" in line for line in lines)


async def test_disabled_schedules_do_not_run(scheduled: Any) -> None:
    node, _, _ = scheduled
    node.store.put(schedule("off", [{"action": "Command", "command": "say x"}], enabled=False))
    await node.agent.reconcile_all()
    stored = node.store.get(Schedule, "agent", "off")
    assert stored is not None
    assert stored.status is not None
    assert (stored.status.state, stored.status.next_run_at) == (ScheduleState.DISABLED, None)
