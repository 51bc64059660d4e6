"""Prometheus metrics of this panel process.

Open by default, like `/healthz`: the series hold counts and durations per route template and
outcome, never ids, names or addresses. Set `STELLARSTACK_PANEL_METRICS_TOKEN` to require
`Authorization: Bearer <token>` (for panels whose port is reachable from outside).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stellarstack.panel.api.deps import ContextDep
from stellarstack.panel.api.errors import ApiError
from stellarstack.panel.security.tokens import same

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request, context: ContextDep) -> Response:
    token = context.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not same(sent, expected):
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "unauthenticated",
                "the metrics need the metrics token as a bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
