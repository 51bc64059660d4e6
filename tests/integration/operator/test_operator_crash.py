"""A fleet created and deleted at once while the operator process is `kill -9`ed and restarted.

Every reconcile must be safe to repeat after a crash at any line: 20 GameServers are created at
once, the operator is killed with SIGKILL while it is creating their children and restarted;
every server then runs with exactly one game Pod, one data volume and one Service, and nothing
else of ours exists in the namespace. Then all 20 are deleted at once, the operator is killed
again mid-deletion and restarted; every server goes and leaves nothing behind. The toys ask for
20m CPU each (plus their install Job's Pod, one at a time per server), so the fleet fits a
2-CPU test node beside other tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from stellarstack.api.constants import LABEL_COMPONENT, LABEL_GAMESERVER, LABEL_MANAGED_BY
from support.kube import Kube
from support.operator_cluster import (
    GROUP,
    VERSION,
    GameServers,
    OperatorProcess,
    delete_all_gameservers,
)

pytestmark = [pytest.mark.kube, pytest.mark.slow, pytest.mark.timeout(1200)]

FLEET = 20
RESOURCES = {"cpu": "20m", "memory": "64Mi", "disk": "100Mi", "pids": 64}
RUNNING_TIMEOUT = 600.0
GONE_TIMEOUT = 300.0
OURS = f"{LABEL_MANAGED_BY}=stellarstack"


def fleet_member(name: str, blueprint: str) -> dict[str, Any]:
    """A toy behind a ClusterIP Service (no host ports: 20 of them would be 20 ports taken)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameServer",
        "metadata": {"name": name},
        "spec": {
            "blueprint": blueprint,
            "variables": {"TOY_NAME": name},
            "resources": RESOURCES,
            "exposure": {"type": "ClusterIP"},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP"},
                {"name": "query", "port": 7778, "protocol": "UDP"},
            ],
        },
    }


class Children:
    """Everything of ours in the namespace, by kind, as (GameServer label, component, owner)."""

    KINDS = ("Pod", "PersistentVolumeClaim", "Service", "Job", "ConfigMap")

    def __init__(self, kube: Kube, namespace: str) -> None:
        core, batch = kube.core, client.BatchV1Api(kube.api_client)
        listed = {
            "Pod": core.list_namespaced_pod(namespace, label_selector=OURS).items,
            "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim(
                namespace, label_selector=OURS
            ).items,
            "Service": core.list_namespaced_service(namespace, label_selector=OURS).items,
            "Job": batch.list_namespaced_job(namespace, label_selector=OURS).items,
            "ConfigMap": core.list_namespaced_config_map(namespace, label_selector=OURS).items,
        }
        self.objects: dict[str, list[Any]] = listed

    def of(self, kind: str, component: str | None = None) -> list[Any]:
        return [
            o
            for o in self.objects[kind]
            if component is None or (o.metadata.labels or {}).get(LABEL_COMPONENT) == component
        ]

    def count(self, kind: str, component: str | None = None) -> int:
        return len(self.of(kind, component))

    def describe(self) -> str:
        return "; ".join(
            f"{kind}: {sorted(o.metadata.name for o in objects)}"
            for kind, objects in self.objects.items()
            if objects
        )


def assert_one_of_each_and_no_orphans(kube: Kube, namespace: str, names: list[str]) -> None:
    gameservers = GameServers(kube, namespace)
    uids = {name: gameservers.get(name)["metadata"]["uid"] for name in names}
    found = Children(kube, namespace)
    for kind, component in (
        ("Pod", "server"),
        ("PersistentVolumeClaim", "data"),
        ("Service", "service"),
    ):
        per_server = Counter(
            (o.metadata.labels or {}).get(LABEL_GAMESERVER) for o in found.of(kind, component)
        )
        assert per_server == Counter(names), (kind, per_server, found.describe())
    for kind in Children.KINDS:
        for obj in found.objects[kind]:
            owner = (obj.metadata.labels or {}).get(LABEL_GAMESERVER)
            assert owner in uids, f"{kind} {obj.metadata.name} of no GameServer here"
            owners = [ref.uid for ref in obj.metadata.owner_references or []]
            # Owned by its GameServer as it exists now (not by an earlier object of that name).
            assert owners == [uids[owner]], f"{kind} {obj.metadata.name} owned by {owners}"
    # Between runs a server's install Job is gone: what remains is the game and its volume.
    jobs = [o.metadata.name for o in found.of("Job")]
    assert not jobs, jobs


@pytest.fixture
def operator_processes(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> Iterator[Callable[[], OperatorProcess]]:
    """Starts `stellarstack operator` processes for the namespace, one after another; at the
    end the last one (started if none runs) deletes what is left, then stops."""
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        started.append(OperatorProcess(kube, log, "--standalone", "-n", kube_namespace))
        return started[-1]

    yield start
    try:
        if remaining_gameservers(kube, kube_namespace):
            # Their finalizers need an operator.
            if not started or started[-1].process.poll() is not None:
                start()
            delete_all_gameservers(kube, kube_namespace)
    finally:
        for process in started:
            if process.process.poll() is None:
                process.stop()


def remaining_gameservers(kube: Kube, namespace: str) -> list[str]:
    found = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "gameservers")
    return [item["metadata"]["name"] for item in found.get("items", [])]


def test_a_killed_operator_leaves_one_child_of_each_and_no_orphans(
    kube: Kube,
    kube_namespace: str,
    operator_crds: list[str],
    blueprint: Callable[..., str],
    operator_processes: Callable[[], OperatorProcess],
) -> None:
    bp = blueprint()
    gameservers = GameServers(kube, kube_namespace)
    names = [f"fleet-{i:02d}" for i in range(FLEET)]

    first = operator_processes()
    with ThreadPoolExecutor(max_workers=FLEET) as pool:
        list(pool.map(lambda name: gameservers.create(fleet_member(name, bp)), names))

    # Killed while creating: some children exist, and not every server runs yet.
    def creating() -> bool:
        return Children(kube, kube_namespace).count("PersistentVolumeClaim") >= FLEET // 4

    kube.wait_for("the operator creating children", creating, 120, interval=0.2)
    running_at_kill = sum(1 for n in names if gameservers.status(n).get("state") == "Running")
    first.kill()
    assert running_at_kill < FLEET, "killed only after creation had finished"

    second = operator_processes()

    def not_running() -> list[str]:
        return [n for n in names if gameservers.status(n).get("state") != "Running"]

    try:
        kube.wait_for("every server Running", lambda: not not_running(), RUNNING_TIMEOUT)
    except AssertionError as error:
        late = not_running()
        raise AssertionError(
            f"{error}; not Running: {[(n, gameservers.status(n)) for n in late[:3]]}"
        ) from None
    # A finished install Job is deleted in the background: its Pod goes a moment later.
    kube.wait_for(
        "install Pods collected",
        lambda: not Children(kube, kube_namespace).of("Pod", "install"),
        120,
    )
    assert_one_of_each_and_no_orphans(kube, kube_namespace, names)

    # All deleted at once (as `kubectl delete gs --all --wait=false`), killed mid-deletion.
    with ThreadPoolExecutor(max_workers=FLEET) as pool:
        list(pool.map(gameservers.delete, names))

    def remaining() -> list[str]:
        return remaining_gameservers(kube, kube_namespace)

    def deleting() -> bool:
        # A game Pod gone or ended: the operator is stopping servers.
        pods = Children(kube, kube_namespace).of("Pod", "server")
        ended = [p for p in pods if p.status.phase in {"Succeeded", "Failed"}]
        return len(pods) < FLEET or bool(ended)

    kube.wait_for("the operator deleting servers", deleting, 120, interval=0.2)
    second.kill()
    left_at_kill = remaining()
    assert left_at_kill, "killed only after deletion had finished"

    third = operator_processes()
    kube.wait_for("every GameServer deleted", lambda: not remaining(), GONE_TIMEOUT)
    kube.wait_for(
        "nothing of theirs left",
        lambda: not any(Children(kube, kube_namespace).objects.values()),
        120,
    )
    assert third.stop() == 0, third.output()[-3000:]
    # The stop commands went through the attach API beside every other request.
    for process in (first, second, third):
        broken = [line for line in process.output().splitlines() if "Handshake status" in line]
        assert not broken, broken[:3]
