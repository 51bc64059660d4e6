"""What the operator reads from Kubernetes objects: process, install outcome, endpoints."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer, GameServerStatus, InstallResult
from stellarstack.api.runtime import ProcessPhase
from stellarstack.api.states import GameServerState
from stellarstack.api.workload import build_workload
from stellarstack.operator.compute import (
    compute_blueprint_status,
    compute_conditions,
    compute_endpoints,
    compute_install_outcome,
    compute_process,
    console_ready,
    waiting_reason,
)
from support.operator_docs import BLUEPRINT, GAMESERVER


def pod(state: dict[str, Any] | None, phase: str = "Running") -> dict[str, Any]:
    statuses = [] if state is None else [{"name": "game", "state": state}]
    return {
        "spec": {"nodeName": "node-a"},
        "status": {"phase": phase, "hostIP": "10.0.0.5", "containerStatuses": statuses},
    }


@pytest.mark.parametrize(
    ("observed", "phase", "exit_code"),
    [
        (None, ProcessPhase.ABSENT, None),
        (pod(None, "Pending"), ProcessPhase.RUNNING, None),
        (pod({"waiting": {"reason": "ContainerCreating"}}, "Pending"), ProcessPhase.RUNNING, None),
        (pod({"running": {"startedAt": "2026-01-01T00:00:00Z"}}), ProcessPhase.RUNNING, None),
        (pod({"terminated": {"exitCode": 0}}, "Succeeded"), ProcessPhase.EXITED, 0),
        (pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, "Failed"), "oom", 137),
        (pod(None, "Failed"), ProcessPhase.EXITED, None),
    ],
)
def test_process_from_pod(observed: Any, phase: Any, exit_code: int | None) -> None:
    process = compute_process(observed)
    if phase == "oom":
        assert process.oom_killed
        phase = ProcessPhase.EXITED
    assert process.phase is phase
    assert process.exit_code == exit_code


def test_started_at_is_parsed() -> None:
    process = compute_process(pod({"running": {"startedAt": "2026-01-01T00:00:00Z"}}))
    assert process.started_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_waiting_reason_names_what_blocks_the_start() -> None:
    stuck = pod({"waiting": {"reason": "ErrImageNeverPull", "message": "no image"}}, "Pending")
    assert waiting_reason(stuck) == "ErrImageNeverPull: no image"
    assert waiting_reason(pod({"waiting": {"reason": "ContainerCreating"}}, "Pending")) is None
    unschedulable = pod(None, "Pending")
    unschedulable["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 node(s) didn't have free ports.",
        }
    ]
    assert waiting_reason(unschedulable) == (
        "Unschedulable: 0/1 nodes are available: 1 node(s) didn't have free ports."
    )


def test_waiting_reason_names_a_blocked_init_container() -> None:
    initializing = pod({"waiting": {"reason": "PodInitializing"}}, "Pending")
    assert waiting_reason(initializing) is None
    initializing["status"]["initContainerStatuses"] = [
        {"name": "config-files", "state": {"waiting": {"reason": "PodInitializing"}}}
    ]
    assert waiting_reason(initializing) is None
    initializing["status"]["initContainerStatuses"] = [
        {"name": "config-files", "state": {"running": {}}}
    ]
    assert waiting_reason(initializing) is None
    initializing["status"]["initContainerStatuses"] = [
        {
            "name": "config-files",
            "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "no image"}},
        }
    ]
    assert (
        waiting_reason(initializing) == "init container config-files: ErrImageNeverPull: no image"
    )


@pytest.mark.parametrize(
    ("status", "succeeded"),
    [
        ({}, None),
        ({"active": 1}, None),
        ({"succeeded": 1}, True),
        ({"failed": 1}, False),
        (
            {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
            False,
        ),
    ],
)
def test_install_outcome_from_job(status: dict[str, Any], succeeded: bool | None) -> None:
    outcome = compute_install_outcome({"status": status}, "log")
    if succeeded is None:
        assert outcome is None
    else:
        assert outcome is not None
        assert outcome.succeeded is succeeded


def test_console_readiness_plain_and_regex() -> None:
    workload = _workload()
    assert console_ready(["booting", "ready name=x tcp=7777"], workload)
    assert not console_ready(["booting"], workload)


def _workload(**spec: Any) -> Any:
    doc = copy.deepcopy(GAMESERVER)
    doc["spec"].update(spec)
    return build_workload(GameServer.model_validate(doc), Blueprint.model_validate(BLUEPRINT))


def test_hostport_endpoints_are_the_node_and_host_ports() -> None:
    address, ports = compute_endpoints(_workload(), pod({"running": {}}), [])
    assert address == "10.0.0.5"
    assert [(p.name, p.protocol, p.port, p.container_port) for p in ports] == [
        ("status", "TCP", 30777, 7777),
        ("query", "UDP", 7778, 7778),
    ]


def test_nodeport_endpoints_come_from_the_service() -> None:
    workload = _workload(exposure={"type": "NodePort"})
    service = {
        "spec": {
            "clusterIP": "10.96.0.9",
            "ports": [
                {"protocol": "TCP", "port": 7777, "targetPort": 7777, "nodePort": 31001},
                {"protocol": "UDP", "port": 7778, "targetPort": 7778, "nodePort": 31002},
            ],
        }
    }
    address, ports = compute_endpoints(workload, pod({"running": {}}), [service])
    assert address == "10.0.0.5"
    assert [p.port for p in ports] == [31001, 31002]
    address, ports = compute_endpoints(
        _workload(exposure={"type": "ClusterIP"}), pod({"running": {}}), [service]
    )
    assert address == "10.96.0.9"
    assert [p.port for p in ports] == [7777, 7778]


def test_load_balancer_without_ingress_has_no_address_yet() -> None:
    workload = _workload(exposure={"type": "LoadBalancer"})
    service = {"spec": {"ports": [{"protocol": "TCP", "port": 7777, "targetPort": 7777}]}}
    assert compute_endpoints(workload, pod({"running": {}}), [service]) == (None, [])
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    address, ports = compute_endpoints(workload, pod({"running": {}}), [service])
    assert address == "203.0.113.7"
    assert [p.port for p in ports] == [7777]


def test_blueprint_status_ready_or_invalid_with_every_problem() -> None:
    ok = {**copy.deepcopy(BLUEPRINT), "metadata": {"name": "toy", "generation": 3}}
    assert compute_blueprint_status(ok) == {
        "phase": "Ready",
        "problems": [],
        "observedGeneration": 3,
    }
    bad = copy.deepcopy(ok)
    bad["spec"]["startupCommands"] = [{"name": "x", "command": "run {{NOPE}}"}]
    bad["spec"]["images"] = []
    status = compute_blueprint_status(bad)
    assert status["phase"] == "Invalid"
    assert any(p.startswith("spec.images") for p in status["problems"]), status


def test_conditions_follow_the_status_and_keep_transition_times() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    status = GameServerStatus(state=GameServerState.RUNNING)
    status.install = InstallResult(result="Succeeded")
    first = compute_conditions(status, blueprint_found=True, problems=(), now=now)
    assert [(c.type, c.status) for c in first] == [
        ("BlueprintReady", "True"),
        ("Installed", "True"),
        ("Ready", "True"),
    ]
    status.conditions = first
    status.state = GameServerState.STOPPED
    second = compute_conditions(status, blueprint_found=True, problems=(), now=later)
    by_type = {c.type: c for c in second}
    assert by_type["Installed"].last_transition_time == now
    assert by_type["Ready"].status == "False"
    assert by_type["Ready"].reason == "Stopped"
    assert by_type["Ready"].last_transition_time == later
    missing = compute_conditions(status, blueprint_found=False, problems=(), now=later)
    assert missing[0].reason == "BlueprintNotFound"
