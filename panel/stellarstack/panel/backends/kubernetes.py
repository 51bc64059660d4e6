"""`ServerBackend` for one Kubernetes namespace: the panel writes the custom resources through
the API server and the operator does the rest. The client library blocks, so every call runs in
a worker thread; the backend holds no event-loop state and may be shared between loops."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from stellarstack.api.constants import GROUP, VERSION
from stellarstack.api.runtime import ConsoleSession, ResourceStats
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    Kind,
    PowerAction,
    ProxiedResponse,
    ResourceInvalidError,
    ResourceMissingError,
)
from stellarstack.panel.backends.kubernetes_io import KubernetesIO

# The client's loaders carry no type hints; treat the module as dynamic.
config: Any = _config

PLURALS = {
    Kind.GAMESERVER: "gameservers",
    Kind.BLUEPRINT: "blueprints",
    Kind.BACKUP: "backups",
    Kind.SCHEDULE: "schedules",
}
# Read-modify-write of a spec retries this often when another writer changed the object.
CONFLICT_RETRIES = 5
T = TypeVar("T")


def api_client_for(kubeconfig: Path | None, context: str | None) -> Any:
    """An ApiClient: the kubeconfig (and context) when given, in-cluster credentials in a Pod,
    else the default kubeconfig."""
    try:
        if kubeconfig is not None:
            return config.new_client_from_config(config_file=str(kubeconfig), context=context)
        if context is None:
            try:
                config.load_incluster_config()
                return client.ApiClient()
            except config.ConfigException:
                pass
        return config.new_client_from_config(
            config_file=os.environ.get("KUBECONFIG") or None, context=context
        )
    except (config.ConfigException, OSError) as exc:
        # No credentials (or a broken kubeconfig) is an unusable target, not a panel crash.
        raise BackendUnavailableError(f"no usable Kubernetes credentials: {exc}") from exc


class KubernetesBackend:
    """The GameServers (and Backups, Schedules) of one namespace; Blueprints cluster-wide."""

    def __init__(
        self,
        *,
        namespace: str,
        kubeconfig: Path | None = None,
        context: str | None = None,
        api_client: Any = None,
        request_timeout: float = 15.0,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.namespace = namespace
        self._api_client = api_client or api_client_for(kubeconfig, context)
        self._custom: Any = client.CustomObjectsApi(self._api_client)
        self._timeout = request_timeout
        # The panel's key signs the server tokens the files Pods accept.
        self._io = KubernetesIO(self._api_client, signing_key=signing_key)

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", self._timeout)
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except ApiException as exc:
            raise _mapped(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailableError(f"the Kubernetes API is unreachable: {exc!r}") from exc

    async def _get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            if kind is Kind.BLUEPRINT:
                found: dict[str, Any] = await self._call(
                    self._custom.get_cluster_custom_object, GROUP, VERSION, PLURALS[kind], name
                )
            else:
                found = await self._call(
                    self._custom.get_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace or self.namespace,
                    PLURALS[kind],
                    name,
                )
        except ResourceMissingError:
            return None
        return found

    async def _create(self, kind: Kind, namespace: str, document: dict[str, Any]) -> Any:
        if kind is Kind.BLUEPRINT:
            return await self._call(
                self._custom.create_cluster_custom_object, GROUP, VERSION, PLURALS[kind], document
            )
        return await self._call(
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            document,
        )

    async def _replace(self, kind: Kind, namespace: str, document: dict[str, Any]) -> Any:
        name = document["metadata"]["name"]
        if kind is Kind.BLUEPRINT:
            return await self._call(
                self._custom.replace_cluster_custom_object,
                GROUP,
                VERSION,
                PLURALS[kind],
                name,
                document,
            )
        return await self._call(
            self._custom.replace_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            name,
            document,
        )

    async def _update_spec(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> dict[str, Any]:
        """Read, change and replace an object's spec, retrying when another writer got there
        first (the resourceVersion makes a lost update impossible)."""
        for _ in range(CONFLICT_RETRIES):
            current = await self._get(kind, namespace, name)
            if current is None:
                raise ResourceMissingError(f"{kind} {name} does not exist in {namespace}")
            current.pop("status", None)
            wanted = change(current)
            if wanted is None:
                return current
            try:
                replaced: dict[str, Any] = await self._replace(kind, namespace, wanted)
            except _ConflictError:
                continue
            return replaced
        raise BackendUnavailableError(f"{kind} {name} keeps changing; try again")

    # --- resources ---------------------------------------------------------------------

    async def apply(self, kind: Kind, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
        namespace = "" if kind is Kind.BLUEPRINT else (namespace or self.namespace)
        metadata = dict(document.get("metadata") or {})
        name = metadata.get("name")
        if not name:
            raise ResourceInvalidError(["metadata.name: a name is required"])
        if namespace:
            metadata["namespace"] = namespace
        wanted = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": str(kind),
            "metadata": metadata,
            "spec": document.get("spec", {}),
        }
        for _ in range(CONFLICT_RETRIES):
            try:
                created: dict[str, Any] = await self._create(kind, namespace, wanted)
                return created
            except _ConflictError:
                pass

            def merge(current: dict[str, Any]) -> dict[str, Any]:
                meta = current["metadata"]
                meta["labels"] = {**(meta.get("labels") or {}), **metadata.get("labels", {})}
                meta["annotations"] = {
                    **(meta.get("annotations") or {}),
                    **metadata.get("annotations", {}),
                }
                return {**current, "spec": wanted["spec"]}

            try:
                return await self._update_spec(kind, namespace, str(name), merge)
            except ResourceMissingError:
                continue  # deleted between our create and read: create again
        raise BackendUnavailableError(f"{kind} {name} keeps changing; try again")

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(kind, namespace, name)

    async def list_resources(
        self, kind: Kind, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        if kind is Kind.BLUEPRINT:
            answer: dict[str, Any] = await self._call(
                self._custom.list_cluster_custom_object, GROUP, VERSION, PLURALS[kind]
            )
        else:
            answer = await self._call(
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace or self.namespace,
                PLURALS[kind],
            )
        items: list[dict[str, Any]] = answer.get("items", [])
        return items

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            if kind is Kind.BLUEPRINT:
                await self._call(
                    self._custom.delete_cluster_custom_object, GROUP, VERSION, PLURALS[kind], name
                )
            else:
                await self._call(
                    self._custom.delete_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace or self.namespace,
                    PLURALS[kind],
                    name,
                )
        except ResourceMissingError:
            return

    async def power(self, namespace: str, name: str, action: PowerAction) -> str | None:
        request = uuid.uuid4().hex if action in {"restart", "kill"} else None

        def change(current: dict[str, Any]) -> dict[str, Any]:
            spec = current.setdefault("spec", {})
            if spec.get("suspended"):
                raise BackendError(f"GameServer {name} is suspended")
            power = spec.setdefault("power", {})
            if action == "start":
                power["state"] = "Running"
            elif action == "stop":
                power["state"] = "Stopped"
            elif action == "restart":
                power["restartRequest"] = request
            else:
                power["killRequest"] = request
            return current

        await self._update_spec(Kind.GAMESERVER, namespace or self.namespace, name, change)
        return request

    async def aclose(self) -> None:
        await self._io.aclose()
        await asyncio.to_thread(self._api_client.close)

    # --- interactive ---------------------------------------------------------------------
    # Console, logs and stats through the game Pod, files through the on-demand files Pod:
    # implemented in kubernetes_io (`KubernetesIO`) over this backend's API client.

    def console(
        self, namespace: str, name: str, *, backlog: int
    ) -> AbstractAsyncContextManager[ConsoleSession]:
        return self._io.console(namespace or self.namespace, name, backlog=backlog)

    async def logs(self, namespace: str, name: str, *, tail: int) -> list[str]:
        return await self._io.logs(namespace or self.namespace, name, tail=tail)

    async def stats(self, namespace: str, name: str) -> ResourceStats:
        return await self._io.stats(namespace or self.namespace, name)

    async def files(
        self,
        namespace: str,
        name: str,
        *,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | bytes | None,
    ) -> ProxiedResponse:
        return await self._io.files(
            namespace or self.namespace,
            name,
            method=method,
            path=path,
            params=params,
            headers=headers,
            body=body,
        )

    async def backup_archive(self, namespace: str, name: str) -> ProxiedResponse:
        return await self._io.backup_archive(namespace or self.namespace, name)


class _ConflictError(BackendError):
    """409 from the API server: the object exists (create) or changed (replace)."""


def _mapped(exc: ApiException) -> BackendError:
    status = int(exc.status or 0)
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    message = str(body.get("message") or exc.reason or exc)
    if status == 404:
        return ResourceMissingError(message)
    if status == 409:
        return _ConflictError(message)
    if status == 422:
        causes = (body.get("details") or {}).get("causes") or []
        problems = [
            f"{cause.get('field') or '(document)'}: {cause.get('message', '')}" for cause in causes
        ]
        return ResourceInvalidError(problems or [f"(document): {message}"])
    if status in {401, 403}:
        return BackendError(f"the Kubernetes API refused the panel ({status}): {message}")
    if status == 0 or status >= 500 or status == 429:
        return BackendUnavailableError(f"the Kubernetes API answered {status}: {message}")
    return BackendError(f"the Kubernetes API answered {status}: {message}")
