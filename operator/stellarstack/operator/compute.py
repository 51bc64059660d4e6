"""Pure decisions for the Kubernetes side: observed objects (plain dicts) in, facts out.

The per-step GameServer decision itself is `stellarstack.api.lifecycle.compute_step`, shared
with nodeproxy; this module only translates what Kubernetes shows (a Pod, a Job, Services) into
that decision's inputs (`ProcessStatus`, `InstallOutcome`) and into `status.address/ports`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Condition
from stellarstack.api.gameserver import ExposureType, GameServerStatus, PortStatus
from stellarstack.api.runtime import InstallOutcome, ProcessPhase, ProcessStatus
from stellarstack.api.states import BlueprintPhase, GameServerState
from stellarstack.api.workload import Workload
from stellarstack.operator.builders import GAME_CONTAINER

Manifest = dict[str, Any]


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _game_status(pod: Manifest) -> Manifest | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == GAME_CONTAINER), None)


def compute_process(pod: Manifest | None) -> ProcessStatus:
    """The game process as `compute_step` sees it.

    A Pod that exists and has not ended counts as RUNNING even while it is still scheduled or
    pulling: with `restartPolicy: Never` the operator started it, and the lifecycle must not
    mistake "not started yet" for a crash. Starting covers that time; readiness decides Running.
    """
    if pod is None:
        return ProcessStatus(phase=ProcessPhase.ABSENT)
    status = _game_status(pod)
    state = (status or {}).get("state") or {}
    terminated = state.get("terminated")
    phase = (pod.get("status") or {}).get("phase")
    if terminated or phase in {"Succeeded", "Failed"}:
        terminated = terminated or {}
        code = terminated.get("exitCode")
        return ProcessStatus(
            phase=ProcessPhase.EXITED,
            exit_code=None if code is None else int(code),
            oom_killed=terminated.get("reason") == "OOMKilled",
            started_at=_time(terminated.get("startedAt")),
            finished_at=_time(terminated.get("finishedAt")),
        )
    running = state.get("running") or {}
    return ProcessStatus(phase=ProcessPhase.RUNNING, started_at=_time(running.get("startedAt")))


def container_running(pod: Manifest | None) -> bool:
    """The game container's process runs now (its logs and stdin are there)."""
    status = _game_status(pod or {})
    return bool(status and (status.get("state") or {}).get("running"))


def waiting_reason(pod: Manifest | None) -> str | None:
    """Why a created Pod does not run yet (`Unschedulable: ... free ports`, `ErrImageNeverPull`),
    for the status message."""
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            return f"{reason}: {condition.get('message') or ''}".rstrip(": ")
    # The init container (config-file edits) runs first: its image missing is why the game waits.
    for init in ((pod or {}).get("status") or {}).get("initContainerStatuses") or []:
        waiting = (init.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in _STARTING_REASONS:
            message = waiting.get("message") or ""
            return f"init container {init.get('name')}: {waiting['reason']}: {message}".rstrip(": ")
    status = _game_status(pod or {})
    waiting = ((status or {}).get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if reason not in _STARTING_REASONS:
        message = waiting.get("message") or ""
        return f"{reason}: {message}".rstrip(": ")
    return None


# Waiting reasons that only mean "on its way", not "blocked".
_STARTING_REASONS = {None, "", "ContainerCreating", "PodInitializing"}


def compute_install_outcome(job: Manifest, log_tail: str) -> InstallOutcome | None:
    """The install Job's result, or None while it has not finished."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if status.get("succeeded") or conditions.get("Complete", {}).get("status") == "True":
        return InstallOutcome(succeeded=True, exit_code=0, log_tail=log_tail)
    failed = conditions.get("Failed", {})
    if status.get("failed") or failed.get("status") == "True":
        reason = failed.get("reason") or "Failed"
        tail = log_tail
        if reason == "DeadlineExceeded":
            tail += "\ninstall timed out"
        return InstallOutcome(succeeded=False, exit_code=None, log_tail=tail.strip())
    return None


def console_ready(lines: list[str], workload: Workload) -> bool:
    """The blueprint's console readiness pattern appeared in this run's output."""
    readiness = workload.readiness
    for line in lines:
        for pattern in readiness.console_patterns:
            if readiness.console_regex:
                if re.search(pattern, line):
                    return True
            elif pattern in line:
                return True
    return False


def compute_endpoints(
    workload: Workload, pod: Manifest | None, services: list[Manifest]
) -> tuple[str | None, list[PortStatus]]:
    """Where players connect: `status.address` and `status.ports` for the exposure type."""
    pod_status = (pod or {}).get("status") or {}
    node_ip = pod_status.get("hostIP")
    service = services[0] if services else {}
    by_key = {
        (p.get("protocol", "TCP"), p.get("targetPort", p.get("port"))): p
        for p in (service.get("spec") or {}).get("ports") or []
    }
    address: str | None = None
    ports: list[PortStatus] = []
    for port in workload.ports:
        published: int | None = None
        if workload.exposure is ExposureType.HOST_PORT:
            address, published = node_ip, port.host_port
        else:
            entry = by_key.get((port.protocol, port.container_port)) or {}
            spec = service.get("spec") or {}
            if workload.exposure is ExposureType.NODE_PORT:
                address, published = node_ip, entry.get("nodePort")
            elif workload.exposure is ExposureType.LOAD_BALANCER:
                ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get(
                    "ingress"
                ) or [{}]
                address = ingress[0].get("ip") or ingress[0].get("hostname")
                published = entry.get("port")
            else:
                address, published = spec.get("clusterIP"), entry.get("port")
        if published is None:
            continue
        ports.append(
            PortStatus(
                name=port.name,
                protocol=port.protocol,
                port=int(published),
                container_port=port.container_port,
            )
        )
    if address is None:
        return None, []
    return address, ports


def compute_blueprint_status(document: Manifest) -> dict[str, Any]:
    """Check a Blueprint with the models: `phase` Ready or Invalid, every problem by field."""
    spec_only = {k: v for k, v in document.items() if k != "status"}
    problems: list[str] = []
    try:
        Blueprint.model_validate(spec_only)
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"])
            problems.append(f"{where}: {item['msg']}" if where else item["msg"])
    phase = BlueprintPhase.INVALID if problems else BlueprintPhase.READY
    generation = (document.get("metadata") or {}).get("generation")
    return {
        "phase": phase.value,
        "problems": problems,
        "observedGeneration": generation,
    }


def compute_conditions(
    status: GameServerStatus, *, blueprint_found: bool, problems: tuple[str, ...], now: datetime
) -> list[Condition]:
    """The standard conditions `BlueprintReady`, `Installed` and `Ready` for a status; a
    condition keeps its `lastTransitionTime` while its `status` does not change."""
    if not blueprint_found:
        blueprint = ("False", "BlueprintNotFound", status.message)
    elif problems:
        blueprint = ("False", "InvalidSpec", "; ".join(problems))
    else:
        blueprint = ("True", "Ready", "")
    install = status.install
    if install is None:
        installed = ("Unknown", "NotInstalled", "")
    elif install.result == "Succeeded":
        installed = ("True", "Succeeded", "")
    else:
        installed = ("False", "Failed", "see status.install.message")
    if status.state is GameServerState.RUNNING:
        ready = ("True", "Running", "")
    else:
        ready = ("False", status.state.value, status.message)
    previous = {c.type: c for c in status.conditions}
    conditions: list[Condition] = []
    for kind, (state, reason, message) in (
        ("BlueprintReady", blueprint),
        ("Installed", installed),
        ("Ready", ready),
    ):
        before = previous.get(kind)
        since = before.last_transition_time if before and before.status == state else now
        conditions.append(
            Condition(
                type=kind,
                status=state,
                reason=reason,
                message=message,
                last_transition_time=since,
                observed_generation=status.observed_generation,
            )
        )
    return conditions
