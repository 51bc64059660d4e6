"""The Helm chart installed for real: rendered by Helm's engine, applied to the test cluster.

The operator Deployment (the StellarStack image from `make image`) must become Available, run
a toy GameServer to Running, and the chart's own `helm test` Pod must pass. Everything the test
made is removed again; the CRDs stay (other tests share them, as with the `kube` fixture).
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from support.kube import CLUSTER_DIR, TOY_IMAGE, Kube, describe
from support.operator_cluster import GROUP, VERSION, GameServers, delete_all_gameservers
from support.required import KUBE, unavailable
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [pytest.mark.kube, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "stellarstack"
APP_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE_REPOSITORY = "localhost/stellarstack/stellarstack"
IMAGE = f"{IMAGE_REPOSITORY}:{APP_VERSION}"


def image_loaded(kube: Kube, image: str) -> bool:
    """`make image` leaves a marker beside the local cluster's containerd; elsewhere the nodes'
    image lists (refreshed by the kubelet only every few minutes) are asked."""
    marker = CLUSTER_DIR / "images-loaded" / image.replace("/", "_").replace(":", "_")
    if marker.exists():
        return True
    for node in kube.core.list_node().items:
        names = {n for i in (node.status.images or []) for n in (i.names or [])}
        if image not in names and f"docker.io/{image}" not in names:
            return False
    return True


def kubectl(kube: Kube, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    command = ["kubectl", "--kubeconfig", str(kube.kubeconfig), "--context", kube.context, *args]
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr.strip()}"
    return result.stdout


def render(release: str, namespace: str) -> list[dict[str, Any]]:
    helm_python = pytest.importorskip("helm_python")
    values = {
        "image": {"tag": APP_VERSION, "pullPolicy": "Never"},
        # Only this test's namespace: other tests run their own operators in theirs.
        "operator": {"watchNamespaces": [namespace]},
        "tests": {"gameImage": TOY_IMAGE, "timeoutSeconds": 150},
    }
    files = helm_python.Chart.load(CHART).render(values, name=release, namespace=namespace)
    return [
        doc
        for path, text in sorted(files.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


@pytest.fixture
def installed(kube: Kube) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The chart applied in a fresh namespace, as `helm install` would (CRDs first)."""
    if not shutil.which("kubectl"):
        unavailable("no kubectl on PATH (the test applies the rendered chart with it)", KUBE)
    if not image_loaded(kube, IMAGE):
        unavailable(f"image {IMAGE} is not loaded into the cluster; run `make image`", KUBE)
    kube.require_image(TOY_IMAGE)
    kube.install_crds(CHART / "crds")  # left in place: other tests share them
    namespace = kube.create_namespace("chart-install")
    release = f"stellarstack-{secrets.token_hex(3)}"
    objects = render(release, namespace)
    manifests = yaml.safe_dump_all([o for o in objects if not is_hook(o)])
    try:
        kubectl(
            kube,
            "apply",
            "--server-side",
            "--field-manager=helm-chart-test",
            "-f",
            "-",
            stdin=manifests,
        )
        yield namespace, objects
    finally:
        # GameServers go while the operator still runs, so their finalizers are honoured.
        try:
            delete_all_gameservers(kube, namespace)
        finally:
            # The `helm test` Pod deletes its Blueprint itself; not when it was cut short.
            with contextlib.suppress(ApiException):
                kube.custom.delete_cluster_custom_object(
                    GROUP, VERSION, "blueprints", f"{release}-test-toy"
                )
            cluster_scoped = [o for o in objects if "namespace" not in o["metadata"]]
            kubectl(
                kube,
                "delete",
                "--ignore-not-found",
                "--wait=false",
                "-f",
                "-",
                stdin=yaml.safe_dump_all(cluster_scoped),
            )
            kube.delete_namespace(namespace)


def wait_available(kube: Kube, namespace: str, name: str, timeout: float = 120) -> None:
    def available() -> bool:
        deployment = kube.apps.read_namespaced_deployment(name, namespace)
        conditions = deployment.status.conditions or []
        return (
            any(c.type == "Available" and c.status == "True" for c in conditions)
            and (deployment.status.available_replicas or 0) >= 1
        )

    try:
        kube.wait_for(f"deployment {namespace}/{name} Available", available, timeout, 1.0)
    except AssertionError as error:
        pods = kube.core.list_namespaced_pod(namespace).items
        raise AssertionError(
            f"{error}; pods: {[describe(p) for p in pods]}; events: {kube.events(namespace)}"
        ) from None


def test_chart_installs_an_operator_that_runs_a_gameserver(
    kube: Kube, installed: tuple[str, list[dict[str, Any]]]
) -> None:
    namespace, objects = installed
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    wait_available(kube, namespace, deployment["metadata"]["name"])

    blueprint = copy.deepcopy(TOY_BLUEPRINT)
    blueprint["apiVersion"] = f"{GROUP}/{VERSION}"
    blueprint["metadata"] = {"name": f"chart-toy-{secrets.token_hex(3)}"}
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "blueprints", blueprint)
    try:
        gameservers = GameServers(kube, namespace)
        gameservers.create(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "GameServer",
                "metadata": {"name": "toy"},
                "spec": {
                    "blueprint": blueprint["metadata"]["name"],
                    "variables": {"TOY_NAME": "chart"},
                    "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
                    "ports": [
                        {"name": "status", "port": 7777, "protocol": "TCP"},
                        {"name": "query", "port": 7778, "protocol": "UDP"},
                    ],
                    "exposure": {"type": "ClusterIP"},
                },
            }
        )
        status = gameservers.wait_state("toy", "Running", timeout=150)
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        assert conditions.get("Installed") == "True", status
        check_operator_metrics_and_logs(kube, namespace)
        gameservers.delete("toy")
        gameservers.wait_gone("toy", timeout=90)
    finally:
        try:
            kube.custom.delete_cluster_custom_object(
                GROUP, VERSION, "blueprints", blueprint["metadata"]["name"]
            )
        except ApiException as error:
            if error.status != 404:
                raise

    # The chart's `helm test` hook: its own toy Blueprint and GameServer, as its own account.
    test_pod = next(o for o in objects if o["kind"] == "Pod" and is_hook(o))
    kubectl(
        kube,
        "apply",
        "--server-side",
        "--field-manager=helm-chart-test",
        "-f",
        "-",
        stdin=yaml.safe_dump(test_pod),
    )
    name = test_pod["metadata"]["name"]

    def finished() -> str | None:
        phase = kube.core.read_namespaced_pod(name, namespace).status.phase
        return phase if phase in {"Succeeded", "Failed"} else None

    try:
        phase = kube.wait_for(f"helm test pod {name} finished", finished, 200, interval=2.0)
    finally:
        log = kube.core.read_namespaced_pod_log(name, namespace)
        print(log)
    assert phase == "Succeeded", log
    assert "PASS: the GameServer is Running" in log


def check_operator_metrics_and_logs(kube: Kube, namespace: str) -> None:
    """The chart's metrics port answers (through the API server's Pod proxy: no cluster DNS
    needed) with the Running GameServer counted, and the operator logs JSON lines."""
    (pod,) = kube.core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=operator"
    ).items
    name = pod.metadata.name

    def running_counted() -> bool:
        text = kube.core.connect_get_namespaced_pod_proxy_with_path(
            f"{name}:9090", namespace, "metrics"
        )
        return 'stellarstack_gameservers{state="Running"} 1.0' in str(text)

    kube.wait_for("the operator's metrics count the Running GameServer", running_counted, 30)
    lines = kube.core.read_namespaced_pod_log(name, namespace, container="operator").splitlines()
    assert lines
    assert all(isinstance(json.loads(line), dict) for line in lines if line.strip())
