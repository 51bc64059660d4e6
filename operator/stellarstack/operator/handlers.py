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
from typing import Any

import kopf

from stellarstack.api.constants import (
    FINALIZER,
    GROUP,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    VERSION,
)
from stellarstack.operator.compute import compute_blueprint_status
from stellarstack.operator.kube import Kube, connect
from stellarstack.operator.reconcile import GameServerReconciler, OperatorSettings

# Kopf keeps its bookkeeping in annotations under our own prefix: the structural schema of
# `status` has no room for Kopf's fields (the API server would prune them).
STORAGE_PREFIX = "operator.stellarstack.io"


def on_kubernetes(spec: kopf.Spec, **_: Any) -> bool:
    """Whether the operator owns this GameServer (not a Docker node's)."""
    placement = spec.get("placement") or {}
    return bool(placement.get("type", "Kubernetes") != "DockerNode")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # In a Pod: the client library's in-cluster login (it uses the Service's IP from the
    # environment, so no cluster DNS is needed). Elsewhere: $KUBECONFIG as it is now, because the
    # client library fixed its default kubeconfig path when it was imported.
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return kopf.login_via_client(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


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
        memo["reconciler"] = GameServerReconciler(Kube(connect()), OperatorSettings())


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


def pod_ended(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in {"Succeeded", "Failed"}


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
    await reconciler.delete(body)


# -- Blueprint -----------------------------------------------------------------------------


@kopf.on.create(GROUP, VERSION, "blueprints")
@kopf.on.update(GROUP, VERSION, "blueprints")
@kopf.on.resume(GROUP, VERSION, "blueprints")
async def blueprint_changed(body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(compute_blueprint_status(dict(body)))
    reconciler: GameServerReconciler = memo["reconciler"]
    await reconciler.notify_blueprint_users(body)


@kopf.on.delete(GROUP, VERSION, "blueprints", optional=True)
async def blueprint_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    await reconciler.notify_blueprint_users(body)


# The files service's registrations (a timer and the request annotation) live beside it.
import stellarstack.operator.fileshandlers  # noqa: E402, F401
