"""Backups of a server `/api/servers/{id}/backups`: Backup resources written through the
server's backend, with the server's backup limit, and the archive download.

The limit holds under concurrent creates: the count and the write happen while the server's
row is locked (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite every transaction already
holds the database's write lock), so two requests at the limit cannot both pass the count.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from stellarstack.api.backup import Compression
from stellarstack.api.common import DnsSubdomain
from stellarstack.panel.api.errors import ApiError, conflict, not_found
from stellarstack.panel.api.serverio import (
    ServerUse,
    backend_for,
    coalesced,
    opened_backend,
    record,
    require_use,
)
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    Kind,
    ResourceInvalidError,
    ResourceMissingError,
    ServerBackend,
)
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Server

router = APIRouter(prefix="/api/servers/{server_id}/backups", tags=["backups"])


class BackupCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ignore": ["logs/*"], "locked": False}]},
    )

    name: DnsSubdomain | None = Field(default=None, max_length=63)
    """The Backup's name; generated from the server's when unset."""
    compression: Compression = Compression.ZSTD
    ignore: list[str] = Field(default_factory=list, max_length=256)
    """Glob patterns left out of the archive."""
    locked: bool = False
    """Locked backups are never deleted or rotated until unlocked."""


class BackupLock(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"locked": True}]})

    locked: bool


class BackupRestore(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"deleteFilesBeforeRestore": False}]}
    )

    deleteFilesBeforeRestore: bool = False  # noqa: N815 - the resource's own field name


class BackupPublic(BaseModel):
    name: str
    compression: str
    ignore: list[str]
    locked: bool
    phase: str
    size_bytes: int | None = None
    sha256: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str = ""
    last_restore: dict[str, Any] | None = None


def backup_public(document: dict[str, Any]) -> BackupPublic:
    spec = document.get("spec") or {}
    state = document.get("status") or {}
    return BackupPublic(
        name=document["metadata"]["name"],
        compression=spec.get("compression", "zstd"),
        ignore=list(spec.get("ignore") or []),
        locked=bool(spec.get("locked")),
        phase=state.get("phase", "Pending"),
        size_bytes=state.get("sizeBytes"),
        sha256=state.get("sha256"),
        started_at=state.get("startedAt"),
        completed_at=state.get("completedAt"),
        message=state.get("message", ""),
        last_restore=state.get("lastRestore"),
    )


def _of_server(document: dict[str, Any], use: ServerUse) -> bool:
    return bool((document.get("spec") or {}).get("gameServer") == use.server.resource_name)


def _counts_toward_limit(document: dict[str, Any]) -> bool:
    if (document.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return bool((document.get("status") or {}).get("phase") != "Failed")


def _backend_failure(exc: BackendError) -> ApiError:
    if isinstance(exc, ResourceInvalidError):
        return ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "validation_error", str(exc), field="body"
        )
    if isinstance(exc, ResourceMissingError):
        return not_found("backup")
    if isinstance(exc, BackendUnavailableError):
        return ApiError(503, "backend_unavailable", str(exc))
    return conflict(str(exc))


async def _owned(backend: ServerBackend, use: ServerUse, name: str) -> dict[str, Any]:
    try:
        document = await backend.get(Kind.BACKUP, use.server.namespace, name)
    except BackendError as exc:
        raise _backend_failure(exc) from exc
    # Servers of one node share a namespace: a backup of another server is not found.
    if document is None or not _of_server(document, use):
        raise not_found("backup")
    return document


@router.get("", summary="Backups of the server")
async def list_backups(
    request: Request, use: Annotated[ServerUse, Depends(require_use("backups.read"))]
) -> list[BackupPublic]:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        try:
            documents = await backend.list_resources(Kind.BACKUP, use.server.namespace)
        except BackendError as exc:
            raise _backend_failure(exc) from exc
    return [backup_public(d) for d in documents if _of_server(d, use)]


def locked_server(db: Session, server_id: str) -> Server:
    """The server's row, locked until the transaction ends (serialises limit checks)."""
    server = db.scalar(select(Server).where(Server.id == server_id).with_for_update())
    if server is None:
        raise not_found("server")
    return server


def _create_within_limit(
    context: PanelContext, backend: ServerBackend, use: ServerUse, document: dict[str, Any]
) -> dict[str, Any]:
    """Runs in a worker thread: the row lock is held while the backend is asked (through the
    event loop) for the current count and then written to."""
    namespace = use.server.namespace
    with transaction(context.sessions) as db:
        server = locked_server(db, use.server.id)
        existing = from_thread.run(backend.list_resources, Kind.BACKUP, namespace)
        mine = [d for d in existing if _of_server(d, use) and _counts_toward_limit(d)]
        if len(mine) >= server.backup_limit:
            raise conflict(
                f"the server has {len(mine)} backups, its limit is {server.backup_limit}; "
                "delete one first",
                field="backup_limit",
            )
        stored: dict[str, Any] = from_thread.run(backend.apply, Kind.BACKUP, namespace, document)
        context.activity.record(
            db,
            event="server.backup.create",
            actor=use.actor,
            target_type="backup",
            target_id=document["metadata"]["name"],
            server_id=use.server.id,
            properties={"after": document["spec"]},
        )
        return stored


@router.post("", summary="Create a backup", status_code=status.HTTP_201_CREATED)
async def create_backup(
    body: BackupCreate,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("backups.create"))],
) -> BackupPublic:
    context: PanelContext = request.app.state.context
    name = body.name or f"{use.server.resource_name[:48]}-{secrets.token_hex(4)}"
    document = {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": use.server.namespace},
        "spec": {
            "gameServer": use.server.resource_name,
            "compression": body.compression.value,
            "ignore": body.ignore,
            "locked": body.locked,
        },
    }
    async with opened_backend(context, use.server) as backend:
        if body.name is not None:
            try:
                taken = await backend.get(Kind.BACKUP, use.server.namespace, name)
            except BackendError as exc:
                raise _backend_failure(exc) from exc
            if taken is not None:
                raise conflict(f"a backup named {name!r} exists", field="body.name")
        try:
            stored = await context.database_gate.run(
                _create_within_limit, context, backend, use, document
            )
        except BackendError as exc:
            raise _backend_failure(exc) from exc
    return backup_public(stored)


@router.get("/{name}", summary="One backup")
async def get_backup(
    name: str, request: Request, use: Annotated[ServerUse, Depends(require_use("backups.read"))]
) -> BackupPublic:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        return backup_public(await _owned(backend, use, name))


@router.delete(
    "/{name}",
    summary="Delete a backup (refused while locked)",
    status_code=status.HTTP_202_ACCEPTED,
)
async def delete_backup(
    name: str,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("backups.delete"))],
) -> dict[str, str]:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        document = await _owned(backend, use, name)
        if (document.get("spec") or {}).get("locked"):
            raise conflict("the backup is locked; unlock it first", field="locked")
        try:
            await backend.delete(Kind.BACKUP, use.server.namespace, name)
        except BackendError as exc:
            raise _backend_failure(exc) from exc
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event="server.backup.delete",
            target_type="backup",
            target_id=name,
            properties={"before": document.get("spec")},
        )
    )
    return {"status": "deleting"}


async def _change_spec(
    context: PanelContext, use: ServerUse, name: str, changes: dict[str, Any], event: str
) -> BackupPublic:
    async with opened_backend(context, use.server) as backend:
        document = await _owned(backend, use, name)
        before = dict(document.get("spec") or {})
        after = {**before, **changes}
        try:
            stored = await backend.apply(
                Kind.BACKUP,
                use.server.namespace,
                {
                    "apiVersion": document.get("apiVersion", "stellarstack.io/v1alpha1"),
                    "kind": "Backup",
                    "metadata": {"name": name, "namespace": use.server.namespace},
                    "spec": after,
                },
            )
        except BackendError as exc:
            raise _backend_failure(exc) from exc
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event=event,
            target_type="backup",
            target_id=name,
            properties={"before": before, "after": after},
        )
    )
    return backup_public(stored)


@router.post("/{name}/lock", summary="Lock or unlock a backup")
async def lock_backup(
    name: str,
    body: BackupLock,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("backups.lock"))],
) -> BackupPublic:
    event = "server.backup.lock" if body.locked else "server.backup.unlock"
    return await _change_spec(request.app.state.context, use, name, {"locked": body.locked}, event)


@router.post(
    "/{name}/restore",
    summary="Restore a completed backup (replaces the server's files)",
    status_code=status.HTTP_202_ACCEPTED,
)
async def restore_backup(
    name: str,
    body: BackupRestore,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("backups.restore"))],
) -> BackupPublic:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        document = await _owned(backend, use, name)
    if (document.get("status") or {}).get("phase") != "Completed":
        raise conflict("only a completed backup can be restored", field="phase")
    changes = {
        "restoreRequest": uuid.uuid4().hex,
        "deleteFilesBeforeRestore": body.deleteFilesBeforeRestore,
    }
    return await _change_spec(context, use, name, changes, "server.backup.restore")


@router.get(
    "/{name}/download",
    summary="Download a completed backup's archive (streamed)",
    response_class=StreamingResponse,
)
async def download_backup(
    name: str,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("backups.download"))],
) -> Response:
    context: PanelContext = request.app.state.context
    backend = backend_for(context, use.server)
    try:
        await _owned(backend, use, name)
        answer = await backend.backup_archive(use.server.namespace, name)
    except ResourceMissingError as exc:
        raise ApiError(status.HTTP_404_NOT_FOUND, "not_found", str(exc)) from exc
    except BackendError as exc:
        raise _backend_failure(exc) from exc
    await context.database_gate.run(
        lambda: record(
            context, use, event="server.backup.download", target_type="backup", target_id=name
        )
    )

    async def release() -> None:
        if answer.close is not None:
            await answer.close()

    headers = dict(answer.headers)
    headers.setdefault("content-disposition", f'attachment; filename="{name}.tar"')
    return StreamingResponse(
        coalesced(answer.body),
        status_code=answer.status_code,
        headers=headers,
        background=BackgroundTask(release),
    )
