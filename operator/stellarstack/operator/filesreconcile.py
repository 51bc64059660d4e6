"""Runs or removes a GameServer's files service (`filespod` decides, this applies).

Called by a Kopf timer for every GameServer that carries a files request (so an idle one is
noticed without any event) and at once when the request annotation changes. Each call reads
what exists and converges, so a crash at any line is repaired by the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.constants import GROUP, VERSION
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import WorkloadSettings
from stellarstack.operator import builders
from stellarstack.operator.filespod import (
    ANNOTATION_FILES_CONFIG,
    ANNOTATION_FILES_REQUESTED,
    FilesAction,
    FilesPlan,
    FilesSettings,
    compute_files_node,
    compute_files_plan,
    desired_files_config_map,
    desired_files_pod,
    desired_files_service,
    desired_host_key_secret,
    files_config_digest,
    files_name,
    is_files_object,
)
from stellarstack.operator.kube import Kube, Manifest
from stellarstack.operator.reconcile import parse_gameserver

log = logging.getLogger(__name__)

_GONE_TIMEOUT = 60.0


class FilesReconciler:
    """The files Pod, Service and ConfigMap of GameServers, through one `Kube`."""

    def __init__(
        self, kube: Kube, settings: FilesSettings, workload: WorkloadSettings | None = None
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.workload = workload or WorkloadSettings()
        # One pass per GameServer at a time: the timer and the annotation handler may overlap.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # The last warning posted per GameServer, so a standing problem is one Event, not one
        # every timer tick.
        self._warned: dict[tuple[str, str], str] = {}
        # GameServers (by uid) whose host key Secret exists: it is created once, never read.
        self._host_keys: set[str] = set()
        # The request annotation each GameServer had when its files were last removed. The
        # timer keeps firing for every GameServer that ever asked for files; while nothing
        # new was asked, the next removal would find nothing, so it is not even looked for.
        self._removed: dict[tuple[str, str], str | None] = {}

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (str(meta.get("namespace") or "default"), str(meta["name"]))
        async with self._locks.setdefault(key, asyncio.Lock()):
            requested = (meta.get("annotations") or {}).get(ANNOTATION_FILES_REQUESTED)
            if key in self._removed and self._removed[key] == requested:
                plan = self._plan(body)
                if plan is not None and plan.action is FilesAction.REMOVE:
                    return
            # The timer and the annotation handler wait for each other on the lock, so the
            # body one of them holds may predate what the other just acted on (a new request,
            # the end of an install): decide on the GameServer as it is now.
            current = await self._current(*key)
            if current is not None:
                await self._converge(key, current)

    def _plan(self, body: Mapping[str, Any]) -> FilesPlan | None:
        """The decision for a body; None when the GameServer cannot be parsed."""
        try:
            gameserver = parse_gameserver(body)
        except ValidationError:
            return None
        return compute_files_plan(
            gameserver,
            now=datetime.now(UTC),
            idle_timeout=self.settings.idle_timeout,
            deleting=bool(body["metadata"].get("deletionTimestamp")),
        )

    async def _current(self, namespace: str, name: str) -> Manifest | None:
        try:
            found: Manifest = await asyncio.to_thread(
                self.kube.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "gameservers",
                name,
            )
        except ApiException as error:
            if error.status == 404:
                return None  # deleted: the delete handler removes the files objects
            raise
        return found

    async def _converge(self, key: tuple[str, str], body: Mapping[str, Any]) -> None:
        plan = self._plan(body)
        if plan is None:
            # The GameServer's own loop reports an invalid spec; nothing to serve.
            await self.remove(*key)
            return
        requested = (body["metadata"].get("annotations") or {}).get(ANNOTATION_FILES_REQUESTED)
        if plan.action is FilesAction.REMOVE:
            if plan.problem:
                await self._warn(body, "FilesRequestInvalid", plan.reason)
            if key not in self._removed or self._removed[key] != requested:
                await self.remove(*key)
                self._removed[key] = requested
            return
        self._removed.pop(key, None)
        problem = await self.run(parse_gameserver(body))
        if problem is not None:
            await self._warn(body, "FilesUnavailable", problem)
        else:
            self._warned.pop(key, None)

    async def run(self, gameserver: GameServer) -> str | None:
        """Ensure the files ConfigMap, Pod and Service; what prevents it, or None."""
        namespace = gameserver.metadata.namespace or "default"
        name = gameserver.metadata.name or ""
        public_key = await self._public_key()
        if public_key is None:
            return (
                "the files service is not configured: STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_"
                "CONFIG_MAP must name the ConfigMap with the panel's public key "
                f"(item {self.settings.public_key_item})"
            )
        blueprint = await self._blueprint(gameserver.spec.blueprint)
        if blueprint is None:
            return f"spec.blueprint: Blueprint {gameserver.spec.blueprint} is missing or invalid"
        pvc = await self.kube.read("PersistentVolumeClaim", namespace, builders.pvc_name(name))
        if pvc is None:
            return "the data volume does not exist yet (the server was never installed or started)"
        taken = await self._name_taken(namespace, name)
        if taken is not None:
            return taken
        config_map = desired_files_config_map(gameserver, blueprint, public_key)
        await self.kube.ensure(config_map)
        digest = files_config_digest(config_map)
        pod_name = files_name(name)
        existing = await self.kube.read("Pod", namespace, pod_name)
        if existing is not None and _stale(existing, digest):
            # Its inputs changed (deny-list, quota, key) or it ended: start afresh.
            await self.kube.delete("Pod", namespace, pod_name, grace_seconds=5)
            await self._wait_gone(namespace, pod_name)
            existing = None
        if existing is None:
            await self._ensure_host_key(gameserver)
            game_pod = await self.kube.read("Pod", namespace, builders.pod_name(name))
            node = compute_files_node(gameserver, game_pod, pvc)
            await self.kube.ensure(
                desired_files_pod(
                    gameserver, self.settings, self.workload, config_digest=digest, node=node
                )
            )
        await self.kube.ensure(desired_files_service(gameserver), update_spec=True)
        return None

    async def remove(self, namespace: str, name: str) -> None:
        """Delete the files Pod, Service and ConfigMap (only ours: the names could belong to
        another GameServer's objects). The Pod goes last, so "no Pod" means all are gone."""
        pod = await self.kube.read("Pod", namespace, files_name(name))
        if pod is None or not is_files_object(pod, name):
            return
        for kind in ("Service", "ConfigMap"):
            found = await self.kube.read(kind, namespace, files_name(name))
            if found is not None and is_files_object(found, name):
                await self.kube.delete(kind, namespace, files_name(name))
        log.info("removing the files service of %s/%s", namespace, name)
        await self.kube.delete("Pod", namespace, files_name(name), grace_seconds=5)

    async def _ensure_host_key(self, gameserver: GameServer) -> None:
        """Create the SFTP host key Secret unless it exists. The operator may create Secrets
        but not read them (its ClusterRole has no `get` on secrets), so an existing one (409)
        is left as it is: that is the key clients already know."""
        uid = gameserver.metadata.uid or ""
        if uid in self._host_keys:
            return
        private = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()
        )
        secret = desired_host_key_secret(gameserver, private.decode())
        try:
            await asyncio.to_thread(
                self.kube.core.create_namespaced_secret, secret["metadata"]["namespace"], secret
            )
        except ApiException as error:
            if error.status != 409:
                raise
        self._host_keys.add(uid)

    async def _name_taken(self, namespace: str, name: str) -> str | None:
        for kind in ("Pod", "Service", "ConfigMap"):
            found = await self.kube.read(kind, namespace, files_name(name))
            if found is not None and not is_files_object(found, name):
                return (
                    f"a {kind} named {files_name(name)} that is not this server's files "
                    "service already exists (another GameServer's?); rename one of them"
                )
        return None

    async def _public_key(self) -> str | None:
        where = self.settings.public_key_config_map
        if where is None:
            return None
        namespace, _, name = where.partition("/")
        config_map = await self.kube.read("ConfigMap", namespace, name)
        pem = ((config_map or {}).get("data") or {}).get(self.settings.public_key_item)
        return str(pem) if pem else None

    async def _blueprint(self, name: str) -> Blueprint | None:
        document = await self.kube.read_blueprint(name)
        if document is None:
            return None
        try:
            return Blueprint.model_validate({k: v for k, v in document.items() if k != "status"})
        except ValidationError:
            return None

    async def _wait_gone(self, namespace: str, name: str) -> None:
        deadline = time.monotonic() + _GONE_TIMEOUT
        while await self.kube.read("Pod", namespace, name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} still exists after deletion")
            await asyncio.sleep(0.5)

    async def _warn(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        meta = body["metadata"]
        key = (str(meta.get("namespace") or "default"), str(meta["name"]))
        if self._warned.get(key) == message:
            return
        self._warned[key] = message
        log.warning("files of %s/%s: %s", key[0], key[1], message)
        with contextlib.suppress(ApiException):
            await self.kube.post_event(dict(body), "Warning", reason, message)

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is remembered about a deleted GameServer."""
        self._locks.pop((namespace, name), None)
        self._warned.pop((namespace, name), None)
        self._removed.pop((namespace, name), None)


def _stale(pod: Manifest, digest: str) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    phase = (pod.get("status") or {}).get("phase")
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    return bool(
        annotations.get(ANNOTATION_FILES_CONFIG) != digest
        or phase in {"Succeeded", "Failed"}
        or deleting
    )
