"""The file manager `/api/servers/{id}/files/...`, forwarded to the server's backend (a Docker
node's files API, or the files service of a GameServer on Kubernetes) with the panel's
permission nodes.

Bodies stream both ways: an upload goes to the backend as it arrives (the backend enforces
the server's disk quota), a download comes back chunk by chunk. The backend's errors are
answered in the panel's error shape, `field` naming the path or the body field at fault.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from stellarstack.panel.api.errors import ApiError, FieldProblem, forbidden
from stellarstack.panel.api.serverio import (
    STREAM_CHUNK,
    ServerUse,
    backend_for,
    coalesced,
    record,
    require_use,
)
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    ProxiedResponse,
    ResourceMissingError,
)
from stellarstack.panel.context import PanelContext

router = APIRouter(prefix="/api/servers/{server_id}/files", tags=["files"])

_ERROR_BODY_LIMIT = 64 * 1024
_QUERY_PARAMS = ("path", "query", "content", "overwrite")
_STATUS_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    416: "range_not_satisfiable",
    422: "validation_error",
    507: "insufficient_storage",
}


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, refused once it passes `limit` (chunked bodies carry no length for
    the middleware to check)."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise ApiError(
                status.HTTP_413_CONTENT_TOO_LARGE,
                "payload_too_large",
                f"request bodies are limited to {limit} bytes",
            )
        yield chunk


async def _read_json_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _limited(request, limit)])


async def _error_from(answer: ProxiedResponse) -> ApiError:
    """The backend's error body (node API: `detail`, `code`, `path`; validation: `detail` as
    a list of `loc`/`msg`) in the panel's shape."""
    data = b""
    try:
        async for chunk in answer.body:
            data += chunk
            if len(data) > _ERROR_BODY_LIMIT:
                break
    finally:
        if answer.close is not None:
            await answer.close()
    try:
        body = json.loads(data)
    except ValueError:
        body = {"detail": data.decode(errors="replace")[:500]}
    detail = body.get("detail") if isinstance(body, dict) else None
    code = _STATUS_CODES.get(answer.status_code, "backend_error")
    if isinstance(detail, list):
        problems = [
            FieldProblem(
                field=".".join(str(part) for part in item.get("loc", [])) or "body",
                message=str(item.get("msg", "invalid")),
            )
            for item in detail
            if isinstance(item, dict)
        ] or [FieldProblem(field="body", message="invalid")]
        return ApiError(
            answer.status_code,
            "validation_error",
            f"{problems[0].field}: {problems[0].message}",
            field=problems[0].field,
            fields=problems,
        )
    message = str(detail or "the backend refused the request")
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        # A file error: its code (bad_path, denied, no_space, ...) and the path it concerns.
        path = body.get("path")
        return ApiError(
            answer.status_code,
            body["code"].lower(),
            f"{path}: {message}" if path else message,
            field="path" if path is not None else None,
        )
    return ApiError(answer.status_code, code, message)


def _query(request: Request) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items() if key in _QUERY_PARAMS}


async def _forward(
    request: Request,
    use: ServerUse,
    *,
    method: str,
    operation: str,
    body: AsyncIterator[bytes] | bytes | None,
    event: str | None,
    describe: Callable[[bytes | None], dict[str, Any]] | None = None,
    raw_body: bytes | None = None,
) -> Response:
    context: PanelContext = request.app.state.context
    backend = backend_for(context, use.server)
    try:
        answer = await backend.files(
            use.server.namespace,
            use.server.resource_name,
            method=method,
            path=operation,
            params=_query(request),
            headers=dict(request.headers),
            body=body,
        )
    except ResourceMissingError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except BackendUnavailableError as exc:
        raise ApiError(503, "backend_unavailable", str(exc)) from exc
    except BackendError as exc:
        raise ApiError(502, "backend_error", str(exc)) from exc
    if answer.status_code >= 400:
        raise await _error_from(answer)
    if event is not None:
        properties = describe(raw_body) if describe else {}
        properties.setdefault("path", request.query_params.get("path"))
        await context.database_gate.run(
            lambda: record(context, use, event=event, properties=properties)
        )

    async def release() -> None:
        if answer.close is not None:
            await answer.close()

    length = answer.headers.get("content-length", "")
    if length.isdigit() and int(length) <= STREAM_CHUNK:
        # A small answer (a listing, a stat, a small file): read whole and sent in one piece,
        # which costs less than streaming it through an iterator and a background task.
        try:
            content = b"".join([chunk async for chunk in answer.body])
        finally:
            await release()
        return Response(content, status_code=answer.status_code, headers=dict(answer.headers))
    return StreamingResponse(
        coalesced(answer.body),
        status_code=answer.status_code,
        headers=dict(answer.headers),
        background=BackgroundTask(release),
    )


def _json_fields(*names: str) -> Callable[[bytes | None], dict[str, Any]]:
    def describe(raw: bytes | None) -> dict[str, Any]:
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            return {}
        if not isinstance(parsed, dict):
            return {}
        return {name: parsed.get(name) for name in names if name in parsed}

    return describe


def _reader(node: str, operation: str, summary: str) -> None:
    # A default, not an Annotated hint: hints are strings here (postponed evaluation) and
    # could not see `node`.
    allowed = Depends(require_use(node))

    async def handler(request: Request, use: ServerUse = allowed) -> Response:
        return await _forward(
            request, use, method="GET", operation=operation, body=None, event=None
        )

    router.add_api_route(
        f"/{operation}",
        handler,
        methods=["GET"],
        summary=summary,
        name=f"files_{operation}_get",
        response_class=StreamingResponse,
    )


def _writer(node: str, operation: str, summary: str, event: str, fields: tuple[str, ...]) -> None:
    # A default, not an Annotated hint: hints are strings here (postponed evaluation) and
    # could not see `node`.
    allowed = Depends(require_use(node))

    async def handler(request: Request, use: ServerUse = allowed) -> Response:
        context: PanelContext = request.app.state.context
        raw = await _read_json_body(request, context.settings.max_body_bytes)
        return await _forward(
            request,
            use,
            method="POST",
            operation=operation,
            body=raw,
            event=event,
            describe=_json_fields(*fields),
            raw_body=raw,
        )

    router.add_api_route(
        f"/{operation}",
        handler,
        methods=["POST"],
        summary=summary,
        name=f"files_{operation}",
        response_class=StreamingResponse,
    )


_reader("files.read", "list", "List a directory (`?path=`)")
_reader("files.read", "stat", "Metadata of one path (`?path=`)")
_reader("files.read", "search", "Search names or contents (`?query=&content=&path=`)")
_reader("files.read-content", "content", "Download a file (`?path=`; Range supported)")
_writer("files.create", "mkdir", "Create a directory", "server.file.mkdir", ("path",))
_writer("files.update", "rename", "Rename or move", "server.file.rename", ("source", "destination"))
_writer("files.update", "copy", "Copy", "server.file.copy", ("source", "destination"))
_writer("files.update", "chmod", "Change permission bits", "server.file.chmod", ("path", "mode"))
_writer("files.delete", "delete", "Delete paths", "server.file.delete", ("paths",))
_writer(
    "files.archive", "archive", "Archive paths", "server.file.archive", ("paths", "destination")
)
_writer(
    "files.archive",
    "extract",
    "Extract an archive",
    "server.file.extract",
    ("archive", "destination"),
)
_writer("files.pull", "pull", "Download a URL into the server", "server.file.pull", ("url", "path"))


async def _upload_checks(
    request: Request, use: Annotated[ServerUse, Depends(require_use("files.create"))]
) -> ServerUse:
    # Replacing an existing file changes it: that is files.update on top of files.create.
    overwrite = request.query_params.get("overwrite", "false").lower() in {"1", "true", "on"}
    if overwrite and not use.can("files.update"):
        raise forbidden("overwriting needs the 'files.update' permission")
    return use


@router.put(
    "/content",
    summary="Upload a file (`?path=&overwrite=`), streamed",
    status_code=status.HTTP_201_CREATED,
    response_class=StreamingResponse,
)
async def upload(request: Request, use: Annotated[ServerUse, Depends(_upload_checks)]) -> Response:
    params = dict(request.query_params)
    params.setdefault("overwrite", "false")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk

    context: PanelContext = request.app.state.context
    backend = backend_for(context, use.server)
    try:
        answer = await backend.files(
            use.server.namespace,
            use.server.resource_name,
            method="PUT",
            path="content",
            params={k: v for k, v in params.items() if k in _QUERY_PARAMS},
            headers=dict(request.headers),
            body=body(),
        )
        if answer.status_code >= 400:
            raise await _error_from(answer)
        data = b""
        async for chunk in answer.body:
            data += chunk
        if answer.close is not None:
            await answer.close()
    except BackendUnavailableError as exc:
        raise ApiError(503, "backend_unavailable", str(exc)) from exc
    except ResourceMissingError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    info = json.loads(data)
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event="server.file.upload",
            properties={"path": info.get("path"), "size": info.get("size")},
        )
    )
    return Response(content=data, status_code=answer.status_code, media_type="application/json")
