"""The operator running in-process (Kopf's `KopfRunner`, a thread) against the test cluster."""

from __future__ import annotations

import copy
import gc
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from support.kube import TOY_IMAGE, Kube
from support.operator_cluster import GROUP, VERSION, GameServers, delete_all_gameservers
from support.runtime_harness import TOY_BLUEPRINT

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def operator_crds(kube: Kube) -> list[str]:
    """The CRDs, installed or updated (left in place: other sessions may be using them)."""
    return kube.install_crds(REPO / "crds")


@pytest.fixture
def operator(
    kube: Kube, kube_namespace: str, operator_crds: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[KopfRunner]:
    """The operator watching GameServers in this test's namespace (Blueprints cluster-wide)."""
    kube.require_image(TOY_IMAGE)
    # Kopf and the operator's client both read the kubeconfig of the fixture's cluster.
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    args = ["run", "--standalone", "-n", kube_namespace, "-m", "stellarstack.operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
        # GameServers go while the operator still runs, so their finalizers are honoured and
        # the namespace can be deleted afterwards.
        delete_all_gameservers(kube, kube_namespace)
    # Kopf's HTTP sessions from the runner thread are collected here, inside this test (whose
    # warning filters allow their ResourceWarnings), rather than at the end of the session.
    gc.collect()
    assert runner.exception is None, runner.output[-4000:]


@pytest.fixture
def blueprint(kube: Kube) -> Iterator[Callable[..., str]]:
    """Creates toy Blueprints with unique names (cluster-scoped), deleted afterwards."""
    made: list[str] = []

    def create(name: str | None = None, **spec: Any) -> str:
        doc = copy.deepcopy(TOY_BLUEPRINT)
        doc["apiVersion"] = f"{GROUP}/{VERSION}"
        doc["metadata"] = {"name": name or f"toy-{secrets.token_hex(3)}"}
        doc["spec"].update(spec)
        kube.custom.create_cluster_custom_object(GROUP, VERSION, "blueprints", doc)
        made.append(doc["metadata"]["name"])
        return str(doc["metadata"]["name"])

    yield create
    for name in made:
        try:
            kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def gameservers(kube: Kube, kube_namespace: str) -> GameServers:
    return GameServers(kube, kube_namespace)
