"""The backend for a server: one per Docker node and per Kubernetes target, made on first use
and reused until the node's address or token (or the target's namespace) changes.

HTTP clients belong to the event loop they were made on, so Docker node backends are kept per
loop (a panel serves from one loop; test clients each run their own). Kubernetes backends hold
no loop state and are shared."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stellarstack.panel.backends.base import ServerBackend
from stellarstack.panel.backends.docker_node import DockerNodeBackend
from stellarstack.panel.db.models import KubernetesTarget, Node, Server, TargetKind

NodeFactory = Callable[[Node], ServerBackend]
TargetFactory = Callable[[KubernetesTarget], ServerBackend]


class BackendRegistry:
    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        node_factory: NodeFactory | None = None,
        target_factory: TargetFactory | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.signing_key = signing_key
        """Signs the server tokens Kubernetes files Pods accept."""
        self._node_factory = node_factory or _docker_node
        self._target_factory = target_factory or self._kubernetes
        self._lock = threading.Lock()
        self._nodes: dict[tuple[int, str, str, str], ServerBackend] = {}
        self._targets: dict[tuple[str, str, str | None], ServerBackend] = {}
        self._retired: list[ServerBackend] = []

    def _kubernetes(self, target: KubernetesTarget) -> ServerBackend:
        # Imported here: a panel with only Docker nodes never loads the Kubernetes client.
        from stellarstack.panel.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(
            namespace=target.namespace,
            kubeconfig=self.kubeconfig,
            context=target.context,
            signing_key=self.signing_key,
        )

    def for_node(self, node: Node) -> ServerBackend:
        """The node's backend for the running event loop (call it from that loop)."""
        loop = id(asyncio.get_running_loop())
        key = (loop, node.id, node.url, node.token)
        with self._lock:
            backend = self._nodes.get(key)
            if backend is None:
                stale = [k for k in self._nodes if k[:2] == (loop, node.id)]
                self._retired.extend(self._nodes.pop(k) for k in stale)
                backend = self._nodes[key] = self._node_factory(node)
            return backend

    def for_target(self, target: KubernetesTarget) -> ServerBackend:
        key = (target.id, target.namespace, target.context)
        with self._lock:
            backend = self._targets.get(key)
            if backend is None:
                stale = [k for k in self._targets if k[0] == target.id]
                self._retired.extend(self._targets.pop(k) for k in stale)
                backend = self._targets[key] = self._target_factory(target)
            return backend

    def for_server(
        self, server: Server, *, node: Node | None, target: KubernetesTarget | None
    ) -> ServerBackend:
        if server.target_kind is TargetKind.DOCKER:
            if node is None:
                raise ValueError(f"server {server.id} has no node")
            return self.for_node(node)
        if target is None:
            raise ValueError(f"server {server.id} has no Kubernetes target")
        return self.for_target(target)

    async def aclose_loop(self) -> None:
        """Close the node backends made on the running loop (when a loop stops serving)."""
        loop = id(asyncio.get_running_loop())
        with self._lock:
            mine = [self._nodes.pop(k) for k in list(self._nodes) if k[0] == loop]
            retired, self._retired = self._retired, []
        for backend in [*mine, *retired]:
            with contextlib.suppress(Exception):
                await backend.aclose()

    async def aclose(self) -> None:
        """Close every backend (at shutdown)."""
        await self.aclose_loop()
        with self._lock:
            targets = list(self._targets.values())
            self._targets.clear()
        for backend in targets:
            with contextlib.suppress(Exception):
                await backend.aclose()


def _docker_node(node: Node) -> ServerBackend:
    return DockerNodeBackend(node.url, node.token)
