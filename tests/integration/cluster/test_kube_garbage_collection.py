"""The garbage collector of a real controller-manager follows ownerReferences."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.kube import Kube

pytestmark = pytest.mark.kube


def config_map(name: str, owner: client.V1ConfigMap | None = None) -> client.V1ConfigMap:
    refs = None
    if owner is not None:
        assert owner.metadata is not None
        refs = [
            client.V1OwnerReference(
                api_version="v1",
                kind="ConfigMap",
                name=owner.metadata.name,
                uid=owner.metadata.uid,
                block_owner_deletion=True,
            )
        ]
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, owner_references=refs), data={"k": name}
    )


def exists(kube: Kube, namespace: str, name: str) -> bool:
    try:
        kube.core.read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_owner_deletes_dependents(
    kube: Kube, kube_namespace: str, propagation: str
) -> None:
    owner = kube.core.create_namespaced_config_map(kube_namespace, config_map("owner"))
    kube.core.create_namespaced_config_map(kube_namespace, config_map("child", owner))
    kube.core.create_namespaced_config_map(kube_namespace, config_map("bystander"))

    kube.core.delete_namespaced_config_map("owner", kube_namespace, propagation_policy=propagation)
    kube.wait_for(
        "dependent deleted by the garbage collector",
        lambda: not exists(kube, kube_namespace, "child"),
        timeout=60,
    )
    kube.wait_for("owner deleted", lambda: not exists(kube, kube_namespace, "owner"), timeout=30)
    assert exists(kube, kube_namespace, "bystander")


def test_orphan_propagation_keeps_dependents(kube: Kube, kube_namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(kube_namespace, config_map("owner"))
    kube.core.create_namespaced_config_map(kube_namespace, config_map("child", owner))
    kube.core.delete_namespaced_config_map("owner", kube_namespace, propagation_policy="Orphan")

    def orphaned() -> bool:
        child = kube.core.read_namespaced_config_map("child", kube_namespace)
        return not exists(kube, kube_namespace, "owner") and not child.metadata.owner_references

    kube.wait_for("owner gone and child orphaned", orphaned, timeout=60)
