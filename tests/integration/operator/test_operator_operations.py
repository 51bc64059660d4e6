"""`stellarstack operator` as a real process: Prometheus metrics, JSON logs and peering.

GameServers here are Stopped with a Blueprint that has no install step, so no Pod runs: what is
tested is the operator's bookkeeping, not the game.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.kube import Kube
from support.operator_cluster import (
    GROUP,
    VERSION,
    GameServers,
    OperatorProcess,
    delete_all_gameservers,
)

pytestmark = [pytest.mark.kube, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
CHART_CRDS = REPO / "charts" / "stellarstack" / "crds"
RECONCILES = "stellarstack_operator_reconcile_duration_seconds_count"


@pytest.fixture
def stopped_blueprint(kube: Kube, operator_crds: list[str]) -> Iterator[str]:
    """A Blueprint without an install step: a Stopped GameServer of it never needs a Pod."""
    name = f"ops-{secrets.token_hex(3)}"
    kube.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "blueprints",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Blueprint",
            "metadata": {"name": name},
            "spec": {
                "displayName": "Operations",
                "images": [{"name": "Toy", "image": "localhost/stellarstack/toy:1"}],
                "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
                "stop": {"type": "Signal"},
            },
        },
    )
    yield name
    try:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def operators(kube: Kube, kube_namespace: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts operator processes watching the test's namespace; all stopped at the end, after
    their GameServers are gone (their finalizers need an operator)."""
    started: list[OperatorProcess] = []

    def start(*args: str) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        started.append(OperatorProcess(kube, log, "-n", kube_namespace, *args))
        return started[-1]

    yield start
    try:
        if any(p.process.poll() is None for p in started):
            delete_all_gameservers(kube, kube_namespace)
    finally:
        codes = [p.stop() for p in started]
    assert codes == [0] * len(started), [p.output()[-2000:] for p in started]


def stopped_gameserver(name: str, blueprint: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameServer",
        "metadata": {"name": name},
        "spec": {
            "blueprint": blueprint,
            "power": {"state": "Stopped"},
            "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi"},
        },
    }


def test_metrics_follow_a_gameserver_and_logs_are_json(
    kube: Kube,
    kube_namespace: str,
    stopped_blueprint: str,
    operators: Callable[..., OperatorProcess],
) -> None:
    operator = operators("--standalone", "--log-format", "json")
    gameservers = GameServers(kube, kube_namespace)
    assert operator.value(RECONCILES, kind="GameServer", outcome="success") == 0
    assert operator.managed() == 0

    gameservers.create(stopped_gameserver("metered", stopped_blueprint))
    gameservers.wait_state("metered", "Stopped", timeout=60)
    kube.wait_for("gauge Stopped = 1", lambda: operator.in_state("Stopped") == 1, 30)
    assert operator.value(RECONCILES, kind="GameServer", outcome="success") >= 1
    assert operator.managed() == 1
    assert operator.value("stellarstack_operator_api_requests_total", client="kopf", method="PATCH")
    assert operator.value(
        "stellarstack_operator_api_requests_total", client="kubernetes", method="GET"
    )

    # A status change moves it from one state to the other, never counted twice.
    gameservers.patch_spec("metered", {"suspended": True})
    gameservers.wait_state("metered", "Suspended", timeout=60)
    kube.wait_for("gauge Suspended = 1", lambda: operator.in_state("Suspended") == 1, 30)
    assert operator.in_state("Stopped") == 0
    assert operator.managed() == 1

    gameservers.delete("metered")
    gameservers.wait_gone("metered", timeout=60)
    kube.wait_for("nothing counted", lambda: operator.managed() == 0, 30)
    assert operator.value("stellarstack_operator_errors_total", kind="GameServer") == 0

    lines = [line for line in operator.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    about = [r for r in records if (r.get("object") or {}).get("name") == "metered"]
    assert about, lines[-20:]
    assert all(r["object"]["namespace"] == kube_namespace for r in about)


def test_two_peering_operators_do_not_both_act(
    kube: Kube,
    kube_namespace: str,
    stopped_blueprint: str,
    operators: Callable[..., OperatorProcess],
) -> None:
    kube.install_crds(CHART_CRDS / "kopfpeerings.kopf.dev.yaml")
    peering = f"ops-{secrets.token_hex(3)}"
    kube.custom.create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        kube_namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": peering}},
    )
    leader = operators("--peering", peering, "--priority", "200")
    standby = operators("--peering", peering, "--priority", "100")

    def peers() -> int:
        found = kube.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", kube_namespace, "kopfpeerings", peering
        )
        return len(found.get("status") or {})

    # Both announced themselves; the standby (it starts paused) stays paused.
    kube.wait_for("both operators in the peering object", lambda: peers() == 2, 60)
    gameservers = GameServers(kube, kube_namespace)

    gameservers.create(stopped_gameserver("first", stopped_blueprint))
    gameservers.wait_state("first", "Stopped", timeout=60)
    kube.wait_for("the leader counts it", lambda: leader.in_state("Stopped") == 1, 30)
    assert leader.value(RECONCILES, kind="GameServer", outcome="success") >= 1
    assert standby.value(RECONCILES, kind="GameServer", outcome="success") == 0
    assert standby.managed() == 0
    assert "Resuming operations" not in standby.output()

    # The leader leaves (removing itself from the peering object): the standby takes over.
    assert leader.stop() == 0
    kube.wait_for("the standby resumes", lambda: "Resuming operations" in standby.output(), 60)
    gameservers.create(stopped_gameserver("second", stopped_blueprint))
    gameservers.wait_state("second", "Stopped", timeout=60)
    kube.wait_for("the standby counts both", lambda: standby.in_state("Stopped") == 2, 60)
    assert standby.value(RECONCILES, kind="GameServer", outcome="success") >= 2
