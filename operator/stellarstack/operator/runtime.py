"""`GameServerRuntime` on Kubernetes: the server is the operator's own Pod, driven directly.

`KubernetesRuntime` lets a caller that is not the operator (the panel's console, a test, a
script) run and watch game servers through the same interface as the Docker node agent. Every
object it makes comes from the operator's pure builders (`builders.desired_pod`, `desired_pvc`,
`desired_services`, `desired_install_job`), so a Pod it creates is the Pod the operator would
create; when a GameServer object of that name exists, its children are owned by it exactly as
the operator's are. See docs/operator.md, "The Kubernetes runtime", for the choices below.

How the contract maps onto Kubernetes (a bare Pod cannot be paused, restarted or signalled):

* **ensure** creates the data volume and Services and stores the desired Pod in a ConfigMap
  (`<name>-workload`): a Pod starts the moment it exists, so "created, not started" cannot be a
  Pod. **start** creates the Pod from that ConfigMap (after removing the Pod of an earlier run)
  and waits until the game container runs.
* **stop** with a console command writes it to stdin through the pods attach API. With a signal
  it sets the Pod's `activeDeadlineSeconds` to 1: the kubelet then sends the container's stop
  signal (SIGTERM unless the image declares another; the API cannot choose one) and SIGKILL
  after the Pod's grace period, and the Pod, its exit code and its log stay readable. Deleting
  the Pod would signal it too, but the kubelet removes a deleted Pod's containers and their log
  at once.
* **kill** deletes the Pod with no grace period, after putting a finalizer on it so that its
  exit status stays readable until the next start, ensure or destroy. The kubelet never sends
  SIGKILL first: it sends the stop signal and SIGKILL at most 2 s later (its minimum grace), so
  a game that handles SIGTERM exits with its own code. The killed run's log is gone.
* **console**: output is the container log followed (`follow=True`, `tailLines=backlog`), which
  gives the backlog and then live output in one stream, with no gap or repeat between the two
  that a log read plus an attach would have; input goes to stdin through the attach API.
* **stats** come from metrics.k8s.io when the cluster serves it; network and volume usage are
  never available to a namespaced API client, and every missing figure is named in
  `ResourceStats.unavailable` with the reason.

The Kubernetes client blocks, so every call runs in a worker thread; power actions are
serialised per server with one lock each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stellarstack.api.blueprint import StopMethod, StopType
from stellarstack.api.constants import GROUP, LABEL_BLUEPRINT, VERSION
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import (
    ConsoleSession,
    ImageUnavailableError,
    InstallOutcome,
    ProcessPhase,
    ProcessStatus,
    ResourceStats,
    RuntimeFailureError,
    ServerKey,
    ServerNotFoundError,
    ServerNotRunningError,
)
from stellarstack.api.workload import Workload, WorkloadSettings
from stellarstack.operator import builders
from stellarstack.operator.compute import compute_install_outcome
from stellarstack.operator.kube import Kube, Manifest
from stellarstack.operator.kubestream import write_stdin
from stellarstack.operator.runtimeplan import (
    FINALIZER_KEEP_STATUS,
    IMAGE_REASONS,
    compute_runtime_status,
    compute_stats,
    container_started,
    desired_workload_config_map,
    install_exit_code,
    pod_hash,
    runnable_pod,
    stored_pod,
    waiting_problem,
    with_spec_hash,
    without_owner,
    workload_config_map_name,
)

# The client's loaders carry no type hints; treat the module as dynamic.
config: Any = _config

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_MERGE_PATCH = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_INSTALL_LOG_LINES = 50
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class KubernetesRuntimeSettings:
    """Choices of one `KubernetesRuntime` (passed in; never read from module globals)."""

    workload: WorkloadSettings = field(default_factory=WorkloadSettings)
    """Must match the settings workloads are built with (user, data and install paths)."""
    start_timeout_seconds: float = 120.0
    """How long `start` waits for the game container to run (scheduling, volume, image)."""
    pod_gone_timeout_seconds: float = 90.0
    """How long a removed Pod (or a deleted volume) may take to disappear."""
    kill_timeout_seconds: float = 30.0
    """How long `kill` waits for the kubelet to report the killed container."""
    signal_margin_seconds: float = 10.0
    """Added to the grace period of a signal stop: the kubelet's own SIGKILL comes after the
    Pod's grace period, counted from when it noticed the deadline."""
    install_margin_seconds: float = 120.0
    """Added to an install's own timeout for scheduling its Pod and binding the volume."""
    metrics_recheck_seconds: float = 60.0
    """How long the answer to "does the cluster serve metrics.k8s.io" is reused."""


class KubernetesRuntime:
    """Runs and watches game servers as bare Pods through the Kubernetes API.

    Construct it with an `ApiClient` of its own, or with `from_kubeconfig(path)` outside a
    cluster or `in_cluster()` inside a Pod with a service account; it never reads or changes
    the Kubernetes client's process-wide default configuration.

    The console, log, status and stats methods work on any game server Pod, including the ones
    the operator runs for GameServer objects (a panel needs `get` on pods, pods/log and
    configmaps, `get` and `create` on pods/attach, and `get` on metrics.k8s.io pods). The
    power methods (ensure, install, start, stop, kill, destroy) drive the Pod themselves: use
    them for servers that no operator reconciles, since an operator would act on the same Pod
    at the same time.
    """

    def __init__(self, api_client: Any, settings: KubernetesRuntimeSettings | None = None) -> None:
        self._kube = Kube(api_client)
        self._core: Any = self._kube.core
        self._batch: Any = self._kube.batch
        self._custom: Any = self._kube.custom
        self._apis: Any = client.ApisApi(api_client)
        self.settings = settings or KubernetesRuntimeSettings()
        self._locks: dict[ServerKey, asyncio.Lock] = {}
        self._metrics_served: tuple[float, bool] | None = None

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str],
        *,
        context: str | None = None,
        settings: KubernetesRuntimeSettings | None = None,
    ) -> KubernetesRuntime:
        """A runtime that authenticates with the kubeconfig at `path` (its current context, or
        `context`). Refreshed credentials are not written back to the file."""
        api_client = config.new_client_from_config(
            config_file=str(path), context=context, persist_config=False
        )
        return cls(api_client, settings)

    @classmethod
    def in_cluster(
        cls,
        *,
        settings: KubernetesRuntimeSettings | None = None,
        service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] | None = None,
    ) -> KubernetesRuntime:
        """A runtime that authenticates as the Pod's service account: the token and CA in
        `service_account_dir`, the API server from `KUBERNETES_SERVICE_HOST`/`_PORT` in
        `environ` (the process environment by default). The token is re-read as it rotates."""
        directory = Path(service_account_dir)
        configuration = client.Configuration()
        loader = config.incluster_config.InClusterConfigLoader(
            token_filename=str(directory / "token"),
            cert_filename=str(directory / "ca.crt"),
            environ=dict(os.environ if environ is None else environ),
        )
        loader.load_and_set(configuration)
        return cls(client.ApiClient(configuration), settings)

    def _lock(self, key: ServerKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- reading -----------------------------------------------------------------------------

    async def _pod(self, key: ServerKey) -> Manifest | None:
        return await self._kube.read("Pod", key.namespace, builders.pod_name(key.name))

    async def _stored(self, key: ServerKey) -> Manifest | None:
        found = await self._kube.read(
            "ConfigMap", key.namespace, workload_config_map_name(key.name)
        )
        return None if found is None else stored_pod(found)

    async def _owner(self, workload: Workload) -> GameServer:
        """The GameServer object of this name, when one exists, so children are owned by it as
        the operator's are; otherwise a stand-in that carries what the builders read."""
        namespace = _namespace(workload)
        try:
            body: Manifest = await asyncio.to_thread(
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "gameservers",
                workload.name,
            )
        except ApiException as error:
            if error.status != 404:  # 404 also when the CRD is not installed
                raise
        else:
            with contextlib.suppress(ValidationError):
                return GameServer.model_validate(
                    {
                        k: v
                        for k, v in body.items()
                        if k in {"apiVersion", "kind", "metadata", "spec"}
                    }
                )
        return GameServer.model_validate(
            {
                "kind": "GameServer",
                "metadata": {"name": workload.name, "namespace": namespace},
                "spec": {
                    "blueprint": workload.labels.get(LABEL_BLUEPRINT) or "unknown",
                    "exposure": {"type": workload.exposure.value},
                },
            }
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def ensure(self, workload: Workload) -> bool:
        key = _key(workload)
        async with self._lock(key):
            return await self._ensure(key, workload)

    async def _ensure(self, key: ServerKey, workload: Workload) -> bool:
        gameserver = await self._owner(workload)
        owned = gameserver.metadata.uid is not None

        def fix(manifest: Manifest) -> Manifest:
            return manifest if owned else without_owner(manifest)

        await self._kube.ensure(fix(builders.desired_pvc(workload, gameserver)))
        for service in builders.desired_services(workload, gameserver):
            await self._kube.ensure(fix(service), update_spec=True)
        desired = with_spec_hash(
            fix(builders.desired_pod(workload, gameserver, self.settings.workload))
        )
        # Stored first: while a Pod runs, the change waits here for the next start.
        await self._kube.ensure(desired_workload_config_map(workload, desired))
        pod = await self._pod(key)
        if pod is None or pod_hash(pod) == pod_hash(desired):
            return True
        if compute_runtime_status(pod, workload_stored=True).phase is ProcessPhase.RUNNING:
            return False
        await self._remove_pod(key)
        return True

    async def install(self, workload: Workload) -> InstallOutcome:
        if workload.install is None:
            return InstallOutcome(succeeded=True, exit_code=0, log_tail="")
        key = _key(workload)
        async with self._lock(key):
            return await self._install(key, workload)

    async def _install(self, key: ServerKey, workload: Workload) -> InstallOutcome:
        assert workload.install is not None
        gameserver = await self._owner(workload)
        owned = gameserver.metadata.uid is not None

        def fix(manifest: Manifest) -> Manifest:
            return manifest if owned else without_owner(manifest)

        namespace, job_name = key.namespace, builders.install_name(key.name)
        await self._kube.ensure(fix(builders.desired_pvc(workload, gameserver)))
        await self._remove_job(namespace, job_name)
        await self._kube.ensure(
            fix(builders.desired_install_config_map(workload, gameserver)), update_spec=True
        )
        await self._kube.ensure(
            fix(builders.desired_install_job(workload, gameserver, self.settings.workload))
        )
        deadline = time.monotonic() + workload.install.timeout_seconds
        deadline += self.settings.install_margin_seconds
        outcome: InstallOutcome | None = None
        try:
            while outcome is None:
                job = await self._kube.read("Job", namespace, job_name)
                if job is None:
                    raise RuntimeFailureError(f"{key}: the install Job disappeared")
                tail = await self._kube.job_log_tail(namespace, job_name, _INSTALL_LOG_LINES)
                outcome = compute_install_outcome(job, tail)
                if outcome is None:
                    if time.monotonic() > deadline:
                        return InstallOutcome(
                            succeeded=False,
                            exit_code=None,
                            log_tail=f"{tail}\ninstall did not finish in time".strip(),
                        )
                    await asyncio.sleep(_POLL_SECONDS)
            pods = await asyncio.to_thread(
                self._core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}"
            )
            code = install_exit_code(
                [self._kube.api_client.sanitize_for_serialization(pod) for pod in pods.items]
            )
        finally:
            await self._kube.delete("Job", namespace, job_name)
            await self._kube.delete("ConfigMap", namespace, job_name)
        return InstallOutcome(
            succeeded=outcome.succeeded,
            exit_code=code if code is not None else outcome.exit_code,
            log_tail=outcome.log_tail,
        )

    async def start(self, key: ServerKey) -> None:
        async with self._lock(key):
            await self._start(key)

    async def _start(self, key: ServerKey) -> None:
        pod = await self._pod(key)
        if pod is not None and not _deleting(pod):
            phase = compute_runtime_status(pod, workload_stored=True).phase
            if phase is ProcessPhase.RUNNING:
                return
            if phase is ProcessPhase.CREATED:  # started earlier, not running yet
                await self._await_started(key)
                return
        stored = await self._stored(key)
        if stored is None:
            raise ServerNotFoundError(f"{key}: no stored workload; ensure the server first")
        if pod is not None:
            # Each run is its own Pod: the one of the earlier run goes first.
            await self._remove_pod(key)
        try:
            await asyncio.to_thread(
                self._core.create_namespaced_pod, key.namespace, runnable_pod(stored)
            )
        except ApiException as error:
            if error.status != 409:  # a concurrent start created it: wait for that one
                raise
        await self._await_started(key)

    async def _await_started(self, key: ServerKey) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        while True:
            pod = await self._pod(key)
            if pod is None:
                raise RuntimeFailureError(f"{key}: the Pod disappeared while starting")
            if container_started(pod):
                return
            problem = waiting_problem(pod)
            if problem is not None or time.monotonic() > deadline:
                # A Pod that cannot run must not hold its ports or keep retrying a pull.
                await self._remove_pod(key)
                if problem is None:
                    raise RuntimeFailureError(
                        f"{key}: the game container did not start within "
                        f"{self.settings.start_timeout_seconds:.0f} s ({_pending_reason(pod)})"
                    )
                reason, message = problem
                error = ImageUnavailableError if reason in IMAGE_REASONS else RuntimeFailureError
                raise error(f"{key}: {reason}: {message}")
            await asyncio.sleep(_POLL_SECONDS)

    async def stop(self, key: ServerKey, method: StopMethod) -> ProcessStatus:
        async with self._lock(key):
            return await self._stop(key, method)

    async def _stop(self, key: ServerKey, method: StopMethod) -> ProcessStatus:
        pod = await self._require_anything(key)
        if pod is None:
            return await self._status(key)
        phase = compute_runtime_status(pod, workload_stored=True).phase
        if phase is ProcessPhase.CREATED and not _deleting(pod):
            # Never ran: nothing to stop gracefully, and it must not start later.
            await self._remove_pod(key)
        if phase is not ProcessPhase.RUNNING:
            return await self._status(key)
        grace = float(method.grace_period_seconds)
        if method.type is StopType.COMMAND and method.command:
            try:
                await self._write_stdin(key, method.command)
            except (ApiException, OSError, RuntimeFailureError, ValueError):
                await self._signal(key)  # the attach API failing must not prevent the stop
                grace += self.settings.signal_margin_seconds
        elif method.signal.value == "SIGKILL":
            await self._kill(key)
            return await self._status(key)
        else:
            await self._signal(key)
            grace += self.settings.signal_margin_seconds
        if not await self._wait_not_running(key, grace):
            await self._kill(key)
        return await self._status(key)

    async def _signal(self, key: ServerKey) -> None:
        """Have the kubelet send the stop signal, then SIGKILL after the grace period, while
        the Pod (and its exit code and log) stays."""
        try:
            await asyncio.to_thread(
                self._core.patch_namespaced_pod,
                builders.pod_name(key.name),
                key.namespace,
                {"spec": {"activeDeadlineSeconds": 1}},
                _content_type=_MERGE_PATCH,
            )
        except ApiException as error:
            # Gone, or a deadline at least as short is set already: the kubelet acts anyway.
            if error.status not in {404, 422}:
                raise

    async def _wait_not_running(self, key: ServerKey, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            pod = await self._pod(key)
            if compute_runtime_status(pod, workload_stored=True).phase is not ProcessPhase.RUNNING:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)

    async def kill(self, key: ServerKey) -> None:
        async with self._lock(key):
            await self._kill(key)

    async def _kill(self, key: ServerKey) -> None:
        pod = await self._require_anything(key)
        if pod is None:
            return
        phase = compute_runtime_status(pod, workload_stored=True).phase
        if phase is ProcessPhase.EXITED:
            return
        if phase is ProcessPhase.CREATED:
            await self._remove_pod(key)
            return
        name = builders.pod_name(key.name)
        finalizers = list(pod["metadata"].get("finalizers") or [])
        # An object being deleted takes no new finalizer; someone else's deletion is under way.
        if FINALIZER_KEEP_STATUS not in finalizers and not _deleting(pod):
            await asyncio.to_thread(
                self._core.patch_namespaced_pod,
                name,
                key.namespace,
                {"metadata": {"finalizers": [*finalizers, FINALIZER_KEEP_STATUS]}},
                _content_type=_MERGE_PATCH,
            )
        await self._kube.delete("Pod", key.namespace, name, grace_seconds=0)
        deadline = time.monotonic() + self.settings.kill_timeout_seconds
        while time.monotonic() < deadline:
            pod = await self._pod(key)
            if compute_runtime_status(pod, workload_stored=True).phase is not ProcessPhase.RUNNING:
                return
            await asyncio.sleep(_POLL_SECONDS)
        raise RuntimeFailureError(
            f"{key}: the kubelet did not report the killed container within "
            f"{self.settings.kill_timeout_seconds:.0f} s"
        )

    async def destroy(self, key: ServerKey, *, keep_data: bool) -> None:
        async with self._lock(key):
            await self._destroy(key, keep_data)
        self._locks.pop(key, None)

    async def _destroy(self, key: ServerKey, keep_data: bool) -> None:
        namespace, name = key.namespace, key.name
        await self._remove_pod(key)
        await self._remove_job(namespace, builders.install_name(name))
        await self._kube.delete("ConfigMap", namespace, builders.install_name(name))
        await self._kube.delete("ConfigMap", namespace, workload_config_map_name(name))
        await self._kube.delete("Service", namespace, builders.service_name(name))
        if not keep_data:
            claim = builders.pvc_name(name)
            await self._kube.delete("PersistentVolumeClaim", namespace, claim)
            await self._wait_gone("PersistentVolumeClaim", namespace, claim)

    async def _remove_pod(self, key: ServerKey) -> None:
        """Delete the Pod at once (dropping the kill finalizer) and wait until it is gone."""
        name = builders.pod_name(key.name)
        pod = await self._pod(key)
        if pod is None:
            return
        finalizers = pod["metadata"].get("finalizers") or []
        if FINALIZER_KEEP_STATUS in finalizers:
            keep = [f for f in finalizers if f != FINALIZER_KEEP_STATUS]
            with contextlib.suppress(ApiException):  # gone already: nothing to release
                await asyncio.to_thread(
                    self._core.patch_namespaced_pod,
                    name,
                    key.namespace,
                    {"metadata": {"finalizers": keep or None}},
                    _content_type=_MERGE_PATCH,
                )
        await self._kube.delete("Pod", key.namespace, name, grace_seconds=0)
        await self._wait_gone("Pod", key.namespace, name)

    async def _remove_job(self, namespace: str, name: str) -> None:
        if await self._kube.read("Job", namespace, name) is None:
            return
        await self._kube.delete("Job", namespace, name)
        await self._wait_gone("Job", namespace, name)

    async def _wait_gone(self, kind: str, namespace: str, name: str) -> None:
        deadline = time.monotonic() + self.settings.pod_gone_timeout_seconds
        while await self._kube.read(kind, namespace, name) is not None:
            if time.monotonic() > deadline:
                raise RuntimeFailureError(f"{kind} {namespace}/{name} still exists after deletion")
            await asyncio.sleep(_POLL_SECONDS)

    async def status(self, key: ServerKey) -> ProcessStatus:
        return await self._status(key)

    async def _status(self, key: ServerKey) -> ProcessStatus:
        pod = await self._pod(key)
        if pod is not None:
            return compute_runtime_status(pod, workload_stored=True)
        return compute_runtime_status(None, workload_stored=await self._stored(key) is not None)

    async def _require_anything(self, key: ServerKey) -> Manifest | None:
        """The Pod (None when only the stored workload exists); raises when neither does."""
        pod = await self._pod(key)
        if pod is None and await self._stored(key) is None:
            raise ServerNotFoundError(f"{key}: no Pod and no stored workload; ensure it first")
        return pod

    # -- console -----------------------------------------------------------------------------

    async def send_command(self, key: ServerKey, line: str) -> None:
        await self._write_stdin(key, line)

    async def _write_stdin(self, key: ServerKey, line: str) -> None:
        if "\n" in line or "\r" in line:
            raise ValueError("a console command is one line")
        pod = await self._require_anything(key)
        status = compute_runtime_status(pod, workload_stored=True)
        if status.phase is not ProcessPhase.RUNNING:
            raise ServerNotRunningError(f"{key}: not running")
        await asyncio.to_thread(self._attach_write, key, line + "\n")

    def _attach_write(self, key: ServerKey, text: str) -> None:
        # On a client of its own (kubestream): callers share this runtime's across threads.
        write_stdin(
            self._kube.api_client,
            key.namespace,
            builders.pod_name(key.name),
            builders.GAME_CONTAINER,
            text,
        )

    async def logs(self, key: ServerKey, *, tail: int, since: datetime | None = None) -> list[str]:
        pod = await self._require_anything(key)
        if pod is None or not container_started(pod):
            return []
        options: dict[str, Any] = {"container": builders.GAME_CONTAINER, "tail_lines": tail}
        if since is not None:
            # The API takes whole seconds back from now; one more keeps the run's first lines.
            elapsed = (datetime.now(UTC) - since).total_seconds()
            options["since_seconds"] = max(1, math.ceil(elapsed) + 1)
        try:
            response = await asyncio.to_thread(
                self._core.read_namespaced_pod_log,
                builders.pod_name(key.name),
                key.namespace,
                _preload_content=False,
                **options,
            )
        except ApiException as error:
            if error.status in {400, 404}:  # not started, or its container already removed
                return []
            raise
        data: bytes = response.data
        return data.decode("utf-8", "replace").splitlines()

    @asynccontextmanager
    async def attach(self, key: ServerKey, *, backlog: int) -> AsyncIterator[ConsoleSession]:
        pod = await self._require_anything(key)
        if pod is None:
            raise ServerNotRunningError(f"{key}: no Pod; start the server first")
        session = _KubernetesConsole(self, key, backlog)
        try:
            await session.open()
            yield session
        finally:
            session.close()

    def _follow_log(self, key: ServerKey, backlog: int) -> Any:
        return self._core.read_namespaced_pod_log(
            builders.pod_name(key.name),
            key.namespace,
            container=builders.GAME_CONTAINER,
            follow=True,
            tail_lines=backlog,
            _preload_content=False,
        )

    # -- stats -------------------------------------------------------------------------------

    async def stats(self, key: ServerKey) -> ResourceStats:
        pod = await self._pod(key)
        if pod is None:
            stored = await self._stored(key)
            if stored is None:
                raise ServerNotFoundError(f"{key}: no Pod and no stored workload")
            return compute_stats(stored, None, metrics_unavailable=None)
        if compute_runtime_status(pod, workload_stored=True).phase is not ProcessPhase.RUNNING:
            return compute_stats(pod, None, metrics_unavailable=None)
        if not await self._metrics_api_served():
            return compute_stats(
                pod,
                None,
                metrics_unavailable="the cluster serves no metrics API (metrics.k8s.io); "
                "install metrics-server for CPU and memory figures",
            )
        try:
            sample: Manifest | None = await asyncio.to_thread(
                self._custom.get_namespaced_custom_object,
                "metrics.k8s.io",
                "v1beta1",
                key.namespace,
                "pods",
                builders.pod_name(key.name),
            )
        except ApiException as error:
            if error.status != 404:  # 404: no sample of this Pod yet
                raise
            sample = None
        return compute_stats(pod, sample, metrics_unavailable=None)

    async def _metrics_api_served(self) -> bool:
        now = time.monotonic()
        cached = self._metrics_served
        if cached is not None and now - cached[0] < self.settings.metrics_recheck_seconds:
            return cached[1]
        groups = await asyncio.to_thread(self._apis.get_api_versions)
        served = any(group.name == "metrics.k8s.io" for group in groups.groups or [])
        self._metrics_served = (now, served)
        return served


class _KubernetesConsole:
    """Output from the followed container log; input through stdin (the attach API)."""

    def __init__(self, runtime: KubernetesRuntime, key: ServerKey, backlog: int) -> None:
        self._runtime = runtime
        self._key = key
        self._backlog = backlog
        self._closed = threading.Event()
        self._following = threading.Event()
        self._response: Any = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)

    async def open(self) -> None:
        """Start following the log, and return once the API server streams it: output written
        after attaching is never missed, even before the client reads `lines()`."""
        loop = asyncio.get_running_loop()
        reader = threading.Thread(target=self._pump, args=(loop, self._queue), daemon=True)
        reader.start()
        await asyncio.to_thread(self._following.wait, 30)

    async def lines(self) -> AsyncIterator[str]:
        while True:
            line = await self._queue.get()
            if line is None:
                self._queue.put_nowait(None)  # a second reader ends as well
                return
            yield line

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        def put(item: str | None) -> None:
            # Blocks this thread (never the event loop) while the client is slow: the kubelet
            # and the API server buffer, not this process. A closed session stops waiting.
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=1)
                    return
                except concurrent.futures.TimeoutError:
                    if self._closed.is_set():
                        future.cancel()
                        return

        try:
            try:
                self._response = self._runtime._follow_log(self._key, self._backlog)
            finally:
                self._following.set()
            if self._closed.is_set():
                self.close()  # closed while the request was under way
                return
            for text in _split_lines(self._response.stream(4096)):
                if self._closed.is_set():
                    break
                put(text)
        except Exception:  # the stream ends with a connection error when closed under it
            pass
        finally:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    put(None)

    async def send(self, line: str) -> None:
        await self._runtime.send_command(self._key, line)

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is None:
            return
        # Shutting the socket down wakes the reader blocked in recv(); close() alone may not.
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            response.close()


def _split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def _namespace(workload: Workload) -> str:
    return workload.namespace or "default"


def _key(workload: Workload) -> ServerKey:
    return ServerKey(_namespace(workload), workload.name)


def _deleting(pod: Manifest) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _pending_reason(pod: Manifest) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return f"{condition.get('reason') or condition.get('type')}: {condition['message']}"
    return f"phase {(pod.get('status') or {}).get('phase') or 'unknown'}"
