"""kube-proxy: a Service in front of the toy pod answers on its ClusterIP and its NodePort."""

from __future__ import annotations

import pytest
from kubernetes import client

from support.kube import TOY_IMAGE, Kube, tcp_request, toy_pod, udp_request

pytestmark = pytest.mark.kube


def test_clusterip_and_nodeport_reach_the_pod(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(TOY_IMAGE)
    kube.require_pod_network()
    kube.core.create_namespaced_pod(kube_namespace, toy_pod("toy-svc", "behind-a-service"))
    service = kube.core.create_namespaced_service(
        kube_namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="toy"),
            spec=client.V1ServiceSpec(
                type="NodePort",
                selector={"app": "toy"},
                ports=[
                    client.V1ServicePort(name="status", port=7777, protocol="TCP"),
                    client.V1ServicePort(name="query", port=7778, protocol="UDP"),
                ],
            ),
        ),
    )
    kube.wait_for_pod_ready(kube_namespace, "toy-svc")
    cluster_ip = service.spec.cluster_ip
    node_port = next(p.node_port for p in service.spec.ports if p.name == "status")
    udp_node_port = next(p.node_port for p in service.spec.ports if p.name == "query")

    # kube-proxy programs the rules once the endpoints are ready: retry briefly.
    reply = kube.wait_for(
        "ClusterIP answers",
        lambda: tcp_request(cluster_ip, 7777, timeout=2).decode(),
        timeout=30,
    )
    assert reply.startswith("TOY name=behind-a-service "), reply
    node = kube.node_address()
    reply = kube.wait_for(
        "NodePort answers",
        lambda: tcp_request(node, node_port, timeout=2).decode(),
        timeout=30,
    )
    assert reply.startswith("TOY name=behind-a-service "), reply
    udp = udp_request(node, udp_node_port, b"status?").decode()
    assert udp.startswith("TOY name=behind-a-service "), udp
