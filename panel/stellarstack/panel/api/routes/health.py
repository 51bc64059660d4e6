"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from stellarstack.panel.api.deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process serves requests")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="The database answers", responses={503: {"description": "not ready"}}
)
def readyz(context: ContextDep) -> JSONResponse:
    try:
        with context.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready", with the reason
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"status": "unavailable", "database": type(exc).__name__},
        )
    return JSONResponse({"status": "ready", "database": "ok"})
