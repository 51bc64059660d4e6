"""Panel-signed server tokens: what verifies and every way one does not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stellarstack.api.tokens import (
    ServerGrant,
    TokenError,
    sign_server_token,
    verify_server_token,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def grant(**changes: object) -> ServerGrant:
    fields: dict[str, object] = {
        "subject": "alice",
        "namespace": "games",
        "name": "mc1",
        "scopes": frozenset({"console.read", "files.read"}),
        "audience": "node-a",
        "expires_at": NOW + timedelta(minutes=10),
    }
    fields.update(changes)
    return ServerGrant(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    token = sign_server_token(KEY, grant(), now=NOW)
    verified = verify_server_token(token, KEY.public_key(), audience="node-a", now=NOW)
    assert verified.allows("games", "mc1", "files.read")
    assert not verified.allows("games", "mc1", "files.write")
    assert not verified.allows("games", "other", "files.read")
    assert verified.subject == "alice"


@pytest.mark.parametrize(
    ("audience", "now", "message"),
    [
        ("node-b", NOW, "another node"),
        ("node-a", NOW + timedelta(minutes=11), "expired"),
        ("node-a", NOW - timedelta(minutes=5), "lifetime"),
    ],
)
def test_wrong_node_or_time(audience: str, now: datetime, message: str) -> None:
    token = sign_server_token(KEY, grant(), now=NOW)
    with pytest.raises(TokenError, match=message):
        verify_server_token(token, KEY.public_key(), audience=audience, now=now)


def test_forgeries_are_refused() -> None:
    token = sign_server_token(KEY, grant(), now=NOW)
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scp"] = ["files.write", "files.delete"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in [f"{forged}.{signature}", "garbage", "a.b.c", token + "x", "." * 5000]:
        with pytest.raises(TokenError):
            verify_server_token(bad, KEY.public_key(), audience="node-a", now=NOW)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(TokenError, match="signature"):
        verify_server_token(token, other.public_key(), audience="node-a", now=NOW)


def test_the_panel_cannot_sign_long_lived_or_unknown_grants() -> None:
    with pytest.raises(TokenError, match="at most 900 s"):
        sign_server_token(KEY, grant(expires_at=NOW + timedelta(hours=1)), now=NOW)
    with pytest.raises(TokenError, match="unknown scopes: root"):
        sign_server_token(KEY, grant(scopes=frozenset({"root"})), now=NOW)
