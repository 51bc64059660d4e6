"""Kopf registrations of the files service (imported by `handlers`); each calls one function.

A timer looks at every GameServer that carries a files request, so an idle files Pod is
removed although nothing about the GameServer changes; a field handler reacts at once when
the panel bumps (or someone removes) the request.
"""

from __future__ import annotations

from typing import Any

import kopf

from stellarstack.api.constants import GROUP, VERSION
from stellarstack.operator.filespod import ANNOTATION_FILES_REQUESTED, FilesSettings
from stellarstack.operator.filesreconcile import FilesReconciler
from stellarstack.operator.kube import Kube

# How often a requested GameServer is looked at: the granularity of the idle timeout.
TIMER_INTERVAL = 10.0


def _on_kubernetes(spec: kopf.Spec, **_: Any) -> bool:
    placement = spec.get("placement") or {}
    return bool(placement.get("type", "Kubernetes") != "DockerNode")


@kopf.on.startup()
async def configure_files(memo: kopf.Memo, **_: Any) -> None:
    # Settings are read here, so a wrong STELLARSTACK_OPERATOR_FILES_* value stops the start
    # with the variable's name instead of failing at the first request.
    if "files_settings" not in memo:
        memo["files_settings"] = FilesSettings()


def _files(memo: kopf.Memo) -> FilesReconciler:
    """The files reconciler, on the game reconciler's API client (one client per process,
    closed by its cleanup)."""
    files: FilesReconciler | None = memo.get("files")
    if files is None:
        kube: Kube = memo["reconciler"].kube
        files = memo["files"] = FilesReconciler(kube, memo["files_settings"])
    return files


@kopf.timer(
    GROUP,
    VERSION,
    "gameservers",
    interval=TIMER_INTERVAL,
    annotations={ANNOTATION_FILES_REQUESTED: kopf.PRESENT},
    when=_on_kubernetes,
)
async def files_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _files(memo).reconcile(body)


@kopf.on.update(
    GROUP,
    VERSION,
    "gameservers",
    field=("metadata", "annotations", ANNOTATION_FILES_REQUESTED),
    when=_on_kubernetes,
)
async def files_requested(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _files(memo).reconcile(body)


@kopf.on.delete(GROUP, VERSION, "gameservers", optional=True, when=_on_kubernetes)
async def files_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    files = _files(memo)
    namespace, name = body["metadata"].get("namespace") or "default", body["metadata"]["name"]
    await files.remove(namespace, name)
    files.forget(namespace, name)
