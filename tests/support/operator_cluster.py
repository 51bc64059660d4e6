"""Helpers for the operator's cluster tests: GameServer documents and waits."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from support.kube import Kube
from support.runtime_harness import free_port

GROUP, VERSION = "stellarstack.io", "v1alpha1"


def free_host_port() -> int:
    """A port free for both TCP and UDP on the node address, in a range no test fixes."""
    for _ in range(50):
        port = 20000 + secrets.randbelow(9000)
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("0.0.0.0", port))
                udp.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free host port")


def gameserver_doc(name: str, blueprint: str, **spec: Any) -> dict[str, Any]:
    port = free_host_port()
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameServer",
        "metadata": {"name": name},
        "spec": {
            "blueprint": blueprint,
            "variables": {"TOY_NAME": name},
            "resources": {"cpu": "250m", "memory": "128Mi", "disk": "100Mi", "pids": 64},
            "ports": [
                {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": port},
                {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": port},
            ],
            **spec,
        },
    }


class GameServers:
    """GameServer helpers for one namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gameservers", doc
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gameservers", name
        )
        return found

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.kube.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gameservers", name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.kube.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "gameservers", name
        )

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_state(self, name: str, state: str, timeout: float = 120) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("state") == state else None

        try:
            return self.kube.wait_for(f"{name} {state}", reached, timeout, interval=1.0)
        except AssertionError as error:
            raise AssertionError(
                f"{error}; status: {self.status(name)}; events: {self.kube.events(self.namespace)}"
            ) from None

    def wait_gone(self, name: str, timeout: float = 90) -> None:
        def gone() -> bool:
            try:
                self.get(name)
            except ApiException as error:
                if error.status == 404:
                    return True
                raise
            return False

        self.kube.wait_for(f"{name} deleted", gone, timeout, interval=1.0)


def delete_all_gameservers(kube: Kube, namespace: str) -> None:
    """Delete every GameServer of the namespace (an operator must run); strip stuck finalizers."""

    def remaining() -> list[dict[str, Any]]:
        found = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "gameservers")
        return list(found.get("items", []))

    for item in remaining():
        try:
            kube.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "gameservers", item["metadata"]["name"]
            )
        except ApiException as error:
            if error.status != 404:
                raise
    try:
        kube.wait_for("GameServers deleted", lambda: not remaining(), timeout=90, interval=1.0)
    finally:
        # A stuck finalizer must not keep the test namespace alive.
        for item in remaining():
            kube.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "gameservers",
                item["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )


class OperatorProcess:
    """One `stellarstack operator` process (the installed entry point) with its metrics port
    and its log file; `args` are added to its command line (`-n`, `--standalone`, ...)."""

    def __init__(self, kube: Kube, log: Path, *args: str) -> None:
        executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
        assert executable, "the stellarstack entry point is installed (make install)"
        self.port = free_port()
        self.log = log
        self._output = log.open("w")
        self.process = subprocess.Popen(
            [
                executable,
                "operator",
                "--metrics-port",
                str(self.port),
                "--metrics-address",
                "127.0.0.1",
                *args,
            ],
            env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        kube.wait_for("metrics answer", lambda: self.metrics() is not None, 60)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited: {self.output()[-3000:]}")
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def in_state(self, state: str) -> float:
        return self.value("stellarstack_gameservers", state=state)

    def managed(self) -> float:
        return sum(
            v for (name, _), v in self.metrics().items() if name == "stellarstack_gameservers"
        )

    def output(self) -> str:
        if not self._output.closed:
            self._output.flush()
        return self.log.read_text()

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when the process crashes or is OOM-killed."""
        self.process.kill()
        self.process.wait(timeout=10)
        self._output.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._output.close()
        return int(self.process.returncode)
