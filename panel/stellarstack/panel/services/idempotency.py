"""`Idempotency-Key` on create requests: the first response to a key is stored with a
fingerprint of the request, and a repeat of the same request replays it instead of creating
again. The key belongs to its caller (user and API key or session kind), so keys of different
callers never collide; a key reused for a different request is refused, naming the header.

Use `idempotent_create(...)` in any create route: it runs `produce` at most once per key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from stellarstack.panel.api.errors import ApiError, invalid
from stellarstack.panel.db.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Records older than this are forgotten (and the key may be used afresh).
RETENTION = timedelta(hours=24)


def fingerprint(method: str, path: str, body: Any) -> str:
    """The request a key was first used for: method, path and the parsed body (key order and
    whitespace do not matter)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_key(db: Session, principal: str, key: str) -> None:
    """Serialise requests with the same key on PostgreSQL (SQLite transactions already hold
    the write lock), so two concurrent repeats cannot both create."""
    if db.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"idempotency:{principal}:{key}".encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        db.execute(text("SELECT pg_advisory_xact_lock(CAST(:lock AS bigint))"), {"lock": lock})


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise invalid(
            f"header.{HEADER}",
            f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable characters",
        )
    return key


def idempotent_create(
    db: Session,
    *,
    principal: str,
    key: str | None,
    request_fingerprint: str,
    now: datetime,
    produce: Callable[[], BaseModel],
    status_code: int = status.HTTP_201_CREATED,
) -> JSONResponse:
    """The response of `produce()` (as `status_code`), or the stored response of the first
    request with this key. Failed requests store nothing (their transaction is rolled back),
    so they may be retried with the same key."""
    if key is None:
        return JSONResponse(status_code=status_code, content=produce().model_dump(mode="json"))
    check_key(key)
    _lock_key(db, principal, key)
    db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - RETENTION))
    record = db.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    )
    if record is not None:
        if record.fingerprint != request_fingerprint:
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "idempotency_key_reused",
                f"this {HEADER} was used for a different request; use a new key",
                field=f"header.{HEADER}",
            )
        return JSONResponse(
            status_code=record.status_code,
            content=json.loads(record.body),
            headers={"Idempotent-Replayed": "true"},
        )
    content = produce().model_dump(mode="json")
    db.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            fingerprint=request_fingerprint,
            status_code=status_code,
            body=json.dumps(content),
            created_at=now,
        )
    )
    db.flush()
    return JSONResponse(status_code=status_code, content=content)
