"""A StatefulSet with a PersistentVolumeClaim keeps its data when its pod is replaced."""

from __future__ import annotations

import pytest
from kubernetes import client

from support.kube import TOY_IMAGE, Kube, tcp_request

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def statefulset(name: str) -> client.V1StatefulSet:
    labels = {"app": name}
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1StatefulSetSpec(
            service_name=name,
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=10,
                    security_context=client.V1PodSecurityContext(
                        run_as_user=1000, run_as_group=1000, fs_group=1000
                    ),
                    containers=[
                        client.V1Container(
                            name="game",
                            image=TOY_IMAGE,
                            image_pull_policy="Never",
                            env=[client.V1EnvVar(name="TOY_NAME", value="persistent")],
                            ports=[client.V1ContainerPort(container_port=7777)],
                            volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                        )
                    ],
                ),
            ),
            # No storage class named: the cluster's default one provisions the volume.
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name="data"),
                    spec=client.V1PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=client.V1VolumeResourceRequirements(requests={"storage": "64Mi"}),
                    ),
                )
            ],
        ),
    )


def boots(kube: Kube, namespace: str, pod_name: str) -> int:
    """The toy's start counter, which it keeps in /data, read from its status port."""
    pod = kube.wait_for_pod_ready(namespace, pod_name, timeout=120)
    reply = kube.wait_for(
        "toy status",
        lambda: tcp_request(pod.status.pod_ip, 7777, timeout=2).decode(),
        timeout=30,
    )
    fields = dict(item.split("=", 1) for item in reply.split()[1:])
    return int(fields["boots"])


def test_statefulset_volume_survives_pod_deletion(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(TOY_IMAGE)
    kube.require_pod_network()
    kube.apps.create_namespaced_stateful_set(kube_namespace, statefulset("world"))

    first = kube.wait_for(
        "pod world-0 exists",
        lambda: kube.core.list_namespaced_pod(kube_namespace, label_selector="app=world").items,
        timeout=60,
    )[0]
    assert boots(kube, kube_namespace, "world-0") == 1
    claim = kube.core.read_namespaced_persistent_volume_claim("data-world-0", kube_namespace)
    assert claim.status.phase == "Bound"
    volume = claim.spec.volume_name

    kube.core.delete_namespaced_pod("world-0", kube_namespace)

    def replaced() -> bool:
        pods = kube.core.list_namespaced_pod(kube_namespace, label_selector="app=world").items
        return any(p.metadata.uid != first.metadata.uid for p in pods)

    kube.wait_for("world-0 recreated", replaced, timeout=90)
    assert boots(kube, kube_namespace, "world-0") == 2, "the counter in /data did not survive"
    claim = kube.core.read_namespaced_persistent_volume_claim("data-world-0", kube_namespace)
    assert claim.spec.volume_name == volume
