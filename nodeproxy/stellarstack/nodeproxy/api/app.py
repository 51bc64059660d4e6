"""The node API (FastAPI): resources, power, console, stats; the panel is its client.

Every route but `/healthz` needs the node's bearer token. Resources are written whole and
validated by the API models; the agent loop is woken after each change and does the work, so a
request never waits for a container (power requests answer 202 and the status follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, WebSocket, status
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Resource
from stellarstack.api.gameserver import GameServer, PowerState
from stellarstack.api.manifests import validate_document
from stellarstack.api.runtime import (
    ResourceStats,
    ServerKey,
    ServerNotFoundError,
    ServerNotRunningError,
)
from stellarstack.api.schedule import Schedule
from stellarstack.api.states import BackupPhase
from stellarstack.nodeproxy.agent import NodeAgent
from stellarstack.nodeproxy.api.auth import Authenticator, depends, requirement
from stellarstack.nodeproxy.api.files import files_router, install_file_error_handler
from stellarstack.nodeproxy.capacity import compute_allocated, measure_capacity
from stellarstack.nodeproxy.ratelimit import TokenBucket
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.settings import NodeSettings
from stellarstack.nodeproxy.store import CLUSTER, Store

NAMESPACED: dict[str, type[Resource]] = {
    "gameservers": GameServer,
    "backups": Backup,
    "schedules": Schedule,
}


@dataclass
class NodeServices:
    """What the routes need; built once per process."""

    settings: NodeSettings
    store: Store
    runtime: DockerRuntime
    agent: NodeAgent
    authenticator: Authenticator | None = None
    console_connections: dict[ServerKey, int] = field(default_factory=lambda: defaultdict(int))


class ResourceError(Exception):
    """A resource document that failed validation; each problem names its field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PowerRequest(BaseModel):
    """A power action."""

    action: Literal["start", "stop", "restart", "kill"]


class PowerAccepted(BaseModel):
    """The action was recorded in the desired state; watch the status for its effect."""

    action: str
    request: str | None = Field(description="The restart/kill request id the status echoes")


class CommandRequest(BaseModel):
    """One console line."""

    line: str = Field(min_length=1, max_length=4096, pattern=r"^[^\r\n]*$")


def create_app(services: NodeServices, *, run_agent: bool = False) -> FastAPI:
    """The node API application over `services`; with `run_agent` the app also runs the
    reconcile loop for as long as it serves (tests drive the agent themselves instead)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not run_agent:
            yield
            return
        stop = asyncio.Event()
        loop = asyncio.create_task(services.agent.run(stop))
        try:
            yield
        finally:
            stop.set()
            services.agent.wake()
            await loop

    app = FastAPI(
        title="StellarStack node API",
        version="v1",
        description="Runs the panel's GameServers on this Docker host.",
        lifespan=lifespan,
    )

    @app.exception_handler(ResourceError)
    async def _invalid(_: Request, exc: ResourceError) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": "invalid resource", "errors": exc.problems},
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if services.authenticator is None:
        services.authenticator = Authenticator(services.settings)
    authenticator = services.authenticator
    install_file_error_handler(app)
    app.include_router(_node_router(services, authenticator))
    app.include_router(_resources_router(services, authenticator))
    app.include_router(_servers_router(services, authenticator))
    app.include_router(files_router(services, lambda scope: depends(authenticator, scope)))
    return app


def _parse(model: type[Resource], document: Any, namespace: str, name: str) -> Resource:
    if not isinstance(document, dict):
        raise ResourceError(["body: must be a JSON object"])
    document = {**document, "kind": document.get("kind", model.KIND)}
    document.setdefault("apiVersion", "stellarstack.io/v1alpha1")
    metadata = dict(document.get("metadata") or {})
    problems: list[str] = []
    if document["kind"] != model.KIND:
        problems.append(f"kind: must be {model.KIND} at this path")
    if metadata.setdefault("name", name) != name:
        problems.append(f"metadata.name: {metadata['name']!r} does not match the path ({name!r})")
    if model.NAMESPACED and metadata.setdefault("namespace", namespace) != namespace:
        problems.append(f"metadata.namespace: does not match the path ({namespace!r})")
    document["metadata"] = metadata
    document.pop("status", None)  # status belongs to the agent
    problems.extend(validate_document(document) if not problems else [])
    if problems:
        raise ResourceError(problems)
    return model.model_validate(document)


def _node_router(services: NodeServices, authenticator: Authenticator) -> APIRouter:
    # Facts about the node itself are the panel's business alone, like the resources.
    router = APIRouter(prefix="/api/v1", tags=["node"], dependencies=[depends(authenticator, None)])

    @router.get("/node")
    async def node() -> dict[str, Any]:
        """Who this agent is and what the host has: the panel's heartbeat reads it, and
        `panel local` checks it is talking to the agent it started (its `pid`)."""
        capacity = await asyncio.to_thread(measure_capacity, services.settings.data_dir)
        allocated = compute_allocated(services.store.of_kind(GameServer))
        return {
            "agentId": services.settings.agent_id,
            "pid": os.getpid(),
            "capacity": {
                "memoryBytes": capacity.memory_bytes,
                "diskBytes": capacity.disk_bytes,
                "diskFreeBytes": capacity.disk_free_bytes,
                "cpuMillicores": capacity.cpu_millicores,
            },
            "allocated": {
                "memoryBytes": allocated.memory_bytes,
                "diskBytes": allocated.disk_bytes,
                "cpuMillicores": allocated.cpu_millicores,
                "servers": allocated.servers,
            },
        }

    return router


def _resources_router(services: NodeServices, authenticator: Authenticator) -> APIRouter:
    # Resources are the panel's business alone: no server token reaches them.
    router = APIRouter(
        prefix="/api/v1", tags=["resources"], dependencies=[depends(authenticator, None)]
    )
    store = services.store

    def stored(model: type[Resource], namespace: str, name: str) -> dict[str, Any]:
        found = store.get(model, namespace, name)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{model.KIND} {name} not found")
        return found.to_wire()

    @router.put("/blueprints/{name}")
    async def put_blueprint(name: str, request: Request) -> dict[str, Any]:
        blueprint = _parse(Blueprint, await _json(request), CLUSTER, name)
        result = store.put(blueprint).to_wire()
        services.agent.wake()
        return result

    @router.get("/blueprints")
    async def list_blueprints() -> list[dict[str, Any]]:
        return [b.to_wire() for b in store.of_kind(Blueprint)]

    @router.get("/blueprints/{name}")
    async def get_blueprint(name: str) -> dict[str, Any]:
        return stored(Blueprint, CLUSTER, name)

    @router.delete("/blueprints/{name}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_blueprint(name: str) -> None:
        stored(Blueprint, CLUSTER, name)
        store.forget(Blueprint, CLUSTER, name)
        services.agent.wake()

    @router.get("/namespaces/{namespace}/backups/{name}/archive")
    async def download_backup(namespace: str, name: str) -> FileResponse:
        """The archive of a completed backup (ranges supported), with its SHA-256."""
        backup = store.get(Backup, namespace, name)
        if backup is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Backup {name} not found")
        done = backup.status
        if done is None or done.phase is not BackupPhase.COMPLETED or not done.location:
            raise HTTPException(status.HTTP_409_CONFLICT, "the backup is not complete")
        archive = Path(done.location)
        if not await asyncio.to_thread(archive.is_file):
            raise HTTPException(status.HTTP_410_GONE, "the archive is no longer on this node")
        return FileResponse(
            archive,
            filename=archive.name,
            media_type="application/octet-stream",
            headers={"X-Checksum-Sha256": done.sha256 or ""},
        )

    @router.put("/namespaces/{namespace}/{plural}/{name}")
    async def put_namespaced(
        namespace: str, plural: str, name: str, request: Request
    ) -> dict[str, Any]:
        model = _namespaced(plural)
        resource = _parse(model, await _json(request), namespace, name)
        result = store.put(resource).to_wire()
        services.agent.wake()
        return result

    @router.get("/namespaces/{namespace}/{plural}")
    async def list_namespaced(namespace: str, plural: str) -> list[dict[str, Any]]:
        return [r.to_wire() for r in store.of_kind(_namespaced(plural), namespace)]

    @router.get("/namespaces/{namespace}/{plural}/{name}")
    async def get_namespaced(namespace: str, plural: str, name: str) -> dict[str, Any]:
        return stored(_namespaced(plural), namespace, name)

    @router.delete("/namespaces/{namespace}/{plural}/{name}", status_code=status.HTTP_202_ACCEPTED)
    async def delete_namespaced(namespace: str, plural: str, name: str) -> dict[str, str]:
        model = _namespaced(plural)
        current = stored(model, namespace, name)
        if model is Backup and current["spec"].get("locked"):
            raise HTTPException(status.HTTP_409_CONFLICT, "the backup is locked; unlock it first")
        if model in {GameServer, Backup}:
            # The agent cleans up (a server's container and data, a backup's archive) and then
            # forgets the resource.
            store.mark_deleting(model, namespace, name)
        else:
            store.forget(model, namespace, name)
        services.agent.wake()
        return {"status": "deleting"}

    return router


def _servers_router(services: NodeServices, authenticator: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/v1/namespaces/{namespace}/gameservers/{name}", tags=["servers"])
    store, runtime = services.store, services.runtime

    def server(namespace: str, name: str) -> GameServer:
        found = store.get(GameServer, namespace, name)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"GameServer {name} not found")
        return found

    @router.post("/power", status_code=status.HTTP_202_ACCEPTED)
    async def power(
        namespace: str, name: str, body: PowerRequest, request: Request
    ) -> PowerAccepted:
        await requirement(authenticator, f"power.{body.action}")(request)
        gameserver = server(namespace, name)
        if gameserver.spec.suspended:
            raise HTTPException(status.HTTP_409_CONFLICT, "the server is suspended")
        spec = gameserver.spec.model_copy(deep=True)
        request_id: str | None = None
        if body.action == "start":
            spec.power.state = PowerState.RUNNING
        elif body.action == "stop":
            spec.power.state = PowerState.STOPPED
        elif body.action == "restart":
            request_id = spec.power.restart_request = uuid.uuid4().hex
        else:
            request_id = spec.power.kill_request = uuid.uuid4().hex
        store.put(gameserver.model_copy(update={"spec": spec}))
        services.agent.wake()
        return PowerAccepted(action=body.action, request=request_id)

    @router.get("/status", dependencies=[depends(authenticator, "stats.read")])
    async def server_status(namespace: str, name: str) -> dict[str, Any]:
        gameserver = server(namespace, name)
        return gameserver.status.to_wire() if gameserver.status else {"state": "Pending"}

    @router.post(
        "/command",
        status_code=status.HTTP_204_NO_CONTENT,
        dependencies=[depends(authenticator, "console.write")],
    )
    async def command(namespace: str, name: str, body: CommandRequest) -> None:
        server(namespace, name)
        try:
            await runtime.send_command(ServerKey(namespace, name), body.line)
        except (ServerNotFoundError, ServerNotRunningError) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc

    @router.get("/logs", dependencies=[depends(authenticator, "console.read")])
    async def logs(
        namespace: str, name: str, tail: Annotated[int, Query(ge=1, le=10000)] = 100
    ) -> dict[str, list[str]]:
        server(namespace, name)
        try:
            return {"lines": await runtime.logs(ServerKey(namespace, name), tail=tail)}
        except ServerNotFoundError:
            return {"lines": []}

    @router.get("/stats", dependencies=[depends(authenticator, "stats.read")])
    async def stats(namespace: str, name: str) -> dict[str, Any]:
        server(namespace, name)
        try:
            return _stats_body(await runtime.stats(ServerKey(namespace, name)))
        except ServerNotFoundError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc

    @router.get("/stats/stream", dependencies=[depends(authenticator, "stats.read")])
    async def stats_stream(
        namespace: str,
        name: str,
        interval: Annotated[float, Query(ge=1, le=60)] = 2,
        count: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
    ) -> StreamingResponse:
        """Server-sent events, one `stats` event per interval, until the client leaves."""
        server(namespace, name)
        key = ServerKey(namespace, name)

        async def events() -> AsyncIterator[bytes]:
            for _ in range(count):
                try:
                    body = _stats_body(await runtime.stats(key))
                except ServerNotFoundError:
                    body = {"unavailable": {"all": "the server has no container"}}
                yield f"event: stats\ndata: {json.dumps(body)}\n\n".encode()
                await asyncio.sleep(interval)

        return StreamingResponse(events(), media_type="text/event-stream")

    @router.websocket("/console")
    async def console(websocket: WebSocket, namespace: str, name: str) -> None:
        await _console(services, websocket, ServerKey(namespace, name))

    return router


async def _console(services: NodeServices, websocket: WebSocket, key: ServerKey) -> None:
    settings = services.settings
    assert services.authenticator is not None
    principal = services.authenticator.identify(websocket)
    if principal is None or not principal.allows(key.namespace, key.name, "console.read"):
        await websocket.close(code=1008, reason="a token granting console.read is required")
        return
    if services.store.get(GameServer, key.namespace, key.name) is None:
        await websocket.close(code=1008, reason="no such server")
        return
    if services.console_connections[key] >= settings.console_connections_per_server:
        # Accept first so the client learns why (1013: try again later), not just "403".
        await websocket.accept()
        await websocket.close(code=1013, reason="too many console connections to this server")
        return
    services.console_connections[key] += 1
    try:
        await websocket.accept()
        async with services.runtime.attach(key, backlog=100) as session:
            output = asyncio.create_task(_forward_output(websocket, session.lines()))
            reader = asyncio.create_task(
                _read_input(
                    websocket,
                    session,
                    settings,
                    may_write=principal.allows(key.namespace, key.name, "console.write"),
                )
            )
            try:
                done, _ = await asyncio.wait({output, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    reader.result()  # re-raises the client's disconnect
                else:
                    # The process ended (a stop, a restart): close, so that clients attach
                    # again for the next run instead of waiting on a finished log.
                    await websocket.close(code=1000, reason="the server's console ended")
            finally:
                for task in (output, reader):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    except ServerNotFoundError:
        await websocket.close(code=1011, reason="the server has no container yet")
    except WebSocketDisconnect:
        pass
    finally:
        services.console_connections[key] -= 1


async def _forward_output(websocket: WebSocket, lines: Any) -> None:
    async for line in lines:
        await websocket.send_json({"type": "line", "data": line})


async def _read_input(
    websocket: WebSocket, session: Any, settings: NodeSettings, *, may_write: bool
) -> None:
    bucket = TokenBucket.full(
        settings.console_messages_per_second,
        settings.console_messages_per_second * 2,
        time.monotonic(),
    )
    while True:
        message = await websocket.receive_text()
        if len(message.encode()) > settings.console_message_bytes:
            await websocket.close(code=1009, reason="message too large")
            return
        if not bucket.allow(time.monotonic()):
            await websocket.send_json({"type": "error", "message": "rate limit: message dropped"})
            continue
        try:
            parsed = json.loads(message)
            line = parsed["line"] if parsed.get("type") == "command" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            line = None
        if not may_write:
            # Checked per message: a read-only viewer stays connected but cannot type.
            await websocket.send_json(
                {"type": "error", "message": "the token does not grant console.write"}
            )
            continue
        if not isinstance(line, str) or not line or "\n" in line or "\r" in line:
            await websocket.send_json(
                {"type": "error", "message": 'expected {"type": "command", "line": "..."}'}
            )
            continue
        try:
            await session.send(line)
        except ServerNotRunningError:
            await websocket.send_json({"type": "error", "message": "the server is not running"})


def _stats_body(sample: ResourceStats) -> dict[str, Any]:
    return {
        "cpuPercent": sample.cpu_percent,
        "memoryBytes": sample.memory_bytes,
        "memoryLimitBytes": sample.memory_limit_bytes,
        "networkRxBytes": sample.network_rx_bytes,
        "networkTxBytes": sample.network_tx_bytes,
        "diskBytes": sample.disk_bytes,
        "unavailable": sample.unavailable,
    }


def _namespaced(plural: str) -> type[Resource]:
    try:
        return NAMESPACED[plural]
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown kind {plural!r}; one of {sorted(NAMESPACED)}"
        ) from None


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > 4 * 1024 * 1024:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "a resource is at most 4 MiB")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ResourceError([f"body: not JSON ({exc})"]) from exc
