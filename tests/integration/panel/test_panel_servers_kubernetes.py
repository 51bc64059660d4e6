"""Servers on a Kubernetes target through the panel API, against the real test cluster: the
panel writes the GameServer, the operator (namespace-scoped, in-process) runs it, and the state
comes back. GameServers made with the client directly are adopted for admins only, and can be
given an owner."""

from __future__ import annotations

import copy
import gc
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from sqlalchemy import select

from stellarstack.panel.api.app import create_app
from stellarstack.panel.backends.registry import BackendRegistry
from stellarstack.panel.db.models import Server
from stellarstack.panel.services.status_sync import status_sync
from support.kube import TOY_IMAGE, Kube
from support.operator_cluster import (
    GROUP,
    VERSION,
    delete_all_gameservers,
    free_host_port,
    gameserver_doc,
)
from support.panel import Panel, PanelClient, create_user
from support.runtime_harness import TOY_BLUEPRINT

REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    pytest.mark.timeout(400),
    # Kopf's HTTP sessions in the runner thread are sometimes collected after the test ends.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="session")
def crds(kube: Kube) -> list[str]:
    return kube.install_crds(REPO / "crds")


@pytest.fixture
def cluster_panel(panel: Panel, kube: Kube, crds: list[str]) -> Panel:
    """The panel, reaching the test cluster through its kubeconfig."""
    panel.context.backends = BackendRegistry(kubeconfig=kube.kubeconfig)
    return panel


@pytest.fixture
def operator(
    kube: Kube, kube_namespace: str, crds: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[KopfRunner]:
    kube.require_image(TOY_IMAGE)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    args = ["run", "--standalone", "-n", kube_namespace, "-m", "stellarstack.operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
        delete_all_gameservers(kube, kube_namespace)
    gc.collect()
    assert runner.exception is None, runner.output[-4000:]


@pytest.fixture
def blueprint_name(kube: Kube) -> Iterator[str]:
    """A unique name for the toy blueprint (Blueprints are cluster-wide); removed afterwards."""
    name = f"toy-panel-{secrets.token_hex(3)}"
    yield name
    try:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
    except ApiException as error:
        if error.status != 404:
            raise


def add_target(admin: PanelClient, kube: Kube, namespace: str) -> str:
    created = admin.post(
        "/api/admin/kubernetes-targets",
        json={
            "name": f"cluster-{namespace}"[:100],
            "namespace": namespace,
            "context": kube.context,
        },
    )
    assert created.status_code == 201, created.text
    target_id: str = created.json()["id"]
    return target_id


def wait_state(client: PanelClient, server_id: str, state: str, within: float) -> Any:
    deadline = time.monotonic() + within
    body: Any = {}
    while time.monotonic() < deadline:
        response = client.get(f"/api/servers/{server_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["state"] == state:
            return body
        time.sleep(1)
    raise AssertionError(f"server never reached {state}: {body}")


def test_a_server_created_in_the_panel_runs_on_kubernetes(
    cluster_panel: Panel,
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint_name: str,
) -> None:
    panel = cluster_panel
    admin = panel.setup_admin()
    toy = copy.deepcopy(TOY_BLUEPRINT)
    toy["apiVersion"] = f"{GROUP}/{VERSION}"
    toy["metadata"] = {"name": blueprint_name}
    assert admin.post("/api/admin/blueprints", json=toy).status_code == 201
    target_id = add_target(admin, kube, kube_namespace)
    create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")
    port = free_host_port()

    created = player.post(
        "/api/servers",
        json={
            "name": "On the cluster",
            "blueprint": blueprint_name,
            "kubernetes_target_id": target_id,
            "variables": {"TOY_NAME": "kube-panel"},
            "resources": {"cpu": "250m", "memory": "128Mi", "disk": "100Mi", "pids": 64},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP", "host_port": port},
                {"name": "query", "port": 7778, "protocol": "UDP", "host_port": port},
            ],
        },
    )
    assert created.status_code == 201, created.text
    server = created.json()
    assert (server["target_kind"], server["namespace"]) == ("kubernetes", kube_namespace)

    # The GameServer object is what the panel was asked for.
    stored = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", server["resource_name"]
    )
    assert stored["metadata"]["labels"]["stellarstack.io/panel-server"] == server["id"]
    spec = stored["spec"]
    assert spec["blueprint"] == blueprint_name
    assert spec["variables"] == {"TOY_NAME": "kube-panel"}
    assert spec["resources"]["memory"] == "128Mi"
    assert [(p["name"], p["hostPort"]) for p in spec["ports"]] == [
        ("status", port),
        ("query", port),
    ]
    assert spec["placement"]["type"] == "Kubernetes"
    assert spec["power"]["state"] == "Running"
    # The blueprint was missing at the cluster, so the panel added it.
    kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", blueprint_name)

    running = wait_state(player, server["id"], "Running", within=240)
    assert running["status"]["install"]["result"] == "Succeeded"

    stop = player.post(f"/api/servers/{server['id']}/power", json={"action": "stop"})
    assert stop.status_code == 202, stop.text
    stored = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", server["resource_name"]
    )
    assert stored["spec"]["power"]["state"] == "Stopped"
    wait_state(player, server["id"], "Stopped", within=90)

    restart = player.post(f"/api/servers/{server['id']}/power", json={"action": "restart"})
    assert restart.status_code == 202
    stored = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", server["resource_name"]
    )
    assert stored["spec"]["power"]["restartRequest"] == restart.json()["request"]

    assert player.delete(f"/api/servers/{server['id']}").status_code == 204

    def gone() -> bool:
        try:
            kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, kube_namespace, "gameservers", server["resource_name"]
            )
        except ApiException as error:
            return error.status == 404
        return False

    kube.wait_for("GameServer deleted", gone, timeout=120, interval=1.0)


def test_gameservers_made_outside_the_panel_are_adopted_for_admins_and_assignable(
    cluster_panel: Panel, kube: Kube, kube_namespace: str
) -> None:
    panel = cluster_panel
    admin = panel.setup_admin()
    target_id = add_target(admin, kube, kube_namespace)
    user_id = create_user(panel, admin, "owner@example.com")
    owner = panel.login("owner@example.com")
    document = gameserver_doc("made-with-kubectl", "some-blueprint")
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", document
    )

    # Users cannot trigger a sync or see the unassigned list.
    assert owner.post("/api/admin/servers/sync").status_code == 404
    assert owner.get("/api/admin/servers/unassigned").status_code == 404
    synced = admin.post("/api/admin/servers/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json()["adopted"] == 1
    assert synced.json()["unreachable"] == []
    unassigned = admin.get("/api/admin/servers/unassigned").json()
    assert unassigned["total"] == 1
    adopted = unassigned["items"][0]
    assert adopted["external"] is True
    assert adopted["owner_id"] is None
    assert adopted["kubernetes_target_id"] == target_id
    assert (adopted["namespace"], adopted["resource_name"]) == (
        kube_namespace,
        "made-with-kubectl",
    )
    assert adopted["blueprint"] == "some-blueprint"
    # Nobody but admins sees it until it has an owner.
    assert owner.get("/api/servers").json()["total"] == 0
    assert owner.get(f"/api/servers/{adopted['id']}").status_code == 404
    # A second pass adopts nothing new.
    assert admin.post("/api/admin/servers/sync").json()["adopted"] == 0

    assigned = admin.post(f"/api/admin/servers/{adopted['id']}/owner", json={"owner_id": user_id})
    assert assigned.status_code == 200, assigned.text
    assert admin.get("/api/admin/servers/unassigned").json()["total"] == 0
    assert [s["id"] for s in owner.get("/api/servers").json()["items"]] == [adopted["id"]]
    seen = owner.get(f"/api/servers/{adopted['id']}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["spec"]["blueprint"] == "some-blueprint"
    assert seen.json()["backend_error"] is None

    # Power goes to the object itself.
    stop = owner.post(f"/api/servers/{adopted['id']}/power", json={"action": "stop"})
    assert stop.status_code == 202, stop.text
    stored = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", "made-with-kubectl"
    )
    assert stored["spec"]["power"]["state"] == "Stopped"

    # Deleted behind the panel's back: the next pass marks it missing.
    kube.custom.delete_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", "made-with-kubectl"
    )
    assert admin.post("/api/admin/servers/sync").json()["missing"] == 1
    assert admin.get(f"/api/servers/{adopted['id']}").json()["state"] == "Missing"


def test_the_background_sync_adopts_without_being_asked(
    cluster_panel: Panel, kube: Kube, kube_namespace: str
) -> None:
    admin = cluster_panel.setup_admin()
    add_target(admin, kube, kube_namespace)
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", gameserver_doc("found-later", "some-bp")
    )
    context = cluster_panel.context

    def quick_sync(ctx: Any) -> Any:
        return status_sync(ctx, interval=0.2)

    app = create_app(context, migrate=False, background=[quick_sync])
    with TestClient(app, base_url="https://testserver"):
        deadline = time.monotonic() + 30
        while True:
            with context.sessions() as db:
                adopted = db.scalars(select(Server).where(Server.external.is_(True))).all()
                names = [s.resource_name for s in adopted]
            if names:
                break
            assert time.monotonic() < deadline, "the background sync adopted nothing"
            time.sleep(0.2)
    assert names == ["found-later"]


def example_toy(name: str) -> dict[str, Any]:
    """examples/toy.yaml's Blueprint (with its default ports) under another name."""
    for document in yaml.safe_load_all((REPO / "examples" / "toy.yaml").read_text()):
        if document.get("kind") == "Blueprint":
            return {**document, "metadata": {"name": name}}
    raise AssertionError("examples/toy.yaml has no Blueprint")


def test_a_server_without_ports_gets_the_blueprint_defaults_on_kubernetes(
    cluster_panel: Panel, kube: Kube, kube_namespace: str, blueprint_name: str
) -> None:
    """The default ports reach the GameServer on a Kubernetes target as well, exposed as the
    request says; the API server accepts the Blueprint's ports (its CEL rules included)."""
    panel = cluster_panel
    admin = panel.setup_admin()
    assert admin.post("/api/admin/blueprints", json=example_toy(blueprint_name)).status_code == 201
    target_id = add_target(admin, kube, kube_namespace)

    created = admin.post(
        "/api/servers",
        json={
            "name": "Defaults",
            "blueprint": blueprint_name,
            "kubernetes_target_id": target_id,
            "exposure": {"type": "ClusterIP"},
            "start": False,
        },
    )
    assert created.status_code == 201, created.text
    stored = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", created.json()["resource_name"]
    )
    assert stored["spec"]["ports"] == [
        {"name": "status", "port": 7777, "protocol": "TCP"},
        {"name": "query", "port": 7778, "protocol": "UDP"},
    ]
    assert stored["spec"]["variables"] == {"TOY_TCP_PORT": "7777", "TOY_UDP_PORT": "7778"}
    assert stored["spec"]["exposure"]["type"] == "ClusterIP"
    blueprint = kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", blueprint_name)
    assert [p["name"] for p in blueprint["spec"]["ports"]] == ["status", "query"]

    # A blueprint without default ports needs them named, on Kubernetes too.
    bare = copy.deepcopy(TOY_BLUEPRINT)
    bare["metadata"] = {"name": f"{blueprint_name}-bare"}
    assert admin.post("/api/admin/blueprints", json=bare).status_code == 201
    refused = admin.post(
        "/api/servers",
        json={
            "name": "Bare",
            "blueprint": bare["metadata"]["name"],
            "kubernetes_target_id": target_id,
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "body.ports"
