"""A real pod on the test cluster: the toy game server runs and answers from the host."""

from __future__ import annotations

import time

import pytest
from kubernetes.client.exceptions import ApiException

from support.kube import TOY_IMAGE, Kube, tcp_request, toy_pod, udp_request

pytestmark = pytest.mark.kube

# Fixed host ports for the hostPort check; the node is this machine's cluster bridge.
HOST_TCP_PORT = 17777
HOST_UDP_PORT = 17778


def test_toy_pod_runs_and_answers_on_tcp_and_udp(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(TOY_IMAGE)
    kube.require_pod_network()
    kube.core.create_namespaced_pod(kube_namespace, toy_pod("toy", "alpha-centauri"))

    pod = kube.wait_for_pod_ready(kube_namespace, "toy", timeout=90)
    assert pod.status.phase == "Running"
    ip = pod.status.pod_ip
    assert ip, "a running pod has an IP"

    # The status port may need a moment after the container starts; the log says when.
    kube.wait_for(
        "toy ready line",
        lambda: (
            "ready name=alpha-centauri" in kube.core.read_namespaced_pod_log("toy", kube_namespace)
        ),
        timeout=30,
    )
    tcp = tcp_request(ip, 7777).decode()
    assert tcp.startswith("TOY name=alpha-centauri "), tcp
    assert "boots=1" in tcp
    udp = udp_request(ip, 7778, b"status?").decode()
    assert udp.startswith("TOY name=alpha-centauri "), udp


def test_toy_pod_answers_on_host_ports_of_the_node(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(TOY_IMAGE)
    kube.require_pod_network()
    kube.core.create_namespaced_pod(
        kube_namespace, toy_pod("toy-hp", "hostport", host_ports=(HOST_TCP_PORT, HOST_UDP_PORT))
    )
    kube.wait_for_pod_ready(kube_namespace, "toy-hp", timeout=90)
    node = kube.node_address()

    reply = kube.wait_for(
        "hostPort answers",
        lambda: tcp_request(node, HOST_TCP_PORT, timeout=2).decode(),
        timeout=30,
    )
    assert reply.startswith("TOY name=hostport "), reply
    udp = udp_request(node, HOST_UDP_PORT, b"status?").decode()
    assert udp.startswith("TOY name=hostport "), udp


def test_toy_pod_stops_cleanly_on_delete(kube: Kube, kube_namespace: str) -> None:
    """SIGTERM from the kubelet ends the server at once, not when the grace period runs out."""
    kube.require_image(TOY_IMAGE)
    kube.core.create_namespaced_pod(kube_namespace, toy_pod("toy-stop", "stopper"))
    kube.wait_for_pod_ready(kube_namespace, "toy-stop", timeout=90)
    started = time.monotonic()
    kube.core.delete_namespaced_pod("toy-stop", kube_namespace, grace_period_seconds=60)

    def gone() -> bool:
        try:
            kube.core.read_namespaced_pod("toy-stop", kube_namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    kube.wait_for("toy pod gone", gone, timeout=30, interval=0.2)
    assert time.monotonic() - started < 30, "the server ignored SIGTERM"
