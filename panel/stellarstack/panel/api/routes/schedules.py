"""Schedules of a server `/api/servers/{id}/schedules`: Schedule resources written through the
server's backend, within the server's schedule limit (checked under the server's row lock,
like the backup limit).

The body is the Schedule's spec without `gameServer` (the panel fills it in), validated by the
resource model itself so errors name the field (`body.tasks.0.command`).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Body, Depends, Request, status
from pydantic import BaseModel, ValidationError

from stellarstack.api.common import DNS1123_SUBDOMAIN
from stellarstack.api.schedule import ScheduleSpec
from stellarstack.panel.api.errors import ApiError, FieldProblem, conflict, invalid, not_found
from stellarstack.panel.api.routes.backups import locked_server
from stellarstack.panel.api.serverio import ServerUse, opened_backend, record, require_use
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    Kind,
    ResourceInvalidError,
    ServerBackend,
)
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction

router = APIRouter(prefix="/api/servers/{server_id}/schedules", tags=["schedules"])

EXAMPLE = {
    "name": "nightly-restart",
    "cron": "0 4 * * *",
    "timeZone": "Europe/Berlin",
    "tasks": [
        {"action": "Command", "command": "say restarting in 1 minute"},
        {"action": "Power", "power": "restart", "delaySeconds": 60},
    ],
}


class SchedulePublic(BaseModel):
    name: str
    spec: dict[str, Any]
    """The Schedule's spec as stored (camelCase, as in the resource)."""
    state: str
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    last_result: str | None = None
    history: list[dict[str, Any]] = []


def schedule_public(document: dict[str, Any]) -> SchedulePublic:
    state = document.get("status") or {}
    spec = dict(document.get("spec") or {})
    spec.pop("gameServer", None)
    return SchedulePublic(
        name=document["metadata"]["name"],
        spec=spec,
        state=state.get("state", "Idle"),
        last_run_at=state.get("lastRunAt"),
        next_run_at=state.get("nextRunAt"),
        last_result=state.get("lastResult"),
        history=list(state.get("history") or []),
    )


def _spec(body: dict[str, Any], use: ServerUse) -> dict[str, Any]:
    """The validated wire spec of `body` (its `name` aside), bound to this server."""
    fields = {key: value for key, value in body.items() if key != "name"}
    if "gameServer" in fields:
        raise invalid("body.gameServer", "set by the panel: the schedule's own server")
    try:
        spec = ScheduleSpec.model_validate({**fields, "gameServer": use.server.resource_name})
    except ValidationError as exc:
        problems = [
            FieldProblem(
                field=".".join(["body", *(str(p) for p in error["loc"])]), message=error["msg"]
            )
            for error in exc.errors()
        ]
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "validation_error",
            f"{problems[0].field}: {problems[0].message}",
            field=problems[0].field,
            fields=problems,
        ) from None
    return spec.to_wire()


def _name(body: dict[str, Any], use: ServerUse) -> str:
    name = body.get("name")
    if name is None:
        return f"{use.server.resource_name[:48]}-{secrets.token_hex(4)}"
    if not isinstance(name, str) or len(name) > 63 or not DNS1123_SUBDOMAIN.match(name):
        raise invalid("body.name", "a lowercase DNS name of at most 63 characters")
    return name


def _of_server(document: dict[str, Any], use: ServerUse) -> bool:
    return bool((document.get("spec") or {}).get("gameServer") == use.server.resource_name)


def _failure(exc: BackendError) -> ApiError:
    if isinstance(exc, ResourceInvalidError):
        return ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "validation_error", str(exc), field="body"
        )
    if isinstance(exc, BackendUnavailableError):
        return ApiError(503, "backend_unavailable", str(exc))
    return conflict(str(exc))


def _document(name: str, use: ServerUse, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": name, "namespace": use.server.namespace},
        "spec": spec,
    }


async def _owned(backend: ServerBackend, use: ServerUse, name: str) -> dict[str, Any]:
    try:
        document = await backend.get(Kind.SCHEDULE, use.server.namespace, name)
    except BackendError as exc:
        raise _failure(exc) from exc
    if document is None or not _of_server(document, use):
        raise not_found("schedule")
    return document


@router.get("", summary="Schedules of the server")
async def list_schedules(
    request: Request, use: Annotated[ServerUse, Depends(require_use("schedules.read"))]
) -> list[SchedulePublic]:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        try:
            documents = await backend.list_resources(Kind.SCHEDULE, use.server.namespace)
        except BackendError as exc:
            raise _failure(exc) from exc
    return [schedule_public(d) for d in documents if _of_server(d, use)]


def _create_within_limit(
    context: PanelContext, backend: ServerBackend, use: ServerUse, document: dict[str, Any]
) -> dict[str, Any]:
    namespace = use.server.namespace
    with transaction(context.sessions) as db:
        server = locked_server(db, use.server.id)
        existing = from_thread.run(backend.list_resources, Kind.SCHEDULE, namespace)
        mine = [d for d in existing if _of_server(d, use)]
        if len(mine) >= server.schedule_limit:
            raise conflict(
                f"the server has {len(mine)} schedules, its limit is {server.schedule_limit}",
                field="schedule_limit",
            )
        name = document["metadata"]["name"]
        if any(d["metadata"]["name"] == name for d in existing):
            raise conflict(f"a schedule named {name!r} exists", field="body.name")
        stored: dict[str, Any] = from_thread.run(backend.apply, Kind.SCHEDULE, namespace, document)
        context.activity.record(
            db,
            event="server.schedule.create",
            actor=use.actor,
            target_type="schedule",
            target_id=name,
            server_id=use.server.id,
            properties={"after": document["spec"]},
        )
        return stored


@router.post("", summary="Create a schedule", status_code=status.HTTP_201_CREATED)
async def create_schedule(
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("schedules.create"))],
    body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
) -> SchedulePublic:
    context: PanelContext = request.app.state.context
    document = _document(_name(body, use), use, _spec(body, use))
    async with opened_backend(context, use.server) as backend:
        try:
            stored = await context.database_gate.run(
                _create_within_limit, context, backend, use, document
            )
        except BackendError as exc:
            raise _failure(exc) from exc
    return schedule_public(stored)


@router.get("/{name}", summary="One schedule")
async def get_schedule(
    name: str, request: Request, use: Annotated[ServerUse, Depends(require_use("schedules.read"))]
) -> SchedulePublic:
    async with opened_backend(request.app.state.context, use.server) as backend:
        return schedule_public(await _owned(backend, use, name))


@router.put("/{name}", summary="Replace a schedule's settings and tasks")
async def update_schedule(
    name: str,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("schedules.update"))],
    body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
) -> SchedulePublic:
    context: PanelContext = request.app.state.context
    if body.get("name", name) != name:
        raise invalid("body.name", "does not match the path; schedules cannot be renamed")
    spec = _spec(body, use)
    async with opened_backend(context, use.server) as backend:
        before = (await _owned(backend, use, name)).get("spec")
        try:
            stored = await backend.apply(
                Kind.SCHEDULE, use.server.namespace, _document(name, use, spec)
            )
        except BackendError as exc:
            raise _failure(exc) from exc
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event="server.schedule.update",
            target_type="schedule",
            target_id=name,
            properties={"before": before, "after": spec},
        )
    )
    return schedule_public(stored)


@router.delete("/{name}", summary="Delete a schedule", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    name: str,
    request: Request,
    use: Annotated[ServerUse, Depends(require_use("schedules.delete"))],
) -> None:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        before = (await _owned(backend, use, name)).get("spec")
        try:
            await backend.delete(Kind.SCHEDULE, use.server.namespace, name)
        except BackendError as exc:
            raise _failure(exc) from exc
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event="server.schedule.delete",
            target_type="schedule",
            target_id=name,
            properties={"before": before},
        )
    )
