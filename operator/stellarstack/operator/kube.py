"""The operator's one I/O layer: the Kubernetes API through the official (blocking) client.

Every call runs in a worker thread (`asyncio.to_thread`) so Kopf's event loop never blocks.
Objects go in and come out as plain dicts (the builders' shape). The error vocabulary is fixed
here: 409 on create means "it exists: adopt it", 404 on delete means "already done".
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from stellarstack.api.constants import GROUP, VERSION
from stellarstack.operator.kubestream import write_stdin
from stellarstack.operator.metrics import Metrics

log = logging.getLogger(__name__)

# The client's loaders carry no type hints; treat the module as dynamic.
config: Any = _config

Manifest = dict[str, Any]


def connect(max_connections: int = 10) -> Any:
    """An ApiClient: in-cluster credentials when running in a Pod, else the kubeconfig.
    It keeps up to `max_connections` connections open: as many as threads call it at once."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # The client fixes its default kubeconfig path when it is imported; read $KUBECONFIG
        # now, so a value set later (by a launcher or a test) is honoured.
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = max_connections
    return client.ApiClient(configuration)


class Kube:
    """Typed-enough helpers over one ApiClient."""

    def __init__(self, api_client: Any, metrics: Metrics | None = None) -> None:
        self.api_client = api_client
        if metrics is not None:
            _count_requests(api_client, metrics)
        # Typed as Any: the client's partial stubs disagree with the dict bodies it accepts.
        self.core: Any = client.CoreV1Api(api_client)
        self.batch: Any = client.BatchV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)

    # -- plumbing ------------------------------------------------------------------------

    def _plain(self, obj: Any) -> Manifest:
        result: Manifest = self.api_client.sanitize_for_serialization(obj)
        return result

    def _calls(self, kind: str) -> tuple[Callable[..., Any], ...]:
        """create, read, patch, delete for a namespaced kind."""
        core, batch = self.core, self.batch
        table: dict[str, tuple[Callable[..., Any], ...]] = {
            "Pod": (
                core.create_namespaced_pod,
                core.read_namespaced_pod,
                core.patch_namespaced_pod,
                core.delete_namespaced_pod,
            ),
            "PersistentVolumeClaim": (
                core.create_namespaced_persistent_volume_claim,
                core.read_namespaced_persistent_volume_claim,
                core.patch_namespaced_persistent_volume_claim,
                core.delete_namespaced_persistent_volume_claim,
            ),
            "Service": (
                core.create_namespaced_service,
                core.read_namespaced_service,
                core.patch_namespaced_service,
                core.delete_namespaced_service,
            ),
            "ConfigMap": (
                core.create_namespaced_config_map,
                core.read_namespaced_config_map,
                core.patch_namespaced_config_map,
                core.delete_namespaced_config_map,
            ),
            "Job": (
                batch.create_namespaced_job,
                batch.read_namespaced_job,
                batch.patch_namespaced_job,
                batch.delete_namespaced_job,
            ),
        }
        return table[kind]

    # -- children ------------------------------------------------------------------------

    async def read(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object, or None when it does not exist."""
        _, read, _, _ = self._calls(kind)
        try:
            return self._plain(await asyncio.to_thread(read, name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def ensure(self, manifest: Manifest, *, update_spec: bool = False) -> Manifest:
        """Create the object; when it exists (409), adopt it: take over its labels and owner,
        and, with `update_spec`, its spec (only for kinds whose spec may change)."""
        kind, meta = manifest["kind"], manifest["metadata"]
        create, read, patch, _ = self._calls(kind)
        try:
            return self._plain(await asyncio.to_thread(create, meta["namespace"], manifest))
        except ApiException as error:
            if error.status != 409:
                raise
        existing = self._plain(await asyncio.to_thread(read, meta["name"], meta["namespace"]))
        wanted: Manifest = {
            "metadata": {
                "labels": meta.get("labels", {}),
                # An empty list removes an owner (a volume that became retained).
                "ownerReferences": meta.get("ownerReferences", []),
            }
        }
        if update_spec and "spec" in manifest:
            wanted["spec"] = manifest["spec"]
        if "data" in manifest:
            wanted["data"] = manifest["data"]
        if _covers(existing, wanted):
            return existing
        log.info("adopting %s %s/%s", kind, meta["namespace"], meta["name"])
        patched = await asyncio.to_thread(patch, meta["name"], meta["namespace"], wanted)
        return self._plain(patched)

    async def delete(
        self, kind: str, namespace: str, name: str, *, grace_seconds: int | None = None
    ) -> None:
        """Delete the object and what it owns (a Job's Pods); absent already means done."""
        _, _, _, delete = self._calls(kind)
        body = client.V1DeleteOptions(
            propagation_policy="Background", grace_period_seconds=grace_seconds
        )
        try:
            await asyncio.to_thread(delete, name, namespace, body=body)
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_services(self, namespace: str, selector: str) -> list[Manifest]:
        found = await asyncio.to_thread(
            self.core.list_namespaced_service, namespace, label_selector=selector
        )
        return [self._plain(item) for item in found.items]

    async def pod_log(self, namespace: str, name: str, container: str, tail: int) -> list[str]:
        """The last `tail` lines of a container's output ([] when there is none yet)."""
        try:
            text = await asyncio.to_thread(
                self.core.read_namespaced_pod_log,
                name,
                namespace,
                container=container,
                tail_lines=tail,
            )
        except ApiException as error:
            if error.status in {400, 404}:  # not started yet, or gone
                return []
            raise
        return str(text).splitlines()

    async def job_log_tail(self, namespace: str, job: str, tail: int) -> str:
        pods = await asyncio.to_thread(
            self.core.list_namespaced_pod, namespace, label_selector=f"job-name={job}"
        )
        lines: list[str] = []
        for pod in pods.items:
            lines += await self.pod_log(
                namespace, pod.metadata.name, pod.spec.containers[0].name, tail
            )
        return "\n".join(lines[-tail:])

    async def send_console(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Write one line to the container's stdin through the attach API."""
        if "\n" in line or "\r" in line:
            raise ValueError("a console command is one line")

        # On a client of its own (kubestream): never on the one the API threads share.
        await asyncio.to_thread(
            write_stdin, self.api_client, namespace, pod, container, line + "\n", settle_seconds=1
        )

    async def post_event(
        self, involved: Manifest, event_type: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event about a custom resource; failures only log (events are advisory)."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": event_type,
            "reason": reason[:128] or "Unknown",
            "message": message[:1024],
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "source": {"component": "stellarstack-operator"},
            "reportingComponent": "stellarstack-operator",
        }
        try:
            await asyncio.to_thread(self.core.create_namespaced_event, namespace, event)
        except ApiException as error:
            log.warning("event %s for %s not posted: %s", reason, meta["name"], error.reason)

    # -- our own kinds -------------------------------------------------------------------

    async def read_blueprint(self, name: str) -> Manifest | None:
        try:
            found: Manifest = await asyncio.to_thread(
                self.custom.get_cluster_custom_object, GROUP, VERSION, "blueprints", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    async def patch_gameserver_status(self, namespace: str, name: str, status: Manifest) -> None:
        """Merge-patch the status subresource (nulls remove fields); a deleted object is done."""
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                "gameservers",
                name,
                {"status": status},
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def gameservers_using(self, blueprint: str) -> list[tuple[str, str]]:
        """(namespace, name) of every GameServer that names the blueprint."""
        found = await asyncio.to_thread(
            self.custom.list_cluster_custom_object, GROUP, VERSION, "gameservers"
        )
        return [
            (item["metadata"]["namespace"], item["metadata"]["name"])
            for item in found.get("items", [])
            if (item.get("spec") or {}).get("blueprint") == blueprint
        ]

    async def annotate_gameserver(self, namespace: str, name: str, key: str, value: str) -> None:
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "gameservers",
                name,
                {"metadata": {"annotations": {key: value}}},
            )
        except ApiException as error:
            if error.status != 404:
                raise


def _count_requests(api_client: Any, metrics: Metrics) -> None:
    """Count every HTTP request of this client: all its API calls go through one REST client."""
    rest = api_client.rest_client
    send = rest.request

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        metrics.count_request("kubernetes", method)
        return send(method, url, *args, **kwargs)

    rest.request = counted


def _covers(existing: Any, wanted: Any) -> bool:
    """Whether `existing` already holds everything in `wanted` (server defaults may add more)."""
    if isinstance(wanted, dict):
        if not isinstance(existing, dict):
            return False
        if not wanted and existing:
            return False  # an empty map/list asks for removal
        return all(_covers(existing.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return not existing  # the server drops empty lists
        if not isinstance(existing, list) or len(existing) != len(wanted):
            return False
        return all(_covers(e, w) for e, w in zip(existing, wanted, strict=True))
    return bool(existing == wanted)
