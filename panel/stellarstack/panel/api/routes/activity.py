"""The activity log: every mutating action, login and denial. Admins read all of it; a server's
owner and subusers holding `activity.read` read their server's. Lists are paginated; exports
(CSV or JSON) stream every row the filters select, up to `limit`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from stellarstack.panel import activityexport
from stellarstack.panel.api.deps import (
    AdminReader,
    ContextDep,
    ServerAccess,
    SessionDep,
    require_permission,
)
from stellarstack.panel.api.errors import invalid
from stellarstack.panel.api.schemas import Page
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import ActivityLog

router = APIRouter(tags=["activity"])

EXPORT_BATCH = 500
EXPORT_LIMIT = 100_000


class ActivityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    at: datetime
    event: str
    actor_id: str | None
    api_key_id: str | None
    session_id: str | None
    ip: str | None
    target_type: str | None
    target_id: str | None
    server_id: str | None
    properties: dict[str, Any]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True)
class ActivityFilter:
    """What the query parameters select (all optional, combined with AND)."""

    actor: str | None = None
    event: str | None = None
    server: str | None = None
    ip: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.actor:
            query = query.where(ActivityLog.actor_id == self.actor)
        if self.event:
            # `auth.login` selects auth.login and auth.login.failed, never auth.loginx.
            prefix = self.event.rstrip(".")
            query = query.where(
                or_(ActivityLog.event == prefix, ActivityLog.event.startswith(prefix + "."))
            )
        if self.server:
            query = query.where(ActivityLog.server_id == self.server)
        if self.ip:
            query = query.where(ActivityLog.ip == self.ip)
        if self.since:
            query = query.where(ActivityLog.at >= self.since)
        if self.until:
            query = query.where(ActivityLog.at < self.until)
        return query


def activity_filter(
    actor: Annotated[str | None, Query(max_length=32, description="A user id.")] = None,
    event: Annotated[
        str | None,
        Query(
            max_length=100,
            description="An event or a prefix of dotted parts (`auth` is every auth event).",
            examples=["auth.login"],
        ),
    ] = None,
    server: Annotated[str | None, Query(max_length=32, description="A server id.")] = None,
    ip: Annotated[str | None, Query(max_length=45)] = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601.")] = None,
) -> ActivityFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise invalid(f"query.{name}", "give a time zone (e.g. 2026-01-01T00:00:00Z)")
    if since is not None and until is not None and until <= since:
        raise invalid("query.until", "must be later than since")
    return ActivityFilter(actor=actor, event=event, server=server, ip=ip, since=since, until=until)


FilterDep = Annotated[ActivityFilter, Depends(activity_filter)]


def _page(db: Session, query: Select[Any], page: int, per_page: int) -> Page[ActivityPublic]:
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(ActivityLog.at.desc(), ActivityLog.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(
        items=[ActivityPublic.model_validate(row) for row in rows],
        total=total,
        page=page,
        per_page=per_page,
    )


def _batch(
    sessions: sessionmaker[Session],
    query: Select[Any],
    after: tuple[datetime, str] | None,
    size: int,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """The next `size` rows, newest first, after the keyset `after`; and the new keyset."""
    if after is not None:
        at, row_id = after
        query = query.where(
            or_(ActivityLog.at < at, and_(ActivityLog.at == at, ActivityLog.id < row_id))
        )
    with transaction(sessions) as db:
        rows = db.scalars(
            query.order_by(ActivityLog.at.desc(), ActivityLog.id.desc()).limit(size)
        ).all()
        batch = [ActivityPublic.model_validate(row).model_dump(mode="json") for row in rows]
    return batch, ((rows[-1].at, rows[-1].id) if rows else None)


async def _rows(
    context: PanelContext, query: Select[Any], limit: int
) -> AsyncIterator[dict[str, Any]]:
    """Newest first, in keyset batches, each its own short transaction admitted by the
    database gate (an export never holds the database for its whole length)."""
    sent = 0
    last: tuple[datetime, str] | None = None
    while sent < limit:
        batch, last = await context.database_gate.run(
            _batch, context.sessions, query, last, min(EXPORT_BATCH, limit - sent)
        )
        if not batch:
            return
        for row in batch:
            yield row
        sent += len(batch)


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    yield activityexport.csv_header()
    async for row in rows:
        yield activityexport.csv_row(row)


async def _json(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    yield activityexport.JSON_OPEN
    separator = ""
    async for row in rows:
        yield separator + activityexport.json_element(row)
        separator = activityexport.JSON_SEPARATOR
    yield activityexport.JSON_CLOSE


def _export(
    db: Session,
    context: PanelContext,
    query: Select[Any],
    fmt: ExportFormat,
    limit: int,
    name: str,
) -> StreamingResponse:
    # The request's transaction would stay open until the last byte is sent (and on SQLite it
    # holds the write lock); the caller is authorised, so end it and read in short batches.
    db.commit()
    rows = _rows(context, query, limit)
    if fmt is ExportFormat.CSV:
        return StreamingResponse(
            _csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return StreamingResponse(
        _json(rows),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
    )


# Bounded so that (page - 1) * per_page stays a 64-bit offset on every database.
PageQuery = Annotated[int, Query(ge=1, le=1_000_000)]
PerPageQuery = Annotated[int, Query(ge=1, le=200)]
FormatQuery = Annotated[ExportFormat, Query(alias="format")]
LimitQuery = Annotated[
    int, Query(ge=1, le=EXPORT_LIMIT, description="Most rows exported (newest first).")
]


@router.get("/api/admin/activity", summary="The whole activity log (admins)")
def admin_activity(
    _: AdminReader,
    db: SessionDep,
    filters: FilterDep,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> Page[ActivityPublic]:
    return _page(db, filters.apply(select(ActivityLog)), page, per_page)


@router.get(
    "/api/admin/activity/export",
    summary="Export the activity log the filters select (CSV or JSON, streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def admin_activity_export(
    _: AdminReader,
    db: SessionDep,
    context: ContextDep,
    filters: FilterDep,
    fmt: FormatQuery = ExportFormat.CSV,
    limit: LimitQuery = EXPORT_LIMIT,
) -> StreamingResponse:
    query = filters.apply(select(ActivityLog))
    return _export(db, context, query, fmt, limit, "activity")


ActivityReader = Annotated[ServerAccess, Depends(require_permission("activity.read"))]


@router.get("/api/servers/{server_id}/activity", summary="A server's activity log")
def server_activity(
    access: ActivityReader,
    db: SessionDep,
    filters: FilterDep,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> Page[ActivityPublic]:
    query = filters.apply(select(ActivityLog)).where(ActivityLog.server_id == access.server.id)
    return _page(db, query, page, per_page)


@router.get(
    "/api/servers/{server_id}/activity/export",
    summary="Export a server's activity log (CSV or JSON, streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def server_activity_export(
    access: ActivityReader,
    db: SessionDep,
    context: ContextDep,
    filters: FilterDep,
    fmt: FormatQuery = ExportFormat.CSV,
    limit: LimitQuery = EXPORT_LIMIT,
) -> StreamingResponse:
    query = filters.apply(select(ActivityLog)).where(ActivityLog.server_id == access.server.id)
    return _export(db, context, query, fmt, limit, f"activity-{access.server.id}")
