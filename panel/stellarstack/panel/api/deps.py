"""Dependencies every route uses: the database session, who is calling, and what they may do.

Who: a browser session (cookie `stellarstack_session`, plus the `X-CSRF-Token` header on
writes) or an API key (`Authorization: Bearer <key>`). An API key acts as its user, narrowed to
its scopes. Servers a caller cannot see are reported as not found, never as forbidden, so
nobody learns that they exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from stellarstack.panel import permissions
from stellarstack.panel.api.errors import ApiError, forbidden, not_found
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import READ_ONLY_OPTION, transaction
from stellarstack.panel.db.models import ApiKey, LoginSession, Role, Server, Subuser, User
from stellarstack.panel.security.tokens import hash_token, keyed_digest, same
from stellarstack.panel.services.activity import Actor

SESSION_COOKIE = "stellarstack_session"
CSRF_COOKIE = "stellarstack_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_KEY_PREFIX = "ssk_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Last-used times are written at most this often per key or session, whatever the address,
# so reads stay reads.
TOUCH_INTERVAL = timedelta(seconds=60)

_bearer = HTTPBearer(auto_error=False, description="An API key: `ssk_<id>.<secret>`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Browser session.")


async def get_context(request: Request) -> PanelContext:
    # A coroutine, like every dependency that does no I/O: a plain function would cost a
    # round trip through the thread pool.
    context: PanelContext = request.app.state.context
    return context


ContextDep = Annotated[PanelContext, Depends(get_context)]


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error —
    before the response is sent. Reads (GET, HEAD) take no write lock on SQLite, so they run
    side by side.

    The request waits for admission at the database gate in the event loop (see
    `DatabaseGate`) and keeps its place until the transaction has ended, so however many
    requests arrive, no worker thread ever waits for a pooled connection.

    A read's transaction ends in the event loop, which saves a thread hand-off per request:
    that waits on nothing (SQLite ends a read in memory; PostgreSQL reads run in autocommit,
    see `make_session_factory`). A write's commit waits for the disk or the server, so it
    runs in a worker thread."""
    # The context from the app, not through `ContextDep`: each dependency in the tree costs
    # its resolution on every request, and this one is on every request.
    context: PanelContext = request.app.state.context
    reading = request.method in SAFE_METHODS
    factory = context.read_sessions if reading else context.sessions
    async with context.database_gate.admitted():
        session = factory()
        try:
            yield session
        except BaseException:
            if reading:
                _finish(session, commit=False)
            else:
                await to_thread.run_sync(lambda: _finish(session, commit=False))
            raise
        if reading:
            _finish(session, commit=True)
        else:
            await to_thread.run_sync(lambda: _finish(session, commit=True))


# Scope "function": the transaction ends when the route returns, not after the response has
# been sent, so a client never sees an answer whose writes are not committed yet.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who they are, read with one narrow query. The full rows
    (`user`, `session`, `api_key`) are loaded from the request's transaction when a route
    asks for them."""

    user_id: str
    is_admin: bool
    ip: str | None
    db: Session
    session_id: str | None = None
    api_key_id: str | None = None
    key_scopes: frozenset[str] | None = None

    @property
    def user(self) -> User:
        user = self.db.get(User, self.user_id)
        if user is None:  # deleted since authentication, inside this request
            raise _unauthenticated("the account no longer exists")
        return user

    @property
    def session(self) -> LoginSession | None:
        return None if self.session_id is None else self.db.get(LoginSession, self.session_id)

    @property
    def api_key(self) -> ApiKey | None:
        return None if self.api_key_id is None else self.db.get(ApiKey, self.api_key_id)

    @property
    def scopes(self) -> frozenset[str] | None:
        """The API key's scopes; None for a browser session (all of the user's rights)."""
        return self.key_scopes

    def has_scope(self, scope: str) -> bool:
        return self.key_scopes is None or permissions.scopes_allow(self.key_scopes, scope)

    @property
    def actor(self) -> Actor:
        return Actor(
            user_id=self.user_id,
            api_key_id=self.api_key_id,
            session_id=self.session_id,
            ip=self.ip,
        )

    @property
    def label(self) -> str:
        """Identifies the caller in idempotency records and logs."""
        if self.api_key_id is not None:
            return f"{self.user_id}:key:{self.api_key_id}"
        return f"{self.user_id}:session"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def csrf_token_for(context: PanelContext, session_id: str) -> str:
    return keyed_digest(context.settings.secret_key.get_secret_value(), f"csrf:{session_id}")


def _unauthenticated(message: str = "authentication required") -> ApiError:
    return ApiError(
        status.HTTP_401_UNAUTHORIZED,
        "unauthenticated",
        message,
        headers={"WWW-Authenticate": "Bearer"},
    )


# Built once: the caller and their account in one narrow query, not two full rows.
_API_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.secret_hash,
        ApiKey.scopes,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        User.id.label("user_id"),
        User.role,
        User.disabled_at,
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
_SESSION_LOOKUP = (
    select(
        LoginSession.id,
        LoginSession.expires_at,
        LoginSession.revoked_at,
        LoginSession.last_seen_at,
        LoginSession.two_factor_pending,
        User.id.label("user_id"),
        User.role,
        User.disabled_at,
    )
    .join(User, User.id == LoginSession.user_id)
    .where(LoginSession.token_hash == bindparam("token_hash"))
)


def _is_stale(last: datetime | None, now: datetime) -> bool:
    return last is None or now - last > TOUCH_INTERVAL


def _touch(db: Session, context: PanelContext, statement: Update, *, read_only: bool) -> None:
    """Write a last-used time: in the request's transaction when it writes anyway, else in a
    short one of its own (a read's transaction must stay a read, without the write lock)."""
    if read_only:
        with transaction(context.sessions) as writer:
            writer.execute(statement)
    else:
        db.execute(statement)


def _from_api_key(
    db: Session,
    context: PanelContext,
    credentials: str,
    ip: str | None,
    *,
    read_only: bool = False,
) -> Principal:
    prefix, _, secret = credentials.partition(".")
    if not prefix.startswith(API_KEY_PREFIX) or not secret:
        raise _unauthenticated("malformed API key")
    key = db.connection().execute(_API_KEY_LOOKUP, {"prefix": prefix}).one_or_none()
    now = context.clock()
    if key is None or not same(key.secret_hash, hash_token(secret)):
        raise _unauthenticated("invalid API key")
    if key.revoked_at is not None:
        raise _unauthenticated("this API key was revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise _unauthenticated("this API key expired")
    if key.disabled_at is not None:
        raise _unauthenticated("the account is disabled")
    if _is_stale(key.last_used_at, now):
        # Throttled per key: a key used from several addresses does not write on every
        # request; the address of the latest throttled write is kept. The condition makes
        # parallel requests that all saw a stale time write once.
        statement = (
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_INTERVAL),
            )
            .values(last_used_at=now, last_used_ip=ip)
        )
        _touch(db, context, statement, read_only=read_only)
    return Principal(
        user_id=key.user_id,
        is_admin=key.role is Role.ADMIN,
        ip=ip,
        db=db,
        api_key_id=key.id,
        key_scopes=frozenset(key.scopes),
    )


def _from_session(
    db: Session,
    context: PanelContext,
    token: str,
    ip: str | None,
    *,
    allow_pending: bool,
    read_only: bool = False,
) -> Principal:
    login = (
        db.connection().execute(_SESSION_LOOKUP, {"token_hash": hash_token(token)}).one_or_none()
    )
    now = context.clock()
    if login is None or login.revoked_at is not None or login.expires_at <= now:
        raise _unauthenticated("your session ended; log in again")
    if login.two_factor_pending and not allow_pending:
        raise _unauthenticated("two-factor code required")
    if login.disabled_at is not None:
        raise _unauthenticated("the account is disabled")
    # A pending session keeps its short life: using it must not stretch it to a full one.
    if _is_stale(login.last_seen_at, now) and not login.two_factor_pending:
        lifetime = timedelta(hours=context.settings.session_lifetime_hours)
        statement = (
            update(LoginSession)
            .where(
                LoginSession.id == login.id,
                LoginSession.last_seen_at < now - TOUCH_INTERVAL,
            )
            .values(last_seen_at=now, expires_at=now + lifetime)
        )
        _touch(db, context, statement, read_only=read_only)
    return Principal(
        user_id=login.user_id,
        is_admin=login.role is Role.ADMIN,
        ip=ip,
        db=db,
        session_id=login.id,
    )


def authenticate(
    request: Request, db: Session, context: PanelContext, *, allow_pending: bool = False
) -> Principal:
    """The caller of `request`, or 401. Cookie-authenticated writes must carry the CSRF token."""
    # Sessions opened for reads (see get_db) must not write; callers with their own write
    # session (the console, file streams) update last-used times in it directly.
    read_only = bool(db.get_bind().get_execution_options().get(READ_ONLY_OPTION))
    ip = client_ip(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return _from_api_key(db, context, header[7:].strip(), ip, read_only=read_only)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthenticated()
    principal = _from_session(
        db, context, token, ip, allow_pending=allow_pending, read_only=read_only
    )
    if request.method not in SAFE_METHODS and principal.session_id is not None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same(sent, csrf_token_for(context, principal.session_id)):
            # Logged: a forged cross-site write is worth seeing in the activity log.
            raise denied(
                ApiError(
                    status.HTTP_403_FORBIDDEN,
                    "csrf_failed",
                    f"cookie-authenticated writes need the {CSRF_HEADER} header "
                    f"(the value of the {CSRF_COOKIE} cookie)",
                ),
                principal,
                needed="csrf",
            )
    return principal


def current_principal(
    request: Request,
    db: SessionDep,
    _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    _cookie_doc: Annotated[str | None, Depends(_cookie)] = None,
) -> Principal:
    # `_bearer_doc` and `_cookie_doc` only describe the two ways in to the OpenAPI document.
    return authenticate(request, db, request.app.state.context)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def denied(
    error: ApiError,
    principal: Principal,
    *,
    needed: str,
    server_id: str | None = None,
    target_id: str | None = None,
) -> ApiError:
    """`error`, marked to be written to the activity log as `auth.denied` (who asked for what
    they lacked) once the request's transaction has been rolled back."""
    error.activity = {
        "event": "auth.denied",
        "actor": principal.actor,
        "target_type": "server" if (server_id or target_id) else None,
        "target_id": server_id or target_id,
        "server_id": server_id,
        "properties": {"status": error.status_code, "needed": needed, "reason": error.message},
    }
    return error


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold `scope` when calling with an API key."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_scope(scope):
            raise denied(
                forbidden(f"this API key lacks the {scope!r} scope"), principal, needed=scope
            )
        return principal

    return check


def require_admin(scope: str = "admin:read") -> Callable[..., Awaitable[Principal]]:
    """A dependency: an admin (with `scope` when calling with an API key). Everyone else gets
    404, as if the admin routes did not exist."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.is_admin:
            raise denied(not_found(), principal, needed="admin")
        if not principal.has_scope(scope):
            raise denied(
                forbidden(f"this API key lacks the {scope!r} scope"), principal, needed=scope
            )
        return principal

    # Read by the permission matrix test.
    check.admin_scope = scope  # type: ignore[attr-defined]
    return check


AdminReader = Annotated[Principal, Depends(require_admin("admin:read"))]
AdminWriter = Annotated[Principal, Depends(require_admin("admin:write"))]


@dataclass(frozen=True)
class ServerAccess:
    """A server the caller can see, and the permission nodes they hold on it."""

    server: Server
    principal: Principal
    nodes: frozenset[str]
    is_owner: bool

    def can(self, node: str) -> bool:
        return node in self.nodes and self.principal.has_scope(permissions.scope_for(node))


def server_nodes(db: Session, server: Server, principal: Principal) -> frozenset[str] | None:
    """What the caller may do on `server`; None when they may not see it at all."""
    if principal.is_admin or (server.owner_id is not None and server.owner_id == principal.user_id):
        return permissions.ALL_NODES
    granted = db.scalar(
        select(Subuser.permissions).where(
            Subuser.server_id == server.id, Subuser.user_id == principal.user_id
        )
    )
    if granted is None:
        return None
    return permissions.expand(granted)


def load_server_access(db: Session, principal: Principal, server_id: str) -> ServerAccess:
    server = db.get(Server, server_id)
    nodes = None if server is None else server_nodes(db, server, principal)
    if server is None or nodes is None:
        raise not_found("server")
    return ServerAccess(
        server=server,
        principal=principal,
        nodes=nodes,
        is_owner=principal.is_admin or server.owner_id == principal.user_id,
    )


def authorize_server(db: Session, principal: Principal, server_id: str, node: str) -> ServerAccess:
    """The caller's access to a server when they hold `node` on it and the node's scope; 404
    when they cannot see it, 403 when they lack the node or the scope (each denial logged)."""
    try:
        access = load_server_access(db, principal, server_id)
    except ApiError as error:
        # The id goes in target_id only: the server may not exist (no foreign key to it).
        raise denied(error, principal, needed=node, target_id=server_id[:100]) from None
    if node not in access.nodes:
        raise denied(
            forbidden(f"you lack the {node!r} permission on this server"),
            principal,
            needed=node,
            server_id=server_id,
        )
    scope = permissions.scope_for(node)
    if not principal.has_scope(scope):
        raise denied(
            forbidden(f"this API key lacks the {scope!r} scope"),
            principal,
            needed=scope,
            server_id=server_id,
        )
    return access


def require_permission(node: str) -> Callable[..., ServerAccess]:
    """A dependency for routes under `/servers/{server_id}`: the server, when the caller holds
    permission `node` on it (and the matching scope with an API key); 404 when they cannot see
    the server, 403 when they see it but lack the node."""
    if node not in permissions.ALL_NODES:
        raise KeyError(f"unknown permission node {node!r}")

    def check(server_id: str, principal: CurrentPrincipal, db: SessionDep) -> ServerAccess:
        return authorize_server(db, principal, server_id, node)

    # Lets tests and documentation find which node each route needs (the permission matrix).
    check.permission_node = node  # type: ignore[attr-defined]
    return check
