"""The runtime contract: one suite, run against every `GameServerRuntime` implementation.

Each implementation contributes a branch of the `harness` fixture; a test receives a
`RuntimeHarness` with the runtime and a way to make a workload for a fresh toy server. The
Docker runtime runs on the local engine; the Kubernetes runtime on the test cluster (the `kube`
fixture), in a fresh namespace per test, logged in with the cluster's kubeconfig file.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stellarstack.api.runtime import ServerKey
from stellarstack.api.workload import WorkloadSettings
from support.kube import TOY_IMAGE, Kube
from support.runtime_harness import RuntimeHarness


@pytest.fixture(
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("kubernetes", marks=pytest.mark.kube),
    ]
)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RuntimeHarness]:
    """Each runtime implementation, with every server it created destroyed afterwards."""
    namespace: str | None = None
    kube: Kube | None = None
    if request.param == "docker":
        from stellarstack.nodeproxy.runtime.containers import DockerSettings
        from stellarstack.nodeproxy.runtime.docker import DockerRuntime

        client = request.getfixturevalue("docker_client")
        request.getfixturevalue("toy_image")
        data_root = tmp_path / "servers"
        data_root.mkdir()
        settings = DockerSettings(
            data_root=data_root,
            agent_id=f"test-{uuid.uuid4().hex[:8]}",
            bind_address="127.0.0.1",
            workload=WorkloadSettings(),
        )
        harness = RuntimeHarness(
            runtime=DockerRuntime(client, settings),
            namespace="contract",
            data_dir=settings.data_dir,
            created=[],
        )
    elif request.param == "kubernetes":
        from stellarstack.operator.runtime import KubernetesRuntime

        kube = request.getfixturevalue("kube")
        kube.require_image(TOY_IMAGE)
        namespace = kube.create_namespace(f"contract-{request.node.name}")
        harness = RuntimeHarness(
            runtime=KubernetesRuntime.from_kubeconfig(kube.kubeconfig, context=kube.context),
            namespace=namespace,
            data_dir=VolumePaths(kube),
            created=[],
        )
    else:  # pragma: no cover - every parameter is handled above
        raise AssertionError(request.param)
    yield harness
    for key in harness.created:
        await harness.runtime.destroy(key, keep_data=False)
    if kube is not None and namespace is not None:
        kube.delete_namespace(namespace)


class VolumePaths:
    """Where a server's data volume lives on the test cluster's node, which is this machine
    (the local provisioner makes hostPath volumes). Remembered, so a test can check that the
    directory went away after the claim was deleted."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self._known: dict[ServerKey, Path] = {}

    def __call__(self, key: ServerKey) -> Path:
        from kubernetes.client.exceptions import ApiException

        if self._kube.source == "kind":
            pytest.skip("the volumes of a kind cluster are inside its node container")
        try:
            claim = self._kube.core.read_namespaced_persistent_volume_claim(
                f"{key.name}-data", key.namespace
            )
        except ApiException as error:
            if error.status != 404:
                raise
            claim = None
        if claim is not None and claim.spec.volume_name:
            volume = self._kube.core.read_persistent_volume(claim.spec.volume_name)
            self._known[key] = Path(volume.spec.host_path.path)
        if key not in self._known:
            raise AssertionError(f"{key}: no bound volume, and none was seen before")
        return self._known[key]
