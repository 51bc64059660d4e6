"""Pure parts of the Kubernetes runtime (`stellarstack.operator.runtime`): plain dicts in and out.

The runtime runs a server as the very Pod the operator would build (`builders.desired_pod`).
What it adds is kept here so unit tests can read all of it:

* the desired Pod is stored in a ConfigMap (`<name>-workload`) when the server is ensured, so a
  start, possibly long after a stop or in another process, recreates exactly that Pod; the Pod
  carries a digest of its manifest, which tells whether a running Pod is current;
* what a Pod's status means as a `ProcessStatus` (unlike the operator's `compute_process`, a
  created Pod whose container has not run yet is CREATED here, not RUNNING);
* resource figures from a metrics.k8s.io `PodMetrics` document and the Pod's own limits.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from fractions import Fraction
from typing import Any

from stellarstack.api.quantity import QuantityError, parse_quantity
from stellarstack.api.runtime import ProcessPhase, ProcessStatus, ResourceStats
from stellarstack.api.workload import Workload
from stellarstack.operator.builders import GAME_CONTAINER, child_labels

Manifest = dict[str, Any]

ANNOTATION_SPEC_HASH = "stellarstack.io/spec-hash"
# Holds a killed Pod's object (and so its exit status) after its deletion, until the runtime
# itself removes the Pod at the next start, ensure or destroy.
FINALIZER_KEEP_STATUS = "stellarstack.io/keep-exit-status"
WORKLOAD_POD_KEY = "pod.json"
# Waiting reasons of a container whose image the node neither has nor may pull.
IMAGE_REASONS = frozenset(
    {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"}
)
# Waiting reasons that no amount of waiting resolves.
FATAL_REASONS = IMAGE_REASONS | {
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


def workload_config_map_name(gameserver_name: str) -> str:
    """The ConfigMap that holds a server's desired Pod."""
    return f"{gameserver_name}-workload"


def spec_hash(pod: Manifest) -> str:
    """A digest of everything in the Pod manifest except the digest itself."""
    relevant = copy.deepcopy(pod)
    meta = relevant.get("metadata", {})
    annotations = meta.get("annotations") or {}
    annotations.pop(ANNOTATION_SPEC_HASH, None)
    if not annotations:
        meta.pop("annotations", None)  # stamping may have added the map itself
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_spec_hash(pod: Manifest) -> Manifest:
    """The Pod with its digest annotation set."""
    stamped = copy.deepcopy(pod)
    annotations = stamped["metadata"].setdefault("annotations", {})
    annotations[ANNOTATION_SPEC_HASH] = spec_hash(pod)
    return stamped


def without_owner(manifest: Manifest) -> Manifest:
    """The manifest without owner references: a server that no GameServer object describes has
    no owner for garbage collection to follow (an owner without a uid is refused)."""
    bare = copy.deepcopy(manifest)
    bare["metadata"].pop("ownerReferences", None)
    return bare


def desired_workload_config_map(workload: Workload, pod: Manifest) -> Manifest:
    """The ConfigMap recording `pod` as the server's desired Pod (same owner as the Pod)."""
    meta: Manifest = {
        "name": workload_config_map_name(workload.name),
        "namespace": workload.namespace,
        "labels": child_labels(workload, "workload"),
    }
    if pod["metadata"].get("ownerReferences"):
        meta["ownerReferences"] = copy.deepcopy(pod["metadata"]["ownerReferences"])
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {WORKLOAD_POD_KEY: json.dumps(pod, sort_keys=True)},
    }


def stored_pod(config_map: Manifest) -> Manifest | None:
    """The desired Pod a workload ConfigMap holds (None when it holds none)."""
    text = (config_map.get("data") or {}).get(WORKLOAD_POD_KEY)
    if not text:
        return None
    pod: Manifest = json.loads(text)
    return pod


def pod_hash(pod: Manifest | None) -> str | None:
    return (((pod or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SPEC_HASH)


def _game_state(pod: Manifest) -> Manifest:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    found = next((s for s in statuses if s.get("name") == GAME_CONTAINER), None) or {}
    state: Manifest = found.get("state") or {}
    return state


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def compute_runtime_status(pod: Manifest | None, *, workload_stored: bool) -> ProcessStatus:
    """The process as the runtime contract describes it.

    A Pod whose game container has not run yet (scheduling, pulling, creating) is CREATED: the
    contract's RUNNING means the process runs now. No Pod but a stored workload is CREATED as
    well (ensured, or started and then replaced); nothing at all is ABSENT.
    """
    if pod is None:
        return ProcessStatus(phase=ProcessPhase.CREATED if workload_stored else ProcessPhase.ABSENT)
    state = _game_state(pod)
    terminated = state.get("terminated")
    if terminated:
        code = terminated.get("exitCode")
        return ProcessStatus(
            phase=ProcessPhase.EXITED,
            exit_code=None if code is None else int(code),
            oom_killed=terminated.get("reason") == "OOMKilled",
            started_at=_time(terminated.get("startedAt")),
            finished_at=_time(terminated.get("finishedAt")),
        )
    if (pod.get("status") or {}).get("phase") in {"Succeeded", "Failed"}:
        # Ended before the container ever ran (e.g. evicted): an exit without a code.
        return ProcessStatus(phase=ProcessPhase.EXITED)
    running = state.get("running")
    if running is not None:
        return ProcessStatus(phase=ProcessPhase.RUNNING, started_at=_time(running.get("startedAt")))
    return ProcessStatus(phase=ProcessPhase.CREATED)


def container_started(pod: Manifest | None) -> bool:
    """The game container runs or has run (its log and, while it runs, its stdin exist)."""
    state = _game_state(pod or {})
    return bool(state.get("running") or state.get("terminated"))


def waiting_problem(pod: Manifest | None) -> tuple[str, str] | None:
    """(reason, message) when the game container waits for something that will not come."""
    waiting = _game_state(pod or {}).get("waiting") or {}
    reason = waiting.get("reason") or ""
    if reason in FATAL_REASONS:
        return reason, str(waiting.get("message") or reason)
    return None


def runnable_pod(stored: Manifest) -> Manifest:
    """A fresh copy of a stored desired Pod to create (never a status or server-set field)."""
    pod = copy.deepcopy(stored)
    pod.pop("status", None)
    meta = pod["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "finalizers"):
        meta.pop(key, None)
    pod["spec"].pop("nodeName", None)
    return pod


def install_exit_code(pods: list[Manifest]) -> int | None:
    """The exit code of an install Job's (one) Pod, when its container ended."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode") is not None:
                return int(terminated["exitCode"])
    return None


def _quantity(value: Any) -> Fraction | None:
    if value is None:
        return None
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def memory_limit(pod: Manifest) -> int | None:
    """The game container's memory limit in bytes, from the Pod spec."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == GAME_CONTAINER:
            limit = _quantity(
                ((container.get("resources") or {}).get("limits") or {}).get("memory")
            )
            return None if limit is None else int(limit)
    return None


NETWORK_UNAVAILABLE = "the Kubernetes API reports no per-Pod network counters"
DISK_UNAVAILABLE = "the Kubernetes API reports no volume usage"
NOT_RUNNING = "not running"


def compute_stats(
    pod: Manifest, metrics: Manifest | None, *, metrics_unavailable: str | None
) -> ResourceStats:
    """Resource figures from a metrics.k8s.io PodMetrics document (`metrics`), or a result that
    names each missing figure and why (`metrics_unavailable`, or "not running").

    The metrics API reports CPU as a rate (cores over its sampling window) and memory as the
    working set; network and volume usage are not in any API a namespaced client may read, so
    they are always reported unavailable here.
    """
    running = compute_runtime_status(pod, workload_stored=True).phase is ProcessPhase.RUNNING
    unavailable: dict[str, str] = {"network": NETWORK_UNAVAILABLE, "disk": DISK_UNAVAILABLE}
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    if not running:
        unavailable.update(cpu=NOT_RUNNING, memory=NOT_RUNNING, network=NOT_RUNNING)
    elif metrics is None:
        why = metrics_unavailable or "no metrics sample for this Pod yet"
        unavailable.update(cpu=why, memory=why)
    else:
        usage: Manifest = next(
            (
                c.get("usage") or {}
                for c in metrics.get("containers") or []
                if c.get("name") == GAME_CONTAINER
            ),
            {},
        )
        cpu = _quantity(usage.get("cpu"))
        memory = _quantity(usage.get("memory"))
        if cpu is None:
            unavailable["cpu"] = "the metrics sample has no CPU figure"
        else:
            cpu_percent = float(cpu * 100)
        if memory is None:
            unavailable["memory"] = "the metrics sample has no memory figure"
        else:
            memory_bytes = int(memory)
    return ResourceStats(
        cpu_percent=cpu_percent,
        memory_bytes=memory_bytes,
        memory_limit_bytes=memory_limit(pod),
        network_rx_bytes=None,
        network_tx_bytes=None,
        disk_bytes=None,
        unavailable=unavailable,
    )
