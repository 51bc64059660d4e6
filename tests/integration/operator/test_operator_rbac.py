"""The operator works with exactly the permissions of operator/rbac.yaml (as its ServiceAccount)."""

from __future__ import annotations

import copy
import gc
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from support.kube import TOY_IMAGE, Kube
from support.operator_cluster import GameServers, gameserver_doc

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

RBAC = Path(__file__).resolve().parents[3] / "operator" / "rbac.yaml"


@pytest.fixture
def operator_kubeconfig(kube: Kube, kube_namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig holding a token of a ServiceAccount bound to the ClusterRole of rbac.yaml."""
    from kubernetes import client

    docs = list(yaml.safe_load_all(RBAC.read_text()))
    role = copy.deepcopy(next(d for d in docs if d["kind"] == "ClusterRole"))
    suffix = secrets.token_hex(3)
    role["metadata"]["name"] = f"stellarstack-operator-test-{suffix}"
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    rbac.create_cluster_role(role)
    kube.core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "operator"}})
    binding = {
        "metadata": {"name": role["metadata"]["name"]},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": kube_namespace}],
    }
    rbac.create_cluster_role_binding(binding)
    try:
        token = kube.core.create_namespaced_service_account_token(
            "operator", kube_namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        configuration = kube.api_client.configuration
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {
                                "server": configuration.host,
                                "certificate-authority": configuration.ssl_ca_cert,
                            },
                        }
                    ],
                    "users": [{"name": "operator", "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "stellarstack-test-operator",
                            "context": {"cluster": "test", "user": "operator"},
                        }
                    ],
                    "current-context": "stellarstack-test-operator",
                }
            )
        )
        yield kubeconfig
    finally:
        for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
            try:
                delete(role["metadata"]["name"])
            except ApiException as error:
                if error.status != 404:
                    raise


def test_operator_runs_a_gameserver_with_only_its_cluster_role(
    kube: Kube,
    kube_namespace: str,
    operator_crds: list[str],
    operator_kubeconfig: Path,
    blueprint: Callable[..., str],
    gameservers: GameServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube.require_image(TOY_IMAGE)
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))
    args = ["run", "--standalone", "-n", kube_namespace, "-m", "stellarstack.operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        bp = blueprint()
        gameservers.create(gameserver_doc("toy-rbac", bp))
        status: dict[str, Any] = gameservers.wait_state("toy-rbac", "Running", timeout=120)
        assert status["install"]["result"] == "Succeeded"
        # Stopping needs the attach API (the console command).
        gameservers.patch_spec("toy-rbac", {"power": {"state": "Stopped"}})
        stopped = gameservers.wait_state("toy-rbac", "Stopped", timeout=60)
        assert stopped["lastExit"]["exitCode"] == 0, stopped
        gameservers.delete("toy-rbac")
        gameservers.wait_gone("toy-rbac")
    gc.collect()
    assert runner.exception is None
    assert "Forbidden" not in runner.output, runner.output[-3000:]
