"""The request body limit: a declared body larger than `max_body_bytes` is refused (413) before
any of it is read. Uploads stream to the backend through their own routes
(`.../files/content`), which set their own limit.

Plain ASGI rather than `BaseHTTPMiddleware`: it runs on every request, and the latter costs a
task and a memory stream each time."""

from __future__ import annotations

from fastapi import FastAPI, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from stellarstack.panel.api.errors import ErrorBody, ErrorResponse

UPLOAD_SUFFIX = "/files/content"


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header's value, when it is a plain number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith(UPLOAD_SUFFIX):
            declared = declared_length(scope)
            if declared is not None and declared > self.max_bytes:
                body = ErrorBody(
                    code="payload_too_large",
                    message=f"request bodies are limited to {self.max_bytes} bytes",
                )
                refusal = JSONResponse(
                    status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                    content=ErrorResponse(error=body).model_dump(mode="json"),
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
