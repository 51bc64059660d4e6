"""Cross-cutting request hooks: denials into the activity log, and request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from stellarstack.panel.api.errors import ApiError, api_error_response
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import ActivityLog


def install_denial_log(app: FastAPI, context: PanelContext) -> None:
    """Answer `ApiError`s as usual, and first write those marked as denials to the activity
    log. By the time this handler runs the request's transaction has been rolled back (and
    its lock released), so the entry gets a transaction of its own."""

    def write(activity: dict[str, object]) -> None:
        with transaction(context.sessions) as db:
            context.activity.record(db, **activity)  # type: ignore[arg-type]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.activity is not None:
            activity = dict(exc.activity)
            properties = dict(activity.get("properties") or {})
            # WebSocket routes (the console) raise the same errors; they have no HTTP method.
            method = request.scope.get("method", "WEBSOCKET")
            properties.update(method=method, path=request.scope.get("path", ""))
            activity["properties"] = properties
            await run_in_threadpool(write, activity)
        return api_error_response(exc)


def _route_template(request: Request) -> str:
    """The matched route's path template (`/api/servers/{server_id}`), never the raw path, so
    ids do not explode the number of series."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def install_request_metrics(app: FastAPI, context: PanelContext) -> None:
    metrics = context.metrics

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status_code = 500
        try:
            response = await call_next(request)
            status_code = response.status_code
            return response
        finally:
            route = _route_template(request)
            metrics.requests.labels(request.method, route, str(status_code)).inc()
            metrics.request_seconds.labels(request.method, route).observe(
                time.perf_counter() - started
            )


class ActivityCounter:
    """An activity listener counting recorded events by name (equal per context, so that an
    app built twice over one context counts once)."""

    def __init__(self, context: PanelContext) -> None:
        self.context = context

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActivityCounter) and other.context is self.context

    def __hash__(self) -> int:
        return id(self.context)

    def __call__(self, _: Session, entry: ActivityLog) -> None:
        self.context.metrics.activity_events.labels(entry.event).inc()
