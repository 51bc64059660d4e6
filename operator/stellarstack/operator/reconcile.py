"""One GameServer's reconcile loop on Kubernetes: observe, `compute_step`, act, write status.

The decision is the shared pure `stellarstack.api.lifecycle.compute_step` (the same one the
Docker node agent uses), which is possible because the game runs in a bare Pod that never
restarts by itself (see `builders`). This module only observes Kubernetes objects and carries
out the one action each step asks for:

* START: ensure the volume and Services, remove a finished Pod of an earlier run, create the Pod.
* STOP: the blueprint's console command through the attach API (or, for a signal, deleting the
  Pod with the grace period, so the kubelet signals it), wait the grace period, then kill.
* KILL: delete the Pod with no grace period.
* INSTALL: ensure the install Job; `compute_step` expects the outcome in the next step, so while
  the Job runs the loop pauses and looks again shortly.

Every step acts only on what it observes, so an operator restart at any line resumes correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stellarstack.api.blueprint import Blueprint, StopType
from stellarstack.api.constants import LABEL_GAMESERVER
from stellarstack.api.gameserver import GameServer, GameServerStatus
from stellarstack.api.lifecycle import Action, Observation, Step, compute_step
from stellarstack.api.probes import probe
from stellarstack.api.runtime import InstallOutcome, ProcessPhase
from stellarstack.api.states import GameServerState
from stellarstack.api.workload import Workload, WorkloadError, WorkloadSettings, build_workload
from stellarstack.operator import builders
from stellarstack.operator.compute import (
    compute_conditions,
    compute_endpoints,
    compute_install_outcome,
    compute_process,
    console_ready,
    container_running,
    waiting_reason,
)
from stellarstack.operator.kube import Kube, Manifest
from stellarstack.operator.metrics import Metrics

log = logging.getLogger(__name__)

# Enough steps for the longest chain (install → start → ready) plus a stop in between.
_MAX_STEPS = 12
ANNOTATION_BLUEPRINT_SEEN = "stellarstack.io/blueprint-generation"
ANNOTATION_POD_ENDED = "stellarstack.io/pod-ended"
_QUIET_STATES = {GameServerState.STOPPED, GameServerState.SUSPENDED}
_WARNING_STATES = {GameServerState.ERROR, GameServerState.CRASHED, GameServerState.INSTALL_FAILED}
STELLARSTACK_IMAGE_ENV = "STELLARSTACK_IMAGE"


def default_stellarstack_image() -> str:
    """$STELLARSTACK_IMAGE (the Helm chart sets it to the operator's own image), else the image
    `make image` builds for this version."""
    return os.environ.get(STELLARSTACK_IMAGE_ENV) or (
        f"localhost/stellarstack/stellarstack:{version('stellarstack')}"
    )


@dataclass(frozen=True)
class OperatorSettings:
    """Operator-wide choices (passed in; never read from module globals)."""

    workload: WorkloadSettings = field(default_factory=WorkloadSettings)
    resync: timedelta = timedelta(seconds=10)
    """How often an idle GameServer is looked at again (a Pod that exited is seen by then)."""
    busy_resync: timedelta = timedelta(seconds=2)
    quiet_resync: timedelta = timedelta(seconds=60)
    """How often a Stopped or Suspended GameServer without a Pod is looked at again. Nothing
    but a spec change or its Blueprint can move it, and both wake it at once; a short resync
    would only cost a fleet of idle servers two API reads each, every few seconds."""
    """How soon to look again while something is under way (an install, a starting Pod)."""
    readiness_log_lines: int = 5000
    pod_gone_timeout: timedelta = timedelta(seconds=90)
    api_threads: int = 32
    """Blocking API calls in flight at once (threads, and the client's pooled connections)."""
    refusal_retry: timedelta = timedelta(seconds=30)
    """How long a GameServer whose children the API server refused (quota, policy, invalid)
    stays in Error before the operator tries again without a spec change."""
    stellarstack_image: str = field(default_factory=default_stellarstack_image)
    """The StellarStack image, which game Pods run as the init container that applies the
    blueprint's config-file edits to the volume before each start."""


def parse_gameserver(body: Mapping[str, Any]) -> GameServer:
    """The model of a GameServer body as the API server sent it."""
    document = {k: v for k, v in dict(body).items() if k in {"apiVersion", "kind", "metadata"}}
    document["spec"] = dict(body.get("spec") or {})
    status = body.get("status")
    if status:
        try:
            document["status"] = GameServerStatus.model_validate(dict(status)).to_wire()
        except ValidationError:
            log.warning("ignoring an unreadable status of %s", body["metadata"]["name"])
    return GameServer.model_validate(document)


class GameServerReconciler:
    """Reconciles GameServers through one `Kube`."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings or OperatorSettings()
        self.metrics = metrics or Metrics()
        # (namespace, name) -> (generation, why, when): the API server refused a child. Kept in
        # memory only: an operator restart simply tries again.
        self._refused: dict[tuple[str, str], tuple[int | None, str, datetime]] = {}
        # (namespace, Pod name) -> set when that game Pod is seen ending: a stop waits on it.
        self._pod_ends: dict[tuple[str, str], asyncio.Event] = {}

    # -- the loop ------------------------------------------------------------------------

    async def run(
        self, body: Mapping[str, Any], wake: asyncio.Event, stopped: Callable[[], bool]
    ) -> None:
        """Reconcile one GameServer until `stopped()`: when due, or at once when woken.
        `body` is a live view that the caller keeps current."""
        meta = body["metadata"]
        try:
            while not stopped():
                wake.clear()
                began = time.perf_counter()
                try:
                    delay = (await self.reconcile(body)).total_seconds()
                    outcome = "success"
                except Exception as error:  # one failed pass must not end the loop
                    log.exception("reconcile of %s/%s failed", meta.get("namespace"), meta["name"])
                    self.metrics.count_error("GameServer", error)
                    delay, outcome = 5.0, "error"
                self.metrics.observe_reconcile("GameServer", outcome, time.perf_counter() - began)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=delay)
        finally:
            # Deleted, moved to a Docker node, or this operator paused or stopping: either way
            # it is no longer counted here (a resumed loop records it again).
            self.metrics.gameservers.forget(meta.get("namespace") or "default", meta["name"])

    async def notify_pod_ended(self, pod: Mapping[str, Any]) -> None:
        """A game exited: tell its GameServer now (an annotation change is an update event,
        which wakes its loop) rather than at the loop's next idle look. Patching the same
        value again is a no-op for the API server, so repeated Pod events cost nothing."""
        meta = pod["metadata"]
        stopping = self._pod_ends.get((meta.get("namespace") or "", meta.get("name") or ""))
        if stopping is not None:
            stopping.set()
        owner = (meta.get("labels") or {}).get(LABEL_GAMESERVER)
        if owner and meta.get("namespace"):
            await self.kube.annotate_gameserver(
                meta["namespace"], owner, ANNOTATION_POD_ENDED, meta.get("uid") or ""
            )

    async def notify_blueprint_users(self, blueprint: Mapping[str, Any]) -> None:
        """Touch every GameServer using a changed or deleted Blueprint, so each re-reads it
        now instead of at its next idle look."""
        meta = blueprint["metadata"]
        seen = str(meta.get("generation", ""))
        if meta.get("deletionTimestamp"):
            seen += "-deleted"
        for namespace, name in await self.kube.gameservers_using(meta["name"]):
            await self.kube.annotate_gameserver(namespace, name, ANNOTATION_BLUEPRINT_SEEN, seen)

    async def reconcile(self, body: Mapping[str, Any]) -> timedelta:
        """Step one GameServer until there is nothing to do; returns when to look again."""
        try:
            gameserver = parse_gameserver(body)
        except ValidationError as error:
            # Accepted by the API server's schema but refused by the models (a cross-field
            # rule): nothing can be built, so say which field and wait for a fix.
            await self._report_invalid(body, error)
            return self.settings.resync
        namespace = gameserver.metadata.namespace or "default"
        blueprint_doc = await self.kube.read_blueprint(gameserver.spec.blueprint)
        workload: Workload | None = None
        blueprint: Blueprint | None = None
        problems: tuple[str, ...] = ()
        if blueprint_doc is not None:
            try:
                blueprint = Blueprint.model_validate(
                    {k: v for k, v in blueprint_doc.items() if k != "status"}
                )
            except ValidationError as error:
                first = error.errors()[0]
                problems = (
                    f"spec.blueprint: Blueprint {gameserver.spec.blueprint} is invalid "
                    f"({'.'.join(map(str, first['loc']))}: {first['msg']})",
                )
            if blueprint is not None:
                try:
                    workload = build_workload(gameserver, blueprint, self.settings.workload)
                except WorkloadError as error:
                    problems = tuple(error.problems)
        problems += self._recent_refusal(gameserver)

        install_outcome: InstallOutcome | None = None
        step: Step | None = None
        for _ in range(_MAX_STEPS):
            pod = await self.kube.read("Pod", namespace, builders.pod_name(workload_name(body)))
            observed = await self._observe(
                gameserver, pod, workload, blueprint_doc is not None, problems, install_outcome
            )
            install_outcome = None
            step = compute_step(gameserver, observed)
            status = await self._with_endpoints(step.status, workload, pod)
            status.conditions = compute_conditions(
                status,
                blueprint_found=blueprint_doc is not None,
                problems=problems,
                now=observed.now,
            )
            if status != gameserver.status:
                await self._write_status(body, gameserver, status)
                gameserver = gameserver.model_copy(update={"status": status})
            self.metrics.gameservers.record(namespace, workload_name(body), status.state)
            if step.action is Action.NONE:
                return self._next_look(step, status, pod)
            try:
                if step.action is Action.INSTALL:
                    assert workload is not None  # compute_step installs only valid servers
                    install_outcome = await self.install(workload, gameserver)
                    if install_outcome is None:
                        return self.settings.busy_resync
                else:
                    await self._act(step.action, workload, gameserver, blueprint)
            except ApiException as error:
                if error.status not in _REFUSALS:
                    raise
                self.metrics.count_error("GameServer", error)
                # Forbidden (quota, admission policy) or invalid: the next step reports it as
                # an Error with the API server's own words, instead of retrying blindly.
                why = (
                    f"the API server refused a child object ({error.status}): {_api_message(error)}"
                )
                key = (namespace, workload_name(body))
                self._refused[key] = (gameserver.metadata.generation, why, datetime.now(UTC))
                problems += (why,)
        log.warning("%s/%s did not settle in %d steps", namespace, workload_name(body), _MAX_STEPS)
        return self.settings.busy_resync

    def _recent_refusal(self, gameserver: GameServer) -> tuple[str, ...]:
        key = (gameserver.metadata.namespace or "default", gameserver.metadata.name or "")
        refused = self._refused.get(key)
        if refused is None:
            return ()
        generation, why, when = refused
        fresh = datetime.now(UTC) - when < self.settings.refusal_retry
        if generation == gameserver.metadata.generation and fresh:
            return (why,)
        del self._refused[key]
        return ()

    async def _report_invalid(self, body: Mapping[str, Any], error: ValidationError) -> None:
        problems = [f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()]
        message = "; ".join(problems)
        meta = body["metadata"]
        self.metrics.gameservers.record(meta["namespace"], meta["name"], GameServerState.ERROR)
        current = dict(body.get("status") or {})
        if current.get("state") == GameServerState.ERROR and current.get("message") == message:
            return
        status = {
            "state": GameServerState.ERROR.value,
            "reason": "InvalidSpec",
            "message": message,
            "observedGeneration": meta.get("generation"),
            "stateSince": datetime.now(UTC).isoformat(),
        }
        await self.kube.patch_gameserver_status(meta["namespace"], meta["name"], status)
        await self.kube.post_event(dict(body), "Warning", "InvalidSpec", message)

    def _next_look(self, step: Step, status: GameServerStatus, pod: Manifest | None) -> timedelta:
        if step.requeue_after is not None:
            return max(step.requeue_after, timedelta(seconds=1))
        if status.state in {GameServerState.STARTING, GameServerState.STOPPING}:
            return self.settings.busy_resync
        if pod is None and status.state in _QUIET_STATES:
            return self.settings.quiet_resync
        return self.settings.resync

    async def _observe(
        self,
        gameserver: GameServer,
        pod: Manifest | None,
        workload: Workload | None,
        blueprint_found: bool,
        problems: tuple[str, ...],
        install_outcome: InstallOutcome | None,
    ) -> Observation:
        process = compute_process(pod)
        ready = False
        if workload is not None and container_running(pod):
            ready = await self._ready(gameserver, workload, pod)
        return Observation(
            process=process,
            now=datetime.now(UTC),
            ready=ready,
            install_outcome=install_outcome,
            blueprint_found=blueprint_found,
            problems=problems,
            has_install_step=workload is None or workload.install is not None,
            readiness_timeout=(
                None if workload is None else timedelta(seconds=workload.readiness.timeout_seconds)
            ),
        )

    async def _ready(
        self, gameserver: GameServer, workload: Workload, pod: Manifest | None
    ) -> bool:
        state = gameserver.status.state if gameserver.status else GameServerState.PENDING
        if state is GameServerState.RUNNING:
            return True
        if workload.readiness.console_patterns:
            # One Pod per run: its log is exactly this run's console.
            lines = await self.kube.pod_log(
                workload.namespace or "default",
                builders.pod_name(workload.name),
                builders.GAME_CONTAINER,
                self.settings.readiness_log_lines,
            )
            return console_ready(lines, workload)
        if workload.probe is None:
            return True  # no readiness defined: running is ready
        pod_ip = ((pod or {}).get("status") or {}).get("podIP")
        if not pod_ip:
            return False
        return await probe(
            pod_ip,
            workload.probe.container_port,
            workload.probe.type,
            workload.probe.payload,
            workload.probe.path,
        )

    async def _with_endpoints(
        self, status: GameServerStatus, workload: Workload | None, pod: Manifest | None
    ) -> GameServerStatus:
        status = status.model_copy(deep=True)
        if workload is None or not container_running(pod):
            status.address, status.ports = None, []
            if status.state is GameServerState.STARTING and (reason := waiting_reason(pod)):
                status.message = reason
            if pod is None:
                status.node = None
            return status
        services = await self.kube.list_services(
            workload.namespace or "default", f"{LABEL_GAMESERVER}={workload.name}"
        )
        status.address, status.ports = compute_endpoints(workload, pod, services)
        status.node = ((pod or {}).get("spec") or {}).get("nodeName")
        return status

    async def _write_status(
        self, body: Mapping[str, Any], before: GameServer, status: GameServerStatus
    ) -> None:
        meta = body["metadata"]
        wire = status.model_dump(mode="json", by_alias=True)
        await self.kube.patch_gameserver_status(meta["namespace"], meta["name"], wire)
        old = before.status.state if before.status else None
        old_reason = before.status.reason if before.status else None
        if status.state != old or status.reason != old_reason:
            warning = status.state in _WARNING_STATES or status.reason == "BlueprintNotFound"
            await self.kube.post_event(
                dict(body),
                "Warning" if warning else "Normal",
                status.reason or status.state.value,
                f"{status.state.value}: {status.message}" if status.message else status.state.value,
            )

    # -- actions -------------------------------------------------------------------------

    async def _act(
        self,
        action: Action,
        workload: Workload | None,
        gameserver: GameServer,
        blueprint: Blueprint | None,
    ) -> None:
        namespace = gameserver.metadata.namespace or "default"
        name = gameserver.metadata.name or ""
        if action is Action.START:
            assert workload is not None  # compute_step starts only valid servers
            await self.start(workload, gameserver)
        elif action is Action.STOP:
            await self.stop(namespace, name, blueprint)
        elif action is Action.KILL:
            await self.kill(namespace, name)

    async def ensure_storage_and_services(self, workload: Workload, gameserver: GameServer) -> None:
        await self.kube.ensure(builders.desired_pvc(workload, gameserver))
        for service in builders.desired_services(workload, gameserver):
            await self.kube.ensure(service, update_spec=True)

    async def start(self, workload: Workload, gameserver: GameServer) -> None:
        namespace = workload.namespace or "default"
        await self.ensure_storage_and_services(workload, gameserver)
        name = builders.pod_name(workload.name)
        # The Pod of an earlier run (finished, or killed) must be gone before the new one.
        if await self.kube.read("Pod", namespace, name) is not None:
            await self.kube.delete("Pod", namespace, name, grace_seconds=0)
            await self._wait_pod_gone(namespace, name)
        await self.kube.ensure(
            builders.desired_pod(
                workload,
                gameserver,
                self.settings.workload,
                stellarstack_image=self.settings.stellarstack_image,
            )
        )

    async def stop(self, namespace: str, name: str, blueprint: Blueprint | None) -> None:
        """The blueprint's stop method, then a kill once the grace period is over."""
        pod_name = builders.pod_name(name)
        pod = await self.kube.read("Pod", namespace, pod_name)
        if pod is None:
            return
        if not container_running(pod):
            # Not started (or already ended): nothing to stop gracefully.
            if compute_process(pod).phase is not ProcessPhase.EXITED:
                await self.kube.delete("Pod", namespace, pod_name, grace_seconds=0)
            return
        method = blueprint.spec.stop if blueprint is not None else None
        grace = method.grace_period_seconds if method is not None else 30
        # Registered before the stop is sent, so an end seen meanwhile is not missed.
        key = (namespace, pod_name)
        ended = self._pod_ends.setdefault(key, asyncio.Event())
        try:
            if method is not None and method.type is StopType.COMMAND and method.command:
                try:
                    await self.kube.send_console(
                        namespace, pod_name, builders.GAME_CONTAINER, method.command
                    )
                except Exception as error:  # the attach API failing must not prevent the stop
                    log.warning(
                        "%s/%s: stop command not sent (%s); signalling", namespace, name, error
                    )
                    await self.kube.delete("Pod", namespace, pod_name, grace_seconds=grace)
            else:
                # The kubelet sends the image's stop signal (SIGTERM by default), then SIGKILL.
                await self.kube.delete("Pod", namespace, pod_name, grace_seconds=grace)
            deadline = time.monotonic() + grace
            while (left := deadline - time.monotonic()) > 0:
                pod = await self.kube.read("Pod", namespace, pod_name)
                if pod is None or not container_running(pod):
                    return
                # Woken by the Pod's end (`notify_pod_ended`, from the Pod watch) as soon as the
                # kubelet reports it; the read each second covers an end the watch missed.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), timeout=min(1.0, left))
                ended.clear()
        finally:
            if self._pod_ends.get(key) is ended:
                del self._pod_ends[key]
        log.info("%s/%s did not stop within %d s; killing", namespace, name, grace)
        await self.kill(namespace, name)

    async def kill(self, namespace: str, name: str) -> None:
        pod_name = builders.pod_name(name)
        await self.kube.delete("Pod", namespace, pod_name, grace_seconds=0)
        await self._wait_pod_gone(namespace, pod_name)

    async def _wait_pod_gone(self, namespace: str, name: str) -> None:
        deadline = time.monotonic() + self.settings.pod_gone_timeout.total_seconds()
        while await self.kube.read("Pod", namespace, name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} still exists after deletion")
            await asyncio.sleep(0.5)

    async def install(self, workload: Workload, gameserver: GameServer) -> InstallOutcome | None:
        """Ensure the install Job; its outcome once it finished, else None (look again)."""
        if workload.install is None:
            return InstallOutcome(succeeded=True, exit_code=0, log_tail="")
        namespace = workload.namespace or "default"
        job_name = builders.install_name(workload.name)
        request = gameserver.spec.reinstall_request or ""
        await self.ensure_storage_and_services(workload, gameserver)
        job = await self.kube.read("Job", namespace, job_name)
        annotations = ((job or {}).get("metadata") or {}).get("annotations") or {}
        if job is not None and annotations.get(builders.ANNOTATION_INSTALL_REQUEST) != request:
            # A Job of an earlier request: its result answers nothing now.
            await self.kube.delete("Job", namespace, job_name)
            return None
        if job is None:
            await self.kube.ensure(
                builders.desired_install_config_map(workload, gameserver), update_spec=True
            )
            await self.kube.ensure(
                builders.desired_install_job(
                    workload, gameserver, self.settings.workload, request=request
                )
            )
            return None
        tail = await self.kube.job_log_tail(namespace, job_name, 50)
        outcome = compute_install_outcome(job, tail)
        if outcome is not None:
            await self.kube.delete("Job", namespace, job_name)
        return outcome

    # -- deletion ------------------------------------------------------------------------

    async def delete(self, body: Mapping[str, Any]) -> None:
        """Stop gracefully, delete every child, and the volume unless it is retained."""
        gameserver = parse_gameserver(body)
        namespace = gameserver.metadata.namespace or "default"
        name = gameserver.metadata.name or ""
        blueprint: Blueprint | None = None
        blueprint_doc = await self.kube.read_blueprint(gameserver.spec.blueprint)
        if blueprint_doc is not None:
            with contextlib.suppress(ValidationError):
                blueprint = Blueprint.model_validate(
                    {k: v for k, v in blueprint_doc.items() if k != "status"}
                )
        self._refused.pop((namespace, name), None)
        await self.stop(namespace, name, blueprint)
        # Independent of each other, so at once. The volume may go before the Pod is gone:
        # the API server keeps a claim in use (its protection finalizer) until then.
        await asyncio.gather(
            self._remove_game_pod(namespace, name),
            self.kube.delete("Job", namespace, builders.install_name(name)),
            self.kube.delete("ConfigMap", namespace, builders.install_name(name)),
            self.kube.delete("Service", namespace, builders.service_name(name)),
            self._remove_volume(gameserver, namespace, name),
        )
        self.metrics.gameservers.forget(namespace, name)

    async def _remove_game_pod(self, namespace: str, name: str) -> None:
        """Delete the game Pod. Wait until it is gone only while its game may still run: once
        the game container has ended, what is left is the kubelet's bookkeeping, and the Pod
        goes with it (owned by the GameServer as well)."""
        pod_name = builders.pod_name(name)
        pod = await self.kube.read("Pod", namespace, pod_name)
        if pod is None:
            return
        await self.kube.delete("Pod", namespace, pod_name, grace_seconds=0)
        if compute_process(pod).phase is not ProcessPhase.EXITED:
            await self._wait_pod_gone(namespace, pod_name)

    async def _remove_volume(self, gameserver: GameServer, namespace: str, name: str) -> None:
        """Delete the data volume, or, when it is retained, let it outlive the GameServer."""
        pvc = builders.pvc_name(name)
        if not gameserver.spec.storage.retain_on_delete:
            await self.kube.delete("PersistentVolumeClaim", namespace, pvc)
            return
        # Drop the owner so garbage collection keeps the volume after the GameServer goes.
        existing = await self.kube.read("PersistentVolumeClaim", namespace, pvc)
        if existing is not None and existing["metadata"].get("ownerReferences"):
            await asyncio.to_thread(
                self.kube.core.patch_namespaced_persistent_volume_claim,
                pvc,
                namespace,
                {"metadata": {"ownerReferences": None}},
            )


_REFUSALS = {400, 403, 422}


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


def workload_name(body: Mapping[str, Any]) -> str:
    return str(body["metadata"]["name"])
