"""Who may call the node API: the panel (the node token) or a browser (a panel-signed token).

The node token grants everything. A server token grants the scopes it names on the one server
it names, on this node only, for at most 15 minutes; it may also arrive as a `token` query
parameter, because browsers cannot set headers on WebSockets or download links. The node token
is never accepted from the query string (query strings end up in logs).

`ServerTokenAuthenticator` is the variant for the single-server files service on Kubernetes:
it knows no node token at all, only server tokens (the routes grant each its one server).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, HTTPException, Request, status
from starlette.requests import HTTPConnection

from stellarstack.api.tokens import ServerGrant, TokenError, verify_server_token
from stellarstack.nodeproxy.settings import NodeSettings


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the panel, or the holder of a server grant."""

    grant: ServerGrant | None
    """None for the panel (the node token), which may do everything."""

    def allows(self, namespace: str, name: str, scope: str) -> bool:
        """Whether the caller may use `scope` on that server."""
        return self.grant is None or self.grant.allows(namespace, name, scope)


class Identifies(Protocol):
    """What the route dependencies need: the caller of a request, or None."""

    def identify(self, connection: HTTPConnection) -> Principal | None:
        """The caller of a request or WebSocket, or None when its credentials do not hold."""
        ...


def _presented_token(connection: HTTPConnection) -> str | None:
    """A bearer token from the Authorization header, else the `token` query parameter (the
    only way through the API server's service proxy, which consumes Authorization)."""
    header = connection.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and presented:
        return presented
    return connection.query_params.get("token")


class ServerTokenAuthenticator:
    """Only panel-signed server tokens: the files service of one GameServer on Kubernetes,
    where no node token exists to leak. A valid token for another server identifies its
    holder, whom the route then refuses (403) for lacking a grant on this server."""

    def __init__(self, panel_key: Ed25519PublicKey, *, audience: str) -> None:
        self._panel_key = panel_key
        self._audience = audience

    def identify(self, connection: HTTPConnection) -> Principal | None:
        token = _presented_token(connection)
        if not token:
            return None
        try:
            grant = verify_server_token(
                token, self._panel_key, audience=self._audience, now=datetime.now(UTC)
            )
        except TokenError:
            return None
        return Principal(grant=grant)


class Authenticator:
    """Checks presented credentials against the node token and the panel's public key."""

    def __init__(self, settings: NodeSettings) -> None:
        self._node_token = settings.token.get_secret_value().encode()
        self._audience = settings.agent_id
        self._panel_key: Ed25519PublicKey | None = None
        if settings.panel_public_key:
            key = load_pem_public_key(settings.panel_public_key.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("STELLARSTACK_NODE_PANEL_PUBLIC_KEY must be an Ed25519 key")
            self._panel_key = key

    def identify(self, connection: HTTPConnection) -> Principal | None:
        """The caller of a request or WebSocket, or None when its credentials do not hold."""
        header = connection.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and presented:
            # compare_digest keeps the time independent of where the strings differ.
            if hmac.compare_digest(presented.encode(), self._node_token):
                return Principal(grant=None)
            return self._server_token(presented)
        query_token = connection.query_params.get("token")
        return self._server_token(query_token) if query_token else None

    def _server_token(self, token: str) -> Principal | None:
        if self._panel_key is None:
            return None
        try:
            grant = verify_server_token(
                token, self._panel_key, audience=self._audience, now=datetime.now(UTC)
            )
        except TokenError:
            return None
        return Principal(grant=grant)


def requirement(
    authenticator: Identifies, scope: str | None
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller must be the panel, or (with `scope`) hold it on the server in
    the route's path."""

    async def check(request: Request) -> Principal:
        principal = authenticator.identify(request)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid node token or server token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.grant is None:
            return principal
        namespace = request.path_params.get("namespace", "")
        name = request.path_params.get("name", "")
        if scope is None or not principal.allows(namespace, name, scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the token does not grant {scope or 'node administration'} on this server",
            )
        return principal

    return check


def depends(authenticator: Identifies, scope: str | None) -> Any:
    """`Depends(requirement(...))`, for `dependencies=[...]` lists."""
    return Depends(requirement(authenticator, scope))
