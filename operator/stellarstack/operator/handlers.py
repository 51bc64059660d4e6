"""Kopf registrations only; each calls one function of `reconcile`, `compute` or `kube`.

GameServers are reconciled by one daemon per object (a loop like the node agent's, which owns
its own timing: quick while starting or installing, slow when idle). Create, update and resume
events only wake it, so one GameServer is never reconciled by two handlers at once.
GameServers placed on a Docker node are filtered out of every handler: no finalizer, no
children, no status from the operator — their node agent owns them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import kopf

from stellarstack.api.constants import (
    FINALIZER,
    GROUP,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    VERSION,
)
from stellarstack.api.runtime import ProcessPhase
from stellarstack.operator.compute import compute_blueprint_status, compute_process
from stellarstack.operator.kube import Kube, connect
from stellarstack.operator.metrics import Metrics
from stellarstack.operator.reconcile import GameServerReconciler, OperatorSettings

# Kopf keeps its bookkeeping in annotations under our own prefix: the structural schema of
# `status` has no room for Kopf's fields (the API server would prune them).
STORAGE_PREFIX = "operator.stellarstack.io"


def on_kubernetes(spec: kopf.Spec, **_: Any) -> bool:
    """Whether the operator owns this GameServer (not a Docker node's)."""
    placement = spec.get("placement") or {}
    return bool(placement.get("type", "Kubernetes") != "DockerNode")


def _metrics(memo: kopf.Memo) -> Metrics:
    """The process's metrics (`stellarstack operator` puts them in the memo), else new ones."""
    metrics: Metrics = memo.setdefault("metrics", Metrics())
    return metrics


@kopf.on.login()
async def login(memo: kopf.Memo, **kwargs: Any) -> kopf.AiohttpSession | None:
    # Async: the session belongs to the operator's event loop.
    # In a Pod: the client library's in-cluster login (it uses the Service's IP from the
    # environment, so no cluster DNS is needed). Elsewhere: $KUBECONFIG as it is now, because the
    # client library fixed its default kubeconfig path when it was imported.
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        info = kopf.login_via_client(memo=memo, **kwargs)
    else:
        info = kopf.login_with_kubeconfig(memo=memo, **kwargs)
    if info is None:
        return None
    return _counting_session(info, _metrics(memo))


def _counting_session(info: kopf.ConnectionInfo, metrics: Metrics) -> kopf.AiohttpSession:
    """Kopf's own HTTP session, as Kopf would make it, plus a hook counting its requests."""

    async def count(
        _session: aiohttp.ClientSession, _context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        metrics.count_request("kopf", params.method)

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(count)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        trace_configs=[tracing],
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        priority=info.priority,
        aiohttp_session=session,
    )


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    # The reconciler posts its own, meaningful Events; Kopf's per-handler ones are noise.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    if "reconciler" not in memo:
        metrics = _metrics(memo)
        operator_settings = OperatorSettings()
        # Every blocking API call runs in the loop's default executor (`asyncio.to_thread`).
        # Its default size (CPUs + 4) capped a fleet of GameServers at a handful of requests in
        # flight, each waiting on the API server, while the process itself sat mostly idle.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(operator_settings.api_threads, thread_name_prefix="kube")
        )
        memo["reconciler"] = GameServerReconciler(
            Kube(connect(operator_settings.api_threads), metrics), operator_settings, metrics
        )


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler | None = memo.get("reconciler")
    if reconciler is not None:
        reconciler.kube.api_client.close()


# -- GameServer ----------------------------------------------------------------------------


def _wake_event(memo: kopf.Memo) -> asyncio.Event:
    wake: asyncio.Event = memo.setdefault("wake", asyncio.Event())
    return wake


@kopf.on.create(GROUP, VERSION, "gameservers", when=on_kubernetes)
@kopf.on.update(GROUP, VERSION, "gameservers", when=on_kubernetes)
@kopf.on.resume(GROUP, VERSION, "gameservers", when=on_kubernetes)
async def gameserver_changed(memo: kopf.Memo, **_: Any) -> None:
    _wake_event(memo).set()


@kopf.daemon(GROUP, VERSION, "gameservers", when=on_kubernetes, cancellation_timeout=5.0)
async def gameserver_daemon(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    await reconciler.run(body, _wake_event(memo), lambda: bool(stopped))


def pod_ended(body: kopf.Body, **_: Any) -> bool:
    """The game process ended: its container terminated (the Pod's phase turns Succeeded or
    Failed only later, once the kubelet has finished with the whole Pod)."""
    return compute_process(dict(body)).phase is ProcessPhase.EXITED


@kopf.on.event(
    "",
    "v1",
    "pods",
    labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: "server"},
    when=pod_ended,
)
async def game_pod_ended(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    await reconciler.notify_pod_ended(body)


@kopf.on.delete(GROUP, VERSION, "gameservers", when=on_kubernetes)
async def gameserver_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    try:
        await reconciler.delete(body)
    except Exception as error:  # Kopf retries; the metric says how often that happens
        _metrics(memo).count_error("GameServer", error)
        raise


# -- Blueprint -----------------------------------------------------------------------------


@kopf.on.create(GROUP, VERSION, "blueprints")
@kopf.on.update(GROUP, VERSION, "blueprints")
@kopf.on.resume(GROUP, VERSION, "blueprints")
async def blueprint_changed(body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    metrics = _metrics(memo)
    began = time.perf_counter()
    try:
        patch.status.update(compute_blueprint_status(dict(body)))
        reconciler: GameServerReconciler = memo["reconciler"]
        await reconciler.notify_blueprint_users(body)
    except Exception as error:
        metrics.count_error("Blueprint", error)
        metrics.observe_reconcile("Blueprint", "error", time.perf_counter() - began)
        raise
    metrics.observe_reconcile("Blueprint", "success", time.perf_counter() - began)


@kopf.on.delete(GROUP, VERSION, "blueprints", optional=True)
async def blueprint_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    await reconciler.notify_blueprint_users(body)


# The files service's registrations (a timer and the request annotation) live beside it.
import stellarstack.operator.fileshandlers  # noqa: E402, F401
