"""Every example in examples/ applied to the real cluster, run by the real operator process.

One `stellarstack operator` process watches a namespace of this module. For each example file:

* its Blueprints are created (renamed apart: Blueprints are cluster-wide and other sessions share
  the cluster) and must be Ready;
* when every image its GameServer needs is on the cluster, the GameServer is created and must
  reach Running (installed, config files edited, the blueprint's readiness met), answer its own
  query where it has one, and stop cleanly;
* an example whose images can never be on this cluster (a public registry's images, and there is
  no registry to pull from) still has its GameServer and other resources accepted by the API
  server (a dry-run create), and is then reported by a skip that names the image.

Images built here (`make images`, `make image`) are required: missing, they skip locally and
fail under STELLARSTACK_REQUIRE_KUBE=1, like every cluster test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from stellarstack.operator.reconcile import default_stellarstack_image
from support.armagetronad import query, readable
from support.kube import Kube, tcp_request
from support.operator_cluster import (
    GROUP,
    VERSION,
    GameServers,
    delete_all_gameservers,
    free_host_port,
)

pytestmark = [pytest.mark.kube, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path.stem for path in (REPO / "examples").glob("*.yaml"))
BUILT_HERE = "localhost/stellarstack/"
"""Images with this prefix are built on this machine (`make images`, `make image`)."""
PLURALS = {"GameServer": "gameservers", "Backup": "backups", "Schedule": "schedules"}


@pytest.fixture(scope="module")
def operator_namespace(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace watched by a `stellarstack operator` process (the installed command)."""
    kube.install_crds(REPO / "crds")
    executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
    assert executable, "the stellarstack entry point is installed (make install)"
    namespace = kube.create_namespace("e2e-examples")
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [executable, "operator", "--standalone", "-n", namespace],
            env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield namespace
        # While the operator still runs, so their finalizers are honoured.
        delete_all_gameservers(kube, namespace)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=10)
        kube.delete_namespace(namespace)
    assert code == 0, log_path.read_text()[-3000:]


def chosen_image(gameserver: dict[str, Any], blueprint: dict[str, Any]) -> str:
    """The game image a GameServer runs: its `spec.image` (a name or an image), else the first."""
    images = blueprint["spec"]["images"]
    wanted = gameserver["spec"].get("image")
    for entry in images:
        if wanted in (entry["name"], entry["image"]):
            return str(entry["image"])
    return str(images[0]["image"])


def images_needed(gameserver: dict[str, Any], blueprint: dict[str, Any]) -> list[str]:
    images = [chosen_image(gameserver, blueprint)]
    install = blueprint["spec"].get("install")
    if install:
        images.append(install["image"])
    if blueprint["spec"].get("configFiles"):
        images.append(default_stellarstack_image())  # the config-file init container
    return list(dict.fromkeys(images))


def on_cluster(kube: Kube, image: str) -> bool:
    """Whether every node already has an image that was not built here."""
    for node in kube.core.list_node().items:
        names = {n for i in (node.status.images or []) for n in (i.names or [])}
        if image not in names and f"docker.io/{image}" not in names:
            return False
    return True


def dry_run_create(kube: Kube, namespace: str, doc: dict[str, Any]) -> None:
    """The API server validates and admits the object (schema included) but stores nothing."""
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[doc["kind"]], doc, dry_run="All"
    )


def wait_blueprint_ready(kube: Kube, name: str) -> None:
    def ready() -> dict[str, Any] | None:
        found = kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", name)
        status = found.get("status") or {}
        if status.get("phase") == "Invalid":
            raise AssertionError(f"Blueprint {name} is Invalid: {status.get('problems')}")
        return status if status.get("phase") == "Ready" else None

    kube.wait_for(f"Blueprint {name} Ready", ready, timeout=60, interval=1.0)


# -- what each runnable example answers ---------------------------------------------------------


def port_of(status: dict[str, Any], protocol: str) -> int:
    return int(next(p["port"] for p in status["ports"] if p["protocol"] == protocol))


def answers_toy(kube: Kube, status: dict[str, Any]) -> None:
    # ClusterIP exposure: the Service's address answers on the node (kube-proxy's rules).
    reply = kube.wait_for(
        "toy status port",
        lambda: tcp_request(status["address"], port_of(status, "TCP"), timeout=2).decode(),
        30,
    )
    assert reply.startswith("TOY name=My toy server "), reply


def answers_armagetronad(kube: Kube, status: dict[str, Any]) -> None:
    # The UDP server-info query; the name comes from the config file the init container edited.
    kube.wait_for(
        "armagetronad answers its query with the configured name",
        lambda: (
            b"Friday Night Light Cycles"
            in readable(query(port_of(status, "UDP"), status["address"]))
        ),
        30,
    )


def answers_openttd(kube: Kube, status: dict[str, Any]) -> None:
    # PACKET_CLIENT_GAME_INFO over TCP (size 3, type 7); the reply carries the server name,
    # which comes from private.cfg as the init container edited it.
    def game_info() -> bytes:
        with socket.create_connection((status["address"], port_of(status, "TCP")), 5) as conn:
            conn.sendall(b"\x03\x00\x07")
            reply = b""
            while len(reply) < 3 or len(reply) < int.from_bytes(reply[:2], "little"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply

    reply = kube.wait_for("openttd game info", game_info, 30)
    assert reply[2] == 6, reply  # PACKET_SERVER_GAME_INFO
    assert b"Tycoons Anonymous\x00" in reply, reply


QUERIES: dict[str, Callable[[Kube, dict[str, Any]], None]] = {
    "toy": answers_toy,
    "armagetronad": answers_armagetronad,
    "openttd": answers_openttd,
}


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_is_applied_and_reaches_running(
    kube: Kube, operator_namespace: str, example: str
) -> None:
    namespace = operator_namespace
    docs = [d for d in yaml.safe_load_all((REPO / "examples" / f"{example}.yaml").read_text()) if d]
    blueprints = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Blueprint"}
    gameservers = [d for d in docs if d["kind"] == "GameServer"]
    others = [d for d in docs if d["kind"] not in {"Blueprint", "GameServer"}]
    assert blueprints, f"{example}: no Blueprint"
    suffix = secrets.token_hex(3)
    created: list[str] = []
    servers = GameServers(kube, namespace)
    try:
        for original, doc in blueprints.items():
            doc["metadata"]["name"] = f"{original}-{suffix}"
            kube.custom.create_cluster_custom_object(GROUP, VERSION, "blueprints", doc)
            created.append(doc["metadata"]["name"])
        for name in created:
            wait_blueprint_ready(kube, name)

        needed: list[str] = []
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for gameserver in gameservers:
            blueprint = blueprints[gameserver["spec"]["blueprint"]]
            gameserver["spec"]["blueprint"] = blueprint["metadata"]["name"]
            needed += images_needed(gameserver, blueprint)
            pairs.append((gameserver, blueprint))
        unreachable = [
            i for i in needed if not i.startswith(BUILT_HERE) and not on_cluster(kube, i)
        ]
        if unreachable:
            for doc in gameservers + others:
                dry_run_create(kube, namespace, doc)
            missing = list(dict.fromkeys(unreachable))
            pytest.skip(
                f"{example}: {'images' if len(missing) > 1 else 'image'} {', '.join(missing)} "
                f"{'are' if len(missing) > 1 else 'is'} not on the cluster and cannot be pulled "
                "here (no registry); its resources were accepted by the API server (dry run)"
            )
        for image in dict.fromkeys(needed):
            if image.startswith(BUILT_HERE):
                kube.require_image(image)
        # Backups and Schedules have no controller on Kubernetes yet: admitted, not stored.
        for doc in others:
            dry_run_create(kube, namespace, doc)

        for gameserver in gameservers:
            if (gameserver["spec"].get("exposure") or {}).get("type", "HostPort") == "HostPort":
                # Fixed host ports would collide with other sessions on the same node.
                for port in gameserver["spec"]["ports"]:
                    port["hostPort"] = free_host_port()
            servers.create(gameserver)
        for gameserver, blueprint in pairs:
            name = gameserver["metadata"]["name"]
            spec = blueprint["spec"]
            budget = (spec.get("install") or {}).get("timeoutSeconds", 0) + (
                spec.get("readiness") or {}
            ).get("timeoutSeconds", 60)
            status = servers.wait_state(name, "Running", timeout=min(budget + 120, 600))
            if spec.get("install"):
                assert status["install"]["result"] == "Succeeded", status
            assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
            if example in QUERIES:
                QUERIES[example](kube, status)

            servers.patch_spec(name, {"power": {"state": "Stopped"}})
            stopped = servers.wait_state(name, "Stopped", timeout=120)
            if spec.get("stop", {}).get("type") == "Command":
                # The game ended itself on its console command: a clean exit, not a kill.
                # (A signal stop deletes the Pod, so no exit is observed.)
                assert stopped["lastExit"]["exitCode"] == 0, stopped
            servers.delete(name)
            servers.wait_gone(name, timeout=120)
    finally:
        for gameserver in gameservers:
            with contextlib.suppress(ApiException):
                servers.delete(gameserver["metadata"]["name"])
        for name in created:
            try:
                kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
            except ApiException as error:
                if error.status != 404:
                    raise
