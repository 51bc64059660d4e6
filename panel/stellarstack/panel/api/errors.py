"""One error body for every failure, naming the field where there is one:

{"error": {"code": "validation_error", "message": "...", "field": "body.email",
           "fields": [{"field": "body.email", "message": "..."}]}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    fields: list[FieldProblem] = []


class ErrorResponse(BaseModel):
    """What every non-2xx response carries."""

    error: ErrorBody


class ApiError(Exception):
    """An error the API reports as is: a status, a stable code and a human message.

    `activity`, when set, is written to the activity log (as keyword arguments of
    `ActivityRecorder.record`) in a transaction of its own after the request's transaction
    was rolled back: denials are logged although the request changed nothing."""

    activity: dict[str, Any] | None = None

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        fields: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.fields = fields or ([FieldProblem(field=field, message=message)] if field else [])
        self.headers = headers


def not_found(what: str = "resource") -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, "not_found", f"{what} not found")


def forbidden(message: str = "you are not allowed to do this") -> ApiError:
    return ApiError(status.HTTP_403_FORBIDDEN, "forbidden", message)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "validation_error", message, field=field)


def conflict(message: str, *, field: str | None = None) -> ApiError:
    return ApiError(status.HTTP_409_CONFLICT, "conflict", message, field=field)


def _body(error: ErrorBody, status_code: int, headers: Mapping[str, str] | None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content=ErrorResponse(error=error).model_dump(mode="json"),
        headers=dict(headers) if headers else None,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def api_error_response(exc: ApiError) -> JSONResponse:
    body = ErrorBody(code=exc.code, message=exc.message, field=exc.field, fields=exc.fields)
    return _body(body, exc.status_code, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            FieldProblem(field=_location(error["loc"]), message=str(error["msg"]))
            for error in exc.errors()
        ]
        first = problems[0] if problems else FieldProblem(field="body", message="invalid")
        body = ErrorBody(
            code="validation_error",
            message=f"{first.field}: {first.message}",
            field=first.field,
            fields=problems,
        )
        return _body(body, status.HTTP_422_UNPROCESSABLE_CONTENT, None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return _body(ErrorBody(code=code, message=message), exc.status_code, exc.headers)
