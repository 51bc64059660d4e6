"""The file manager routes of the node API, all through the confined `SafeRoot`.

Each request opens the server's root afresh (a directory fd), applies the blueprint's
deny-list and the server's disk quota, and maps every `FileError` to its HTTP status through
the one table in `stellarstack.nodeproxy.files.errors`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.netpolicy import DestinationRefusedError
from stellarstack.api.quantity import byte_count
from stellarstack.api.runtime import ServerKey
from stellarstack.nodeproxy.fetch import PullError, pull
from stellarstack.nodeproxy.files import Denylist, FileError, FileInfo, Quota, SafeRoot
from stellarstack.nodeproxy.files.archives import (
    ArchiveFormat,
    create_archive_file,
    extract_archive,
)
from stellarstack.nodeproxy.files.paths import join_parts, split_path
from stellarstack.nodeproxy.files.root import SearchLimits

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class PathRequest(BaseModel):
    """One path inside the server directory."""

    path: str = Field(max_length=4096)


class MoveRequest(BaseModel):
    """A source and a destination inside the server directory."""

    source: str = Field(max_length=4096)
    destination: str = Field(max_length=4096)
    overwrite: bool = False


class DeleteRequest(BaseModel):
    """Paths to delete (directories recursively, links as links)."""

    paths: list[str] = Field(min_length=1, max_length=1000)


class ChmodRequest(BaseModel):
    """New permission bits (setuid, setgid and sticky are masked off)."""

    path: str = Field(max_length=4096)
    mode: int = Field(ge=0, le=0o7777)


class ArchiveRequest(BaseModel):
    """Archive a selection of paths into a new archive file inside the server directory."""

    paths: list[str] = Field(min_length=1, max_length=1000)
    destination: str = Field(max_length=4096)
    format: ArchiveFormat = ArchiveFormat.TAR_ZST


class PullRequest(BaseModel):
    """Download a URL into the server directory (public addresses only)."""

    url: str = Field(max_length=4096)
    path: str = Field(max_length=4096)


class ExtractRequest(BaseModel):
    """Extract an archive file into a directory (created if missing)."""

    archive: str = Field(max_length=4096)
    destination: str = Field(default="", max_length=4096)


def install_file_error_handler(app: FastAPI) -> None:
    """Answer every `FileError` with its status and a body naming the code and the path."""

    @app.exception_handler(FileError)
    async def _file_error(_: Request, exc: FileError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.http_status,
            content={"detail": exc.message, "code": exc.code.value, "path": exc.path},
        )


def files_router(services: Any, need: Callable[[str], Any]) -> APIRouter:
    """Routes under `/api/v1/namespaces/{namespace}/gameservers/{name}/files`; `need(scope)`
    is the dependency that checks the caller holds `scope` on the server."""
    router = APIRouter(
        prefix="/api/v1/namespaces/{namespace}/gameservers/{name}/files", tags=["files"]
    )
    read, write = [need("files.read")], [need("files.write")]

    @contextmanager
    def opened(namespace: str, name: str, *, writes: bool = False) -> Iterator[SafeRoot]:
        gameserver = services.store.get(GameServer, namespace, name)
        if gameserver is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"GameServer {name} not found")
        blueprint = services.store.get(Blueprint, "", gameserver.spec.blueprint)
        denylist = Denylist.of(blueprint.spec.file_denylist if blueprint else [])
        key = ServerKey(namespace, name)
        data = services.runtime.prepare_data_dir(key)
        settings = services.runtime.workload_settings
        with SafeRoot(
            data, denylist=denylist, owner=(settings.run_as_user, settings.run_as_group)
        ) as root:
            limit = byte_count(gameserver.spec.resources.disk)
            # The agent's cached figure: a full walk per upload would be too slow on big worlds.
            root.quota = Quota(
                limit, lambda: services.runtime.disk.get(key, lambda: root.disk_usage().bytes)
            )
            try:
                yield root
            finally:
                if writes:
                    # The cached usage no longer holds; the next quota check measures afresh.
                    services.runtime.disk.forget(key)

    @router.get("/list", dependencies=read)
    async def list_directory(
        namespace: str, name: str, path: Annotated[str, Query(max_length=4096)] = ""
    ) -> list[dict[str, Any]]:
        with opened(namespace, name) as root:
            return [_info(entry) for entry in await asyncio.to_thread(root.list_dir, path)]

    @router.get("/stat", dependencies=read)
    async def stat_path(
        namespace: str, name: str, path: Annotated[str, Query(max_length=4096)]
    ) -> dict[str, Any]:
        with opened(namespace, name) as root:
            return _info(await asyncio.to_thread(root.stat, path))

    @router.get("/content", dependencies=read)
    async def download(
        namespace: str, name: str, request: Request, path: Annotated[str, Query(max_length=4096)]
    ) -> StreamingResponse:
        offset, length = 0, None
        wanted = request.headers.get("range")
        with opened(namespace, name) as root:
            info = root.stat(path)
            if wanted:
                offset, length = _parse_range(wanted, info.size)
            reader = root.open_read(path, offset=offset, length=length)
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(reader.length)}
        code = status.HTTP_200_OK
        if wanted:
            code = status.HTTP_206_PARTIAL_CONTENT
            end = reader.offset + reader.length - 1
            headers["Content-Range"] = f"bytes {reader.offset}-{end}/{reader.size}"

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(reader.read):
                    yield chunk
            finally:
                reader.close()

        return StreamingResponse(
            body(), status_code=code, headers=headers, media_type="application/octet-stream"
        )

    @router.put("/content", status_code=status.HTTP_201_CREATED, dependencies=write)
    async def upload(
        namespace: str,
        name: str,
        request: Request,
        path: Annotated[str, Query(max_length=4096)],
        overwrite: bool = True,
    ) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        with opened(namespace, name, writes=True) as root:
            parents = split_path(path)[:-1]
            if parents:
                # Uploads create their folders, as users of file managers expect.
                await asyncio.to_thread(root.mkdir, join_parts(parents))
            info = await root.write_async(
                path,
                request.stream(),
                overwrite=overwrite,
                expected_size=int(declared) if declared and declared.isdigit() else None,
            )
            return _info(info)

    @router.post("/mkdir", status_code=status.HTTP_201_CREATED, dependencies=write)
    async def mkdir(namespace: str, name: str, body: PathRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            return _info(await asyncio.to_thread(root.mkdir, body.path))

    @router.post("/rename", dependencies=write)
    async def rename(namespace: str, name: str, body: MoveRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            info = await asyncio.to_thread(
                root.rename, body.source, body.destination, overwrite=body.overwrite
            )
            return _info(info)

    @router.post("/copy", dependencies=write)
    async def copy(namespace: str, name: str, body: MoveRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            report = await asyncio.to_thread(
                root.copy, body.source, body.destination, overwrite=body.overwrite
            )
            return {**_info(report.info), "skipped": list(report.skipped)}

    @router.post(
        "/delete", status_code=status.HTTP_204_NO_CONTENT, dependencies=[need("files.delete")]
    )
    async def delete(namespace: str, name: str, body: DeleteRequest) -> None:
        with opened(namespace, name, writes=True) as root:
            for target in body.paths:
                await asyncio.to_thread(root.delete, target)

    @router.post("/chmod", dependencies=write)
    async def chmod(namespace: str, name: str, body: ChmodRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            return _info(await asyncio.to_thread(root.chmod, body.path, body.mode))

    @router.get("/search", dependencies=read)
    async def search(
        namespace: str,
        name: str,
        query: Annotated[str, Query(min_length=1, max_length=256)],
        content: bool = False,
        path: Annotated[str, Query(max_length=4096)] = "",
    ) -> dict[str, Any]:
        with opened(namespace, name) as root:
            find = root.search_content if content else root.search_names
            result = await asyncio.to_thread(find, query, path=path, limits=SearchLimits())
            return {
                "matches": [
                    {
                        key: (value.value if hasattr(value, "value") else value)
                        for key, value in asdict(match).items()
                    }
                    for match in result.matches
                ],
                "truncated": result.truncated,
            }

    @router.post(
        "/archive", status_code=status.HTTP_201_CREATED, dependencies=[need("files.archive")]
    )
    async def archive(namespace: str, name: str, body: ArchiveRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            report = await asyncio.to_thread(
                create_archive_file, root, body.paths, body.destination, body.format
            )
            return {
                "entries": report.entries,
                "bytes": report.bytes,
                "skipped": list(report.skipped),
            }

    @router.post("/pull", status_code=status.HTTP_201_CREATED, dependencies=write)
    async def pull_url(namespace: str, name: str, body: PullRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            try:
                info = await pull(
                    body.url,
                    root,
                    body.path,
                    policy=services.settings.pull_policy(),
                    max_bytes=services.settings.pull_max_bytes,
                )
            except DestinationRefusedError as exc:
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"refused: {exc}") from exc
            except PullError as exc:
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
            return _info(info)

    @router.post("/extract", dependencies=[need("files.archive")])
    async def extract(namespace: str, name: str, body: ExtractRequest) -> dict[str, Any]:
        with opened(namespace, name, writes=True) as root:
            report = await asyncio.to_thread(extract_archive, root, body.archive, body.destination)
            return {"entries": report.entries, "bytes": report.bytes}

    return router


def _info(info: FileInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "path": info.path,
        "type": info.type.value,
        "size": info.size,
        "mode": oct(info.mode),
        "mtime": info.mtime,
        "linkTarget": info.link_target,
        "denied": info.denied,
    }


def _parse_range(header: str, size: int) -> tuple[int, int | None]:
    """One `bytes=a-b` range (multi-range requests are answered with the whole first range)."""
    match = _RANGE.match(header.split(",")[0].strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise HTTPException(status.HTTP_416_RANGE_NOT_SATISFIABLE, "unreadable Range header")
    first, last = match.groups()
    if first == "":  # the last N bytes
        count = min(int(last), size)
        return size - count, count
    start = int(first)
    if start >= size:
        raise HTTPException(
            status.HTTP_416_RANGE_NOT_SATISFIABLE,
            f"the file has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        raise HTTPException(
            status.HTTP_416_RANGE_NOT_SATISFIABLE, "the range ends before it starts"
        )
    return start, end - start + 1
