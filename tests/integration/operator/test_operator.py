"""The operator against a real API server: toy GameServers from create to delete."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from support.kube import Kube, tcp_request
from support.operator_cluster import (
    GROUP,
    VERSION,
    GameServers,
    delete_all_gameservers,
    gameserver_doc,
)

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    # Kopf's HTTP sessions in the runner thread are sometimes collected after the test ends.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_toy_gameserver_runs_stops_and_keeps_its_data(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    gameservers.create(gameserver_doc("toy-a", bp))

    status = gameservers.wait_state("toy-a", "Running", timeout=180)
    pod = kube.core.read_namespaced_pod("toy-a", kube_namespace)
    pvc = kube.core.read_namespaced_persistent_volume_claim("toy-a-data", kube_namespace)
    for obj in (pod, pvc):
        assert obj.metadata.labels["stellarstack.io/gameserver"] == "toy-a"
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "stellarstack"
        owner = obj.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.controller) == ("GameServer", "toy-a", True)
    assert pod.spec.automount_service_account_token is False
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.fs_group == 1000
    container = pod.spec.containers[0]
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert container.stdin is True
    assert container.resources.requests == container.resources.limits

    # The install step ran first.
    assert status["install"]["result"] == "Succeeded"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"BlueprintReady": "True", "Installed": "True", "Ready": "True"}
    assert status["address"] == kube.node_address()
    port = next(p["port"] for p in status["ports"] if p["protocol"] == "TCP")
    reply = kube.wait_for(
        "status port", lambda: tcp_request(status["address"], port, timeout=2).decode(), 30
    )
    assert reply.startswith("TOY name=toy-a "), reply
    assert "boots=1" in reply

    # Stop: the blueprint's console command ends the game cleanly.
    gameservers.patch_spec("toy-a", {"power": {"state": "Stopped"}})
    stopped = gameservers.wait_state("toy-a", "Stopped", timeout=60)
    assert stopped["lastExit"]["exitCode"] == 0, stopped
    log = kube.core.read_namespaced_pod_log("toy-a", kube_namespace)
    assert "stopped (" in log, log[-500:]
    assert kube.core.read_namespaced_persistent_volume_claim("toy-a-data", kube_namespace)

    # Start again: the boot counter the game keeps in its volume survived.
    gameservers.patch_spec("toy-a", {"power": {"state": "Running"}})
    status = gameservers.wait_state("toy-a", "Running", timeout=120)
    reply = kube.wait_for(
        "status port again",
        lambda: tcp_request(status["address"], port, timeout=2).decode(),
        30,
    )
    assert "boots=2" in reply, reply

    # Delete without retainOnDelete: the volume goes too.
    gameservers.delete("toy-a")
    gameservers.wait_gone("toy-a")
    kube.wait_for("volume deleted", lambda: not _exists(kube, kube_namespace, "toy-a-data"), 60)


def test_retained_volume_outlives_the_gameserver(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    doc = gameserver_doc("toy-r", bp, power={"state": "Stopped"}, storage={"retainOnDelete": True})
    gameservers.create(doc)
    status = gameservers.wait_state("toy-r", "Stopped", timeout=120)
    assert status["install"]["result"] == "Succeeded"

    gameservers.delete("toy-r")
    gameservers.wait_gone("toy-r")
    time.sleep(3)  # give the garbage collector a chance to (wrongly) act
    pvc = kube.core.read_namespaced_persistent_volume_claim("toy-r-data", kube_namespace)
    assert pvc.metadata.deletion_timestamp is None
    assert not pvc.metadata.owner_references


def test_docker_node_gameservers_are_left_alone(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    gameservers.create(
        gameserver_doc("toy-d", bp, placement={"type": "DockerNode", "node": "node-a"})
    )
    time.sleep(8)
    found = gameservers.get("toy-d")
    assert not found.get("status"), found.get("status")
    assert not found["metadata"].get("finalizers")
    assert not kube.core.list_namespaced_pod(kube_namespace).items
    assert not kube.core.list_namespaced_persistent_volume_claim(kube_namespace).items
    assert not kube.core.list_namespaced_service(kube_namespace).items


def test_missing_blueprint_waits_then_recovers(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    name = f"later-{kube_namespace[-6:]}"
    gameservers.create(gameserver_doc("toy-m", name, power={"state": "Stopped"}))
    status = gameservers.wait_state("toy-m", "Pending", timeout=60)
    kube.wait_for(
        "BlueprintNotFound",
        lambda: gameservers.status("toy-m").get("reason") == "BlueprintNotFound",
        30,
    )
    assert not _exists(kube, kube_namespace, "toy-m-data"), status
    kube.wait_for(
        "a Warning event",
        lambda: any("BlueprintNotFound" in e for e in kube.events(kube_namespace)),
        30,
    )

    blueprint(name)
    status = gameservers.wait_state("toy-m", "Stopped", timeout=120)
    assert status["install"]["result"] == "Succeeded"
    ready = kube.wait_for(
        "blueprint Ready",
        lambda: (
            kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", name)
            .get("status", {})
            .get("phase")
            == "Ready"
        ),
        30,
    )
    assert ready


def _exists(kube: Kube, namespace: str, pvc: str) -> bool:
    try:
        kube.core.read_namespaced_persistent_volume_claim(pvc, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_crash_is_restarted_and_restart_request_restarts(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    doc = gameserver_doc("toy-c", bp, crashPolicy={"initialDelaySeconds": 1})
    gameservers.create(doc)
    gameservers.wait_state("toy-c", "Running", timeout=120)

    # The Pod vanishes without being asked (a node drain, a human): a crash, restarted.
    kube.core.delete_namespaced_pod("toy-c", kube_namespace, grace_period_seconds=0)
    kube.wait_for(
        "crash counted",
        lambda: gameservers.status("toy-c").get("restartCount") == 1,
        60,
    )
    status = gameservers.wait_state("toy-c", "Running", timeout=120)
    port = next(p["port"] for p in status["ports"] if p["protocol"] == "TCP")
    reply = kube.wait_for(
        "status port", lambda: tcp_request(status["address"], port, timeout=2).decode(), 30
    )
    assert "boots=2" in reply, reply

    # A restart request stops with the console command and starts again.
    gameservers.patch_spec("toy-c", {"power": {"restartRequest": "r1"}})
    kube.wait_for(
        "restart acted on",
        lambda: gameservers.status("toy-c").get("lastRestartRequest") == "r1",
        60,
    )
    status = gameservers.wait_state("toy-c", "Running", timeout=120)
    reply = kube.wait_for(
        "status port after restart",
        lambda: "boots=3" in tcp_request(status["address"], port, timeout=2).decode(),
        60,
    )
    assert reply


def test_invalid_blueprint_is_reported_and_its_fix_recovers_the_gameserver(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint(startupCommands=[{"name": "Default", "command": "/usr/local/bin/toy {{NOPE}}"}])
    kube.wait_for(
        "blueprint Invalid",
        lambda: (
            kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", bp)
            .get("status", {})
            .get("phase")
            == "Invalid"
        ),
        30,
    )
    gameservers.create(gameserver_doc("toy-i", bp, power={"state": "Stopped"}))
    status = gameservers.wait_state("toy-i", "Error", timeout=60)
    assert "NOPE" in status["message"], status

    kube.custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "blueprints",
        bp,
        {"spec": {"startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}]}},
    )
    gameservers.wait_state("toy-i", "Stopped", timeout=120)


@pytest.mark.parametrize("exposure", ["NodePort", "ClusterIP"])
def test_service_exposures_answer_at_the_status_address(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
    exposure: str,
) -> None:
    bp = blueprint()
    name = f"toy-{exposure.lower()}"
    gameservers.create(gameserver_doc(name, bp, exposure={"type": exposure}))
    status = gameservers.wait_state(name, "Running", timeout=120)
    service = kube.core.read_namespaced_service(name, kube_namespace)
    assert service.spec.type == exposure
    assert service.metadata.owner_references[0].name == name
    tcp = next(p for p in status["ports"] if p["protocol"] == "TCP")
    if exposure == "NodePort":
        assert status["address"] == kube.node_address()
        assert tcp["port"] == service.spec.ports[0].node_port
    else:
        assert status["address"] == service.spec.cluster_ip
        assert tcp["port"] == 7777
    reply = kube.wait_for(
        "service answers",
        lambda: tcp_request(status["address"], tcp["port"], timeout=2).decode(),
        30,
    )
    assert reply.startswith(f"TOY name={name} "), reply


def test_a_restarted_operator_adopts_the_running_server(
    kube: Kube,
    kube_namespace: str,
    operator_crds: list[str],
    blueprint: Callable[..., str],
    gameservers: GameServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube.require_image("localhost/stellarstack/toy:1")
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    args = ["run", "--standalone", "-n", kube_namespace, "-m", "stellarstack.operator.handlers"]
    bp = blueprint()
    with KopfRunner(args, timeout=60) as first:
        gameservers.create(gameserver_doc("toy-o", bp))
        status = gameservers.wait_state("toy-o", "Running", timeout=120)
    assert first.exception is None
    uid = kube.core.read_namespaced_pod("toy-o", kube_namespace).metadata.uid

    with KopfRunner(args, timeout=60) as second:
        try:
            time.sleep(5)  # the new operator resumes and reconciles
            assert gameservers.status("toy-o")["state"] == "Running"
            # The same Pod, the same run: nothing was restarted.
            assert kube.core.read_namespaced_pod("toy-o", kube_namespace).metadata.uid == uid
            port = next(p["port"] for p in status["ports"] if p["protocol"] == "TCP")
            assert "boots=1" in tcp_request(status["address"], port, timeout=5).decode()
        finally:
            delete_all_gameservers(kube, kube_namespace)
    gc.collect()
    assert second.exception is None


def test_failed_install_waits_for_a_reinstall_request(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    broken = {
        "image": "localhost/stellarstack/toy:1",
        "entrypoint": "sh",
        "script": "echo broken; exit 3\n",
    }
    bp = blueprint(install=broken)
    gameservers.create(gameserver_doc("toy-f", bp))
    status = gameservers.wait_state("toy-f", "InstallFailed", timeout=120)
    assert status["install"]["result"] == "Failed"
    assert "broken" in status["install"]["message"], status
    assert not kube.core.list_namespaced_pod(
        kube_namespace, label_selector="app.kubernetes.io/component=server"
    ).items

    fixed = {**broken, "script": "echo fixed > /mnt/server/installed.txt\n"}
    kube.custom.patch_cluster_custom_object(
        GROUP, VERSION, "blueprints", bp, {"spec": {"install": fixed}}
    )
    gameservers.patch_spec("toy-f", {"reinstallRequest": "again"})
    status = gameservers.wait_state("toy-f", "Running", timeout=120)
    assert status["install"]["result"] == "Succeeded"
    assert status["lastReinstallRequest"] == "again"


def test_suspension_stops_the_server_and_lifting_it_starts_again(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    gameservers.create(gameserver_doc("toy-s", bp))
    gameservers.wait_state("toy-s", "Running", timeout=120)
    gameservers.patch_spec("toy-s", {"suspended": True})
    status = gameservers.wait_state("toy-s", "Suspended", timeout=60)
    kube.wait_for(
        "game stopped",
        lambda: (
            kube.core.read_namespaced_pod("toy-s", kube_namespace).status.phase
            in {"Succeeded", "Failed"}
        ),
        60,
    )
    assert status["reason"] == "Suspended"
    gameservers.patch_spec("toy-s", {"suspended": False})
    gameservers.wait_state("toy-s", "Running", timeout=120)


def test_a_game_that_exits_by_itself_is_seen_at_once_as_a_crash(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    from stellarstack.operator.kube import Kube as OperatorKube

    bp = blueprint()
    gameservers.create(gameserver_doc("toy-x", bp, crashPolicy={"initialDelaySeconds": 600}))
    gameservers.wait_state("toy-x", "Running", timeout=120)
    # `stop` typed on the console by someone else: the game exits 0 without being asked to by
    # the GameServer, which still wants it running. That is a crash.
    asyncio.run(OperatorKube(kube.api_client).send_console(kube_namespace, "toy-x", "game", "stop"))
    began = time.monotonic()
    status = gameservers.wait_state("toy-x", "Crashed", timeout=30)
    # Seen through the Pod event, well before the daemon's idle look (10 s).
    assert time.monotonic() - began < 8, status
    assert status["lastExit"]["exitCode"] == 0
    assert status["restartCount"] == 1
    annotations = gameservers.get("toy-x")["metadata"]["annotations"]
    pod_uid = kube.core.read_namespaced_pod("toy-x", kube_namespace).metadata.uid
    assert annotations["stellarstack.io/pod-ended"] == pod_uid


def test_a_refused_pod_is_an_error_with_the_reason_and_recovers(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    kube.core.create_namespaced_resource_quota(
        kube_namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    kube.wait_for(
        "quota counted",
        lambda: kube.core.read_namespaced_resource_quota("no-pods", kube_namespace).status.hard,
        30,
    )
    bp = blueprint(install=None)
    gameservers.create(gameserver_doc("toy-q", bp))
    status = gameservers.wait_state("toy-q", "Error", timeout=60)
    assert "exceeded quota" in status["message"], status
    kube.wait_for(
        "a Warning event",
        lambda: any("exceeded quota" in e for e in kube.events(kube_namespace)),
        30,
    )

    kube.core.delete_namespaced_resource_quota("no-pods", kube_namespace)
    gameservers.wait_state("toy-q", "Running", timeout=120)


def test_a_taken_host_port_is_named_in_the_status(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint(install=None)
    first = gameserver_doc("toy-p1", bp)
    gameservers.create(first)
    gameservers.wait_state("toy-p1", "Running", timeout=120)
    second = gameserver_doc("toy-p2", bp)
    second["spec"]["ports"] = first["spec"]["ports"]
    gameservers.create(second)
    message = kube.wait_for(
        "the conflict in the status",
        lambda: (
            "free ports" in gameservers.status("toy-p2").get("message", "")
            and gameservers.status("toy-p2")["message"]
        ),
        60,
    )
    assert gameservers.status("toy-p2")["state"] == "Starting", message


def test_read_only_root_filesystem_runs_with_a_scratch_tmp(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint(readOnlyRootFilesystem=True)
    gameservers.create(gameserver_doc("toy-ro", bp))
    status = gameservers.wait_state("toy-ro", "Running", timeout=120)
    pod = kube.core.read_namespaced_pod("toy-ro", kube_namespace)
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    port = next(p["port"] for p in status["ports"] if p["protocol"] == "TCP")
    reply = kube.wait_for(
        "status port", lambda: tcp_request(status["address"], port, timeout=2).decode(), 30
    )
    assert reply.startswith("TOY name=toy-ro "), reply
