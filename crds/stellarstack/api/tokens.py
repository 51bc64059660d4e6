"""Short-lived, server-scoped tokens the panel signs for browsers talking to a node directly.

The panel signs with its Ed25519 private key; a node holds only the public key, so a node (or
anyone who reads its configuration) can check tokens but never mint one. A token names one
server, one node (the audience), the permission scopes it grants and an expiry at most
`MAX_LIFETIME` ahead. Format: `base64url(payload JSON) "." base64url(signature)`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 4096

# What a node can be asked to do on behalf of a user; the panel maps its permission nodes here.
SCOPES = frozenset(
    {
        "console.read",
        "console.write",
        "power.start",
        "power.stop",
        "power.restart",
        "power.kill",
        "stats.read",
        "files.read",
        "files.write",
        "files.delete",
        "files.archive",
    }
)


class TokenError(ValueError):
    """A token that is malformed, forged, expired or meant for another node or server."""


@dataclass(frozen=True)
class ServerGrant:
    """What a valid token allows."""

    subject: str
    """The user the panel issued it for (for audit logs)."""
    namespace: str
    name: str
    scopes: frozenset[str]
    audience: str
    """The node (agent id) it is valid on."""
    expires_at: datetime
    token_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def allows(self, namespace: str, name: str, scope: str) -> bool:
        """Whether the grant covers `scope` on that server."""
        return (namespace, name) == (self.namespace, self.name) and scope in self.scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_server_token(key: Ed25519PrivateKey, grant: ServerGrant, *, now: datetime) -> str:
    """A signed token for `grant` (the panel's side)."""
    unknown = grant.scopes - SCOPES
    if unknown:
        raise TokenError(f"unknown scopes: {', '.join(sorted(unknown))}")
    if grant.expires_at - now > MAX_LIFETIME:
        raise TokenError(f"a token lives at most {int(MAX_LIFETIME.total_seconds())} s")
    payload = json.dumps(
        {
            "sub": grant.subject,
            "srv": f"{grant.namespace}/{grant.name}",
            "scp": sorted(grant.scopes),
            "aud": grant.audience,
            "exp": int(grant.expires_at.timestamp()),
            "iat": int(now.timestamp()),
            "jti": grant.token_id,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return f"{_b64(payload)}.{_b64(key.sign(payload))}"


def verify_server_token(
    token: str, key: Ed25519PublicKey, *, audience: str, now: datetime
) -> ServerGrant:
    """The grant a token carries; raises `TokenError` saying what is wrong with it."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError("not a server token")
    encoded_payload, encoded_signature = token.split(".")
    try:
        payload = _unb64(encoded_payload)
        signature = _unb64(encoded_signature)
    except (binascii.Error, ValueError) as exc:
        raise TokenError("not a server token") from exc
    try:
        key.verify(signature, payload)
    except InvalidSignature as exc:
        raise TokenError("the signature does not verify") from exc
    try:
        claims = json.loads(payload)
        namespace, _, name = str(claims["srv"]).partition("/")
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
        grant = ServerGrant(
            subject=str(claims["sub"]),
            namespace=namespace,
            name=name,
            scopes=frozenset(str(s) for s in claims["scp"]) & SCOPES,
            audience=str(claims["aud"]),
            expires_at=expires_at,
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("the token's claims are malformed") from exc
    if grant.audience != audience:
        raise TokenError("the token is for another node")
    if now > grant.expires_at + CLOCK_SKEW:
        raise TokenError("the token has expired")
    if issued_at > now + CLOCK_SKEW or grant.expires_at - issued_at > MAX_LIFETIME:
        raise TokenError("the token's lifetime is not acceptable")
    return grant
