"""Kopf registrations only; each calls one function of `reconcile`, `compute` or `kube`.

GameServers are reconciled by one daemon per object (a loop like the node agent's, which owns
its own timing: quick while starting or installing, slow when idle). Create, update and resume
events only wake it, so one GameServer is never reconciled by two handlers at once.
GameServers placed on a Docker node are filtered out of every handler: no finalizer, no
children, no status from the operator — their node agent owns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from stellarstack.api.constants import (
    FINALIZER,
    GROUP,
    LABEL_COMPONENT,
    LABEL_GAMESERVER,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    VERSION,
)
from stellarstack.operator.compute import compute_blueprint_status
from stellarstack.operator.kube import Kube, connect
from stellarstack.operator.reconcile import GameServerReconciler, OperatorSettings

log = logging.getLogger(__name__)

ANNOTATION_BLUEPRINT_SEEN = "stellarstack.io/blueprint-generation"
ANNOTATION_POD_ENDED = "stellarstack.io/pod-ended"
# Kopf keeps its bookkeeping in annotations under our own prefix: the structural schema of
# `status` has no room for Kopf's fields (the API server would prune them).
STORAGE_PREFIX = "operator.stellarstack.io"


def on_kubernetes(spec: kopf.Spec, **_: Any) -> bool:
    """Whether the operator owns this GameServer (not a Docker node's)."""
    placement = spec.get("placement") or {}
    return bool(placement.get("type", "Kubernetes") != "DockerNode")


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
    wake = _wake_event(memo)
    while not stopped:
        wake.clear()
        try:
            delay = (await reconciler.reconcile(body)).total_seconds()
        except Exception:  # one failed pass must not end the loop; the next one retries
            log.exception("reconcile of %s/%s failed", body.meta.namespace, body.meta.name)
            delay = 5.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


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
    """A game exited: tell its GameServer now (an annotation is an update event that wakes
    its daemon) rather than at the daemon's next idle look. Patching the same value again is a
    no-op for the API server, so repeated events cost nothing."""
    reconciler: GameServerReconciler = memo["reconciler"]
    owner = body.meta.labels.get(LABEL_GAMESERVER)
    if owner and body.meta.namespace:
        await reconciler.kube.annotate_gameserver(
            body.meta.namespace, owner, ANNOTATION_POD_ENDED, body.meta.uid or ""
        )


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
    await notify_gameservers(reconciler.kube, body)


@kopf.on.delete(GROUP, VERSION, "blueprints", optional=True)
async def blueprint_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    reconciler: GameServerReconciler = memo["reconciler"]
    await notify_gameservers(reconciler.kube, body)


async def notify_gameservers(kube: Kube, body: kopf.Body) -> None:
    """Touch every GameServer using the blueprint, so each re-reads it now (an annotation
    change is an update event) instead of at its next idle look."""
    generation = str(body.meta.get("generation", ""))
    if body.meta.get("deletionTimestamp"):
        generation += "-deleted"
    for namespace, name in await kube.gameservers_using(body.meta.name or ""):
        await kube.annotate_gameserver(namespace, name, ANNOTATION_BLUEPRINT_SEEN, generation)
