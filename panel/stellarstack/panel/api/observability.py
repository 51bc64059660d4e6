"""Cross-cutting request hooks: denials into the activity log, and request metrics."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
            await context.database_gate.run(write, activity)
        return api_error_response(exc)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/servers/{server_id}`), never the raw path, so
    ids do not explode the number of series."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # Answered before routing (a body too large): find the route it was meant for.
    for candidate in scope["app"].router.routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


class RequestMetrics:
    """Counts and times every HTTP request by route template and status. Plain ASGI (not
    `BaseHTTPMiddleware`, which costs a task and a stream per request); the time runs until
    the last byte of the body is sent."""

    def __init__(self, app: ASGIApp, context: PanelContext) -> None:
        self.app = app
        self.metrics = context.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status_code)).inc()
            self.metrics.request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )


def install_request_metrics(app: FastAPI, context: PanelContext) -> None:
    app.add_middleware(RequestMetrics, context=context)


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
