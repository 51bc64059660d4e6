"""The real game-server images (`make images`) run on the cluster as uid 1000 and answer."""

from __future__ import annotations

import socket
import time

import pytest
from kubernetes import client

from support.kube import Kube

pytestmark = [pytest.mark.kube, pytest.mark.slow]

ARMAGETRONAD = "localhost/stellarstack/armagetronad:1"
OPENTTD = "localhost/stellarstack/openttd:1"


def game_pod(name: str, image: str, stdin: bool = False) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            # Armagetronad ignores SIGTERM as PID 1: do not wait 30 s for it on cleanup.
            termination_grace_period_seconds=2,
            security_context=client.V1PodSecurityContext(run_as_non_root=True),
            containers=[
                client.V1Container(
                    name="game",
                    image=image,
                    image_pull_policy="Never",
                    stdin=stdin,
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                )
            ],
            volumes=[client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource())],
        ),
    )


def armagetronad_query(host: str) -> bytes:
    """The server-info exchange: a 0x34 request, then (separately) 0x35, whose reply carries
    the server name, version and player counts."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(bytes.fromhex("0034000000000000"), (host, 4534))
        sock.recvfrom(4096)
        time.sleep(0.3)
        sock.sendto(bytes.fromhex("0035000000000000"), (host, 4534))
        data, _ = sock.recvfrom(4096)
    return data


def test_armagetronad_answers_the_server_query(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(ARMAGETRONAD)
    kube.require_pod_network()
    kube.core.create_namespaced_pod(kube_namespace, game_pod("arma", ARMAGETRONAD, stdin=True))
    pod = kube.wait_for_pod_ready(kube_namespace, "arma")
    kube.wait_for(
        "armagetronad bound its port",
        lambda: "Bound socket to" in kube.core.read_namespaced_pod_log("arma", kube_namespace),
        timeout=60,
    )
    reply = kube.wait_for("server info", lambda: armagetronad_query(pod.status.pod_ip), timeout=30)
    assert reply[:2] == b"\x00\x33", reply[:16]
    # Strings travel as byte-swapped 16-bit words: "Unnamed Server" reads "nUanem deSvrre".
    assert b"nUanem deSvrre" in reply, reply


def test_openttd_dedicated_server_listens(kube: Kube, kube_namespace: str) -> None:
    kube.require_image(OPENTTD)
    kube.require_pod_network()
    kube.core.create_namespaced_pod(kube_namespace, game_pod("ottd", OPENTTD))
    pod = kube.wait_for_pod_ready(kube_namespace, "ottd")
    kube.wait_for(
        "openttd started its game",
        lambda: "starting game" in kube.core.read_namespaced_pod_log("ottd", kube_namespace),
        timeout=90,
    )
    # A TCP connection is accepted on the game port (the reply is binary and client-driven).
    kube.wait_for("openttd accepts TCP", lambda: connects(pod.status.pod_ip, 3979), timeout=30)


def connects(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2):
        return True
