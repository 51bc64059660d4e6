"""The Kubernetes runtime's pure parts: what a Pod's status means, stored Pods, stats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ProcessPhase
from stellarstack.api.workload import build_workload
from stellarstack.operator import builders
from stellarstack.operator.runtimeplan import (
    ANNOTATION_SPEC_HASH,
    DISK_UNAVAILABLE,
    NETWORK_UNAVAILABLE,
    compute_runtime_status,
    compute_stats,
    container_started,
    desired_workload_config_map,
    install_exit_code,
    memory_limit,
    pod_hash,
    runnable_pod,
    spec_hash,
    stored_pod,
    waiting_problem,
    with_spec_hash,
    without_owner,
)
from support.operator_docs import BLUEPRINT, GAMESERVER


def pod(state: dict[str, Any] | None, phase: str = "Running") -> dict[str, Any]:
    statuses = [] if state is None else [{"name": "game", "state": state}]
    return {
        "metadata": {"name": "mc"},
        "spec": {
            "containers": [{"name": "game", "resources": {"limits": {"memory": "134217728"}}}]
        },
        "status": {"phase": phase, "containerStatuses": statuses},
    }


RUNNING = {"running": {"startedAt": "2026-01-02T03:04:05Z"}}


@pytest.mark.parametrize(
    ("observed", "stored", "phase", "exit_code", "oom"),
    [
        (None, False, ProcessPhase.ABSENT, None, False),
        (None, True, ProcessPhase.CREATED, None, False),
        # Scheduled, volume binding, image: not running yet (the operator would say RUNNING).
        (pod(None, "Pending"), True, ProcessPhase.CREATED, None, False),
        (
            pod({"waiting": {"reason": "ContainerCreating"}}, "Pending"),
            True,
            ProcessPhase.CREATED,
            None,
            False,
        ),
        (pod(RUNNING), True, ProcessPhase.RUNNING, None, False),
        (pod({"terminated": {"exitCode": 0}}, "Succeeded"), True, ProcessPhase.EXITED, 0, False),
        (pod({"terminated": {"exitCode": 137}}, "Failed"), True, ProcessPhase.EXITED, 137, False),
        (
            pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, "Failed"),
            True,
            ProcessPhase.EXITED,
            137,
            True,
        ),
        # Ended before its container ran (evicted, deadline while pending): an exit, no code.
        (pod(None, "Failed"), True, ProcessPhase.EXITED, None, False),
    ],
)
def test_runtime_status(
    observed: dict[str, Any] | None,
    stored: bool,
    phase: ProcessPhase,
    exit_code: int | None,
    oom: bool,
) -> None:
    status = compute_runtime_status(observed, workload_stored=stored)
    assert (status.phase, status.exit_code, status.oom_killed) == (phase, exit_code, oom)


def test_running_status_carries_its_start_time() -> None:
    started = compute_runtime_status(pod(RUNNING), workload_stored=True).started_at
    assert started is not None
    assert started.isoformat() == "2026-01-02T03:04:05+00:00"


@pytest.mark.parametrize(
    ("observed", "started"),
    [
        (None, False),
        (pod(None, "Pending"), False),
        (pod(RUNNING), True),
        (pod({"terminated": {"exitCode": 1}}, "Failed"), True),
    ],
)
def test_container_started(observed: dict[str, Any] | None, started: bool) -> None:
    assert container_started(observed) is started


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("ContainerCreating", False),
        ("PodInitializing", False),
        ("ErrImageNeverPull", True),
        ("ImagePullBackOff", True),
        ("CreateContainerConfigError", True),
    ],
)
def test_waiting_problem(reason: str, problem: bool) -> None:
    observed = pod({"waiting": {"reason": reason, "message": "why"}}, "Pending")
    assert (waiting_problem(observed) is not None) is problem


def _workload_and_pod() -> tuple[Any, dict[str, Any]]:
    gameserver = GameServer.model_validate(GAMESERVER)
    workload = build_workload(gameserver, Blueprint.model_validate(BLUEPRINT))
    return workload, builders.desired_pod(workload, gameserver)


def test_spec_hash_covers_the_pod_but_not_itself() -> None:
    _, desired = _workload_and_pod()
    stamped = with_spec_hash(desired)
    assert pod_hash(stamped) == spec_hash(desired) == spec_hash(stamped)
    assert ANNOTATION_SPEC_HASH not in (desired["metadata"].get("annotations") or {})
    changed = json.loads(json.dumps(desired))
    changed["spec"]["containers"][0]["env"].append({"name": "EXTRA", "value": "1"})
    assert spec_hash(changed) != spec_hash(desired)


def test_the_stored_pod_is_the_operators_pod() -> None:
    workload, desired = _workload_and_pod()
    stamped = with_spec_hash(desired)
    config_map = desired_workload_config_map(workload, stamped)
    assert config_map["metadata"]["name"] == f"{workload.name}-workload"
    assert config_map["metadata"]["ownerReferences"] == desired["metadata"]["ownerReferences"]
    assert stored_pod(config_map) == stamped
    assert stored_pod({"data": {}}) is None


def test_without_owner_drops_only_the_owner() -> None:
    _, desired = _workload_and_pod()
    bare = without_owner(desired)
    assert "ownerReferences" not in bare["metadata"]
    assert "ownerReferences" in desired["metadata"]  # the input is not changed
    assert bare["spec"] == desired["spec"]


def test_runnable_pod_drops_server_set_fields() -> None:
    _, desired = _workload_and_pod()
    observed = json.loads(json.dumps(desired))
    observed["metadata"].update(
        uid="u", resourceVersion="7", creationTimestamp="t", finalizers=["x"]
    )
    observed["spec"]["nodeName"] = "node-a"
    observed["status"] = {"phase": "Failed"}
    assert runnable_pod(observed) == desired


def test_install_exit_code() -> None:
    assert install_exit_code([]) is None
    assert install_exit_code([pod(RUNNING)]) is None
    assert install_exit_code([pod({"terminated": {"exitCode": 3}}, "Failed")]) == 3


def test_memory_limit_from_the_pod_spec() -> None:
    assert memory_limit(pod(RUNNING)) == 128 * 2**20
    assert memory_limit({"spec": {"containers": [{"name": "other"}]}}) is None


def test_stats_from_a_metrics_sample() -> None:
    sample = {
        "containers": [
            {"name": "game", "usage": {"cpu": "250000000n", "memory": "51200Ki"}},
            {"name": "files", "usage": {"cpu": "1", "memory": "1Gi"}},
        ]
    }
    stats = compute_stats(pod(RUNNING), sample, metrics_unavailable=None)
    assert stats.cpu_percent == pytest.approx(25.0)
    assert stats.memory_bytes == 51200 * 1024
    assert stats.memory_limit_bytes == 128 * 2**20
    assert (stats.network_rx_bytes, stats.disk_bytes) == (None, None)
    assert stats.unavailable == {"network": NETWORK_UNAVAILABLE, "disk": DISK_UNAVAILABLE}


@pytest.mark.parametrize(
    ("observed", "sample", "why", "cpu_reason"),
    [
        (pod(RUNNING), None, "no metrics API", "no metrics API"),
        (pod(RUNNING), None, None, "no metrics sample for this Pod yet"),
        (
            pod(RUNNING),
            {"containers": [{"name": "game", "usage": {}}]},
            None,
            "the metrics sample has no CPU figure",
        ),
        (pod({"terminated": {"exitCode": 0}}, "Succeeded"), None, "no metrics API", "not running"),
    ],
)
def test_stats_name_every_missing_figure(
    observed: dict[str, Any], sample: dict[str, Any] | None, why: str | None, cpu_reason: str
) -> None:
    stats = compute_stats(observed, sample, metrics_unavailable=why)
    assert stats.cpu_percent is None
    assert stats.unavailable["cpu"] == cpu_reason
    assert set(stats.unavailable) >= {"cpu", "network", "disk"}
    assert stats.memory_limit_bytes == 128 * 2**20
