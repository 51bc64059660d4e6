"""The console WebSocket `/api/servers/{id}/console`, proxied to the server's backend, and the
console log.

Authentication (checked before anything is sent, and again every
`console_recheck_seconds` and on every message):

- a browser session: the session cookie, accepted only when the `Origin` header is the
  panel's own `public_url` (browsers send cookies on cross-site WebSocket upgrades, and no
  CSRF header can be required on one);
- an API key: `Authorization: Bearer <key>` (scripts), or the subprotocol
  `stellarstack.bearer.<key>` next to `stellarstack.console.v1` (scripts in a browser, which
  cannot set headers). Keys are never accepted in the query string: query strings end up in
  access logs.

The socket needs console.read; each command needs console.write and each power action its
control.* node — a message the caller may not send is answered with an error and the socket
stays open. Limits (connections per server and per user, message size, message rate) and the
close codes are in `stellarstack.panel.consolepolicy`; the OpenAPI document describes this
socket from them (`stellarstack.panel.api.openapi`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect, WebSocketState

from stellarstack.api.runtime import ConsoleSession, ResourceStats
from stellarstack.panel.api.errors import ApiError
from stellarstack.panel.api.serverio import (
    SUBPROTOCOL,
    ServerUse,
    opened_backend,
    record,
    require_use,
    socket_use,
)
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    ResourceMissingError,
    ServerBackend,
    ServerNotRunningError,
)
from stellarstack.panel.consolepolicy import (
    CloseCode,
    Command,
    ConnectionCaps,
    ErrorCode,
    ErrorMessage,
    FloodGuard,
    Invalid,
    OutputMessage,
    PanelToClient,
    Power,
    PowerAcceptedMessage,
    ReplayFilter,
    StatsMessage,
    StatusMessage,
    TokenBucket,
    parse_client_message,
)
from stellarstack.panel.context import PanelContext

router = APIRouter(prefix="/api/servers/{server_id}", tags=["console"])

BACKLOG = 100
REATTACH_SECONDS = 1.0
REATTACH_MAX_SECONDS = 15.0


class ConsoleLog(BaseModel):
    lines: list[str]


@router.get("/logs", summary="The last console lines")
async def console_logs(
    use: Annotated[ServerUse, Depends(require_use("console.read"))],
    request: Request,
    tail: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> ConsoleLog:
    context: PanelContext = request.app.state.context
    async with opened_backend(context, use.server) as backend:
        try:
            lines = await backend.logs(use.server.namespace, use.server.resource_name, tail=tail)
        except ResourceMissingError:
            lines = []
        except BackendUnavailableError as exc:
            raise ApiError(503, "backend_unavailable", str(exc)) from exc
    return ConsoleLog(lines=lines)


class _ClosedError(Exception):
    """Ends a console socket with a close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]


def _caps(context: PanelContext, websocket: WebSocket) -> ConnectionCaps:
    state = websocket.app.state
    caps: ConnectionCaps | None = getattr(state, "console_caps", None)
    if caps is None:
        caps = ConnectionCaps(
            per_server=context.settings.console_connections_per_server,
            per_user=context.settings.console_connections_per_user,
        )
        state.console_caps = caps
    return caps


def _closing(error: ApiError) -> _ClosedError:
    if error.status_code == 401:
        return _ClosedError(CloseCode.UNAUTHENTICATED, error.message)
    if error.code == "suspended":
        return _ClosedError(CloseCode.SUSPENDED, error.message)
    return _ClosedError(CloseCode.FORBIDDEN, error.message)


@router.websocket("/console")
async def console(websocket: WebSocket, server_id: str) -> None:
    context: PanelContext = websocket.app.state.context
    offered = list(websocket.scope.get("subprotocols") or [])
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    try:
        use = await context.database_gate.run(
            socket_use, context, websocket, server_id, "console.read"
        )
    except ApiError as error:
        # Accept first so the client learns why; a refused upgrade says only "403".
        closed = _closing(error)
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code=closed.code, reason=closed.reason)
        return
    caps = _caps(context, websocket)
    refused = caps.acquire(server_id, use.user_id)
    await websocket.accept(subprotocol=subprotocol)
    if refused is not None:
        await websocket.close(code=CloseCode.TRY_AGAIN_LATER, reason=refused)
        return
    try:
        await _serve(context, websocket, server_id, use)
    except _ClosedError as closed:
        if websocket.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=closed.code, reason=closed.reason)
    finally:
        caps.release(server_id, use.user_id)


async def _serve(
    context: PanelContext, websocket: WebSocket, server_id: str, use: ServerUse
) -> None:
    async with opened_backend(context, use.server) as backend:
        await _send(websocket, StatusMessage(type="status", state=use.server.state))
        current = _Current(use)
        tasks = [
            asyncio.create_task(_pump_output(websocket, backend, current)),
            asyncio.create_task(_read_input(context, websocket, server_id, backend, current)),
            asyncio.create_task(_recheck(context, websocket, server_id, backend, current)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if isinstance(error, WebSocketDisconnect):
                return
            if isinstance(error, _ClosedError):
                raise error
            if error is not None:
                raise _ClosedError(CloseCode.BACKEND, f"console failed: {error}")


class _Current:
    """The latest access check of this socket (replaced by each re-check) and the attached
    console, if the server has one right now."""

    def __init__(self, use: ServerUse) -> None:
        self.use = use
        self.state = use.server.state
        self.session: ConsoleSession | None = None


async def _refresh(
    context: PanelContext, websocket: WebSocket, server_id: str, current: _Current
) -> ServerUse:
    try:
        use = await context.database_gate.run(
            socket_use, context, websocket, server_id, "console.read"
        )
    except ApiError as error:
        raise _closing(error) from None
    current.use = use
    return use


async def _pump_output(websocket: WebSocket, backend: ServerBackend, current: _Current) -> None:
    """Output of the server's console; attaches again after the process ended (a stop, a
    restart), so one socket follows the server through its power cycles. The backlog a new
    attachment replays is not sent twice, and a server that stays stopped is asked less and
    less often."""
    server = current.use.server
    replayed = ReplayFilter(keep=BACKLOG)
    pause = REATTACH_SECONDS
    while True:
        sent = False
        replayed.new_session()
        try:
            async with backend.console(
                server.namespace, server.resource_name, backlog=BACKLOG
            ) as session:
                current.session = session
                async for line in session.lines():
                    for fresh in replayed.feed(line):
                        sent = True
                        await _send(websocket, OutputMessage(type="output", line=fresh))
        except ResourceMissingError as exc:
            raise _ClosedError(CloseCode.FORBIDDEN, f"the server is gone: {exc}") from exc
        except BackendError:
            pass  # no process to attach to yet (stopped, installing); try again below
        finally:
            current.session = None
        pause = REATTACH_SECONDS if sent else min(pause * 2, REATTACH_MAX_SECONDS)
        await asyncio.sleep(pause)


async def _read_input(
    context: PanelContext,
    websocket: WebSocket,
    server_id: str,
    backend: ServerBackend,
    current: _Current,
) -> None:
    settings = context.settings
    rate = settings.console_messages_per_second
    guard = FloodGuard(
        TokenBucket.full(rate, rate * 2, time.monotonic()), settings.console_flood_close_after
    )
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            if len(data) > settings.console_message_bytes:
                raise _ClosedError(CloseCode.TOO_BIG, "message too large")
            await _error(websocket, "invalid", "messages are JSON text")
            continue
        if len(text.encode()) > settings.console_message_bytes:
            raise _ClosedError(
                CloseCode.TOO_BIG, f"messages are at most {settings.console_message_bytes} bytes"
            )
        verdict = guard.check(time.monotonic())
        if verdict == "close":
            raise _ClosedError(CloseCode.POLICY, "too many messages; slow down")
        if verdict == "drop":
            await _error(websocket, "rate_limited", "too many messages: this one was dropped")
            continue
        use = await _refresh(context, websocket, server_id, current)
        parsed = parse_client_message(text)
        if isinstance(parsed, Invalid):
            await _error(websocket, "invalid", parsed.message)
        elif isinstance(parsed, Command):
            await _command(context, websocket, current.session, use, parsed)
        elif isinstance(parsed, Power):
            await _power(context, websocket, backend, use, parsed)


async def _command(
    context: PanelContext,
    websocket: WebSocket,
    session: ConsoleSession | None,
    use: ServerUse,
    command: Command,
) -> None:
    if not use.can("console.write"):
        await _error(websocket, "forbidden", "you lack the 'console.write' permission")
        return
    try:
        if session is None:
            raise ServerNotRunningError("no console attached")
        await session.send(command.line)
    except ServerNotRunningError:
        await _error(websocket, "not_running", "the server is not running")
        return
    await context.database_gate.run(
        lambda: record(
            context, use, event="server.console.command", properties={"line": command.line}
        )
    )


async def _power(
    context: PanelContext,
    websocket: WebSocket,
    backend: ServerBackend,
    use: ServerUse,
    power: Power,
) -> None:
    if not use.can(power.node):
        await _error(websocket, "forbidden", f"you lack the {power.node!r} permission")
        return
    server = use.server
    try:
        request = await backend.power(server.namespace, server.resource_name, power.action)
    except BackendError as exc:
        await _error(websocket, "power_failed", str(exc))
        return
    await context.database_gate.run(
        lambda: record(
            context,
            use,
            event=f"server.power.{power.action}",
            properties={"request": request, "via": "console"},
        )
    )
    await _send(websocket, PowerAcceptedMessage(type="power", action=power.action, request=request))


async def _recheck(
    context: PanelContext,
    websocket: WebSocket,
    server_id: str,
    backend: ServerBackend,
    current: _Current,
) -> None:
    """Closes the socket once the caller loses access; meanwhile reports status and stats."""
    interval = context.settings.console_recheck_seconds
    while True:
        await asyncio.sleep(interval)
        use = await _refresh(context, websocket, server_id, current)
        if use.server.state != current.state:
            current.state = use.server.state
            await _send(websocket, StatusMessage(type="status", state=current.state))
        with contextlib.suppress(BackendError):
            sample = await backend.stats(use.server.namespace, use.server.resource_name)
            await _send(websocket, _stats(sample))


def _stats(sample: ResourceStats) -> StatsMessage:
    return StatsMessage(
        type="stats",
        cpuPercent=sample.cpu_percent,
        memoryBytes=sample.memory_bytes,
        memoryLimitBytes=sample.memory_limit_bytes,
        networkRxBytes=sample.network_rx_bytes,
        networkTxBytes=sample.network_tx_bytes,
        diskBytes=sample.disk_bytes,
        unavailable=dict(sample.unavailable),
    )


async def _send(websocket: WebSocket, message: PanelToClient) -> None:
    await websocket.send_json(message)


async def _error(websocket: WebSocket, code: ErrorCode, message: str) -> None:
    await _send(websocket, ErrorMessage(type="error", code=code, message=message))
