"""Access checks and backends for the routes that talk to a running server (console, files,
backups, schedules).

These routes hold a request open for long (a console for hours, a download for minutes) while
the database must stay free: on SQLite every transaction holds the write lock. So they do not
use `SessionDep` (a transaction for the whole request); each check here is a short
transaction of its own, run in a worker thread, and returns plain snapshots (`ServerUse`) that
outlive it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, status
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from stellarstack.panel import permissions
from stellarstack.panel.api.deps import (
    API_KEY_PREFIX,
    SAFE_METHODS,
    SESSION_COOKIE,
    Principal,
    _from_api_key,
    _from_session,
    authenticate,
    authorize_server,
    client_ip,
)
from stellarstack.panel.api.errors import ApiError, not_found
from stellarstack.panel.backends.base import ServerBackend
from stellarstack.panel.consolepolicy import api_key_from_subprotocols, same_origin
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import KubernetesTarget, Node, Server, TargetKind
from stellarstack.panel.services.activity import Actor

SUBPROTOCOL = "stellarstack.console.v1"
"""Offered by console clients; the panel answers with it."""
BEARER_SUBPROTOCOL = "stellarstack.bearer."
"""`stellarstack.bearer.<API key>` in `Sec-WebSocket-Protocol`: how a script in a browser
passes an API key to a WebSocket (it cannot set Authorization; a query string would be
logged)."""


@dataclass(frozen=True)
class ServerTarget:
    """Where a server runs, as read at the time of the check."""

    id: str
    namespace: str
    resource_name: str
    target_kind: TargetKind
    suspended: bool
    state: str
    backup_limit: int
    schedule_limit: int
    node_id: str | None = None
    node_url: str | None = None
    node_token: str | None = None
    kube_target_id: str | None = None
    kube_namespace: str | None = None
    kube_context: str | None = None


@dataclass(frozen=True)
class ServerUse:
    """A caller allowed to use a server, with what they may do on it."""

    server: ServerTarget
    actor: Actor
    user_id: str
    nodes: frozenset[str]
    scopes: frozenset[str] | None

    def can(self, node: str) -> bool:
        return node in self.nodes and (
            self.scopes is None
            or permissions.scopes_allow(self.scopes, permissions.scope_for(node))
        )


def _target(db: Session, server: Server) -> ServerTarget:
    values: dict[str, Any] = {
        "id": server.id,
        "namespace": server.namespace,
        "resource_name": server.resource_name,
        "target_kind": server.target_kind,
        "suspended": server.suspended,
        "state": server.state,
        "backup_limit": server.backup_limit,
        "schedule_limit": server.schedule_limit,
    }
    if server.target_kind is TargetKind.DOCKER and server.node_id is not None:
        node = db.get(Node, server.node_id)
        if node is not None:
            values.update(node_id=node.id, node_url=node.url, node_token=node.token)
    elif server.kubernetes_target_id is not None:
        target = db.get(KubernetesTarget, server.kubernetes_target_id)
        if target is not None:
            values.update(
                kube_target_id=target.id,
                kube_namespace=target.namespace,
                kube_context=target.context,
            )
    return ServerTarget(**values)


def check_use(
    db: Session, context: PanelContext, principal: Principal, server_id: str, node: str
) -> ServerUse:
    """The caller's use of the server, when they hold `node` on it (and its scope); the same
    answers as `require_permission`: 404 when they cannot see it, 403 when they lack the node.
    A suspended server refuses everyone but admins (409)."""
    access = authorize_server(db, principal, server_id, node)
    if access.server.suspended and not principal.is_admin:
        raise ApiError(status.HTTP_409_CONFLICT, "suspended", "the server is suspended")
    return ServerUse(
        server=_target(db, access.server),
        actor=principal.actor,
        user_id=principal.user_id,
        nodes=access.nodes,
        scopes=principal.scopes,
    )


def _record_denial(context: PanelContext, error: ApiError) -> None:
    if error.activity:
        with transaction(context.sessions) as db:
            context.activity.record(db, **error.activity)


def request_use(request: Request, context: PanelContext, server_id: str, node: str) -> ServerUse:
    """`check_use` for an HTTP request, in a transaction of its own (call from a thread, once
    admitted by the database gate); a read's takes no write lock on SQLite. Denials are logged
    by the app's error handler."""
    sessions = context.read_sessions if request.method in SAFE_METHODS else context.sessions
    with transaction(sessions) as db:
        principal = authenticate(request, db, context)
        return check_use(db, context, principal, server_id, node)


def require_use(node: str) -> Callable[..., Any]:
    """A dependency for `/api/servers/{server_id}/...` routes that stream: like
    `require_permission(node)`, without holding a transaction for the whole request."""
    if node not in permissions.ALL_NODES:
        raise KeyError(f"unknown permission node {node!r}")

    async def check(server_id: str, request: Request) -> ServerUse:
        context: PanelContext = request.app.state.context
        return await context.database_gate.run(request_use, request, context, server_id, node)

    # Read by the permission matrix test.
    check.permission_node = node  # type: ignore[attr-defined]
    return check


def socket_principal(db: Session, context: PanelContext, connection: HTTPConnection) -> Principal:
    """Who opened a WebSocket: an API key in the Authorization header or the bearer
    subprotocol, else the session cookie — only from the panel's own origin, because browsers
    send cookies on cross-site WebSocket upgrades and no CSRF header can be required there."""
    ip = client_ip(connection)  # type: ignore[arg-type]
    header = connection.headers.get("authorization", "")
    offered = list(connection.scope.get("subprotocols") or [])
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    key = key or api_key_from_subprotocols(offered, BEARER_SUBPROTOCOL)
    if key:
        return _from_api_key(db, context, key, ip)
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "unauthenticated",
            f"authenticate with a session cookie or an API key ({API_KEY_PREFIX}...) in the "
            f"Authorization header or the {BEARER_SUBPROTOCOL}<key> subprotocol",
        )
    own_origins = [context.settings.public_url, *context.settings.extra_origins]
    if not any(same_origin(connection.headers.get("origin"), url) for url in own_origins):
        raise ApiError(
            status.HTTP_403_FORBIDDEN,
            "origin_refused",
            "cookie-authenticated consoles must come from the panel's own origin",
        )
    return _from_session(db, context, token, ip, allow_pending=False)


def socket_use(
    context: PanelContext, connection: HTTPConnection, server_id: str, node: str
) -> ServerUse:
    """`check_use` for a WebSocket (call from a thread, once admitted by the database gate;
    re-run to re-check an open socket).
    No error handler sees a WebSocket's errors, so denials are logged here."""
    try:
        with transaction(context.sessions) as db:
            principal = socket_principal(db, context, connection)
            return check_use(db, context, principal, server_id, node)
    except ApiError as error:
        _record_denial(context, error)
        raise


def record(
    context: PanelContext,
    use: ServerUse,
    *,
    event: str,
    target_type: str | None = None,
    target_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
) -> None:
    """One activity row for an action on the server, in a transaction of its own (call from a
    thread, once admitted by the database gate, after the backend accepted the action)."""
    with transaction(context.sessions) as db:
        context.activity.record(
            db,
            event=event,
            actor=use.actor,
            target_type=target_type or "server",
            target_id=target_id or use.server.id,
            server_id=use.server.id,
            properties=dict(properties or {}),
        )


def backend_for(context: PanelContext, server: ServerTarget) -> ServerBackend:
    """The shared backend of the server's node or Kubernetes target (call from the event
    loop; the registry owns and closes it)."""
    if server.target_kind is TargetKind.DOCKER:
        if server.node_id is None or server.node_url is None or server.node_token is None:
            raise not_found("the server's node")
        node = Node(id=server.node_id, url=server.node_url, token=server.node_token)
        return context.backends.for_node(node)
    if server.kube_target_id is None or server.kube_namespace is None:
        raise not_found("the server's Kubernetes target")
    target = KubernetesTarget(
        id=server.kube_target_id, namespace=server.kube_namespace, context=server.kube_context
    )
    return context.backends.for_target(target)


@contextlib.asynccontextmanager
async def opened_backend(
    context: PanelContext, server: ServerTarget
) -> AsyncIterator[ServerBackend]:
    """`backend_for` as a block, so backend failures that escape it read the same everywhere."""
    yield backend_for(context, server)


STREAM_CHUNK = 256 * 1024


async def coalesced(body: AsyncIterator[bytes], size: int = STREAM_CHUNK) -> AsyncIterator[bytes]:
    """`body` re-cut into chunks of about `size` bytes: the backend's reads are small (64 KiB
    at most), and each chunk costs a round through the server's send path; memory stays
    bounded by `size`."""
    pending = bytearray()
    async for chunk in body:
        pending += chunk
        if len(pending) >= size:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)
