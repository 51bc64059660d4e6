"""The caller's own account: profile, sessions, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from stellarstack.panel import permissions
from stellarstack.panel.api.deps import ContextDep, Principal, SessionDep, require_scope
from stellarstack.panel.api.errors import not_found
from stellarstack.panel.api.schemas import UserPublic, user_public
from stellarstack.panel.db.models import ApiKey, LoginSession
from stellarstack.panel.services import accounts

router = APIRouter(prefix="/api/account", tags=["account"])

AccountReader = Annotated[Principal, Depends(require_scope("account:read"))]
AccountWriter = Annotated[Principal, Depends(require_scope("account:write"))]


@router.get("", summary="Who am I")
def me(principal: AccountReader) -> UserPublic:
    return user_public(principal.user)


class SessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


@router.get("/sessions", summary="Live browser sessions of this account")
def list_sessions(
    principal: AccountReader, db: SessionDep, context: ContextDep
) -> list[SessionPublic]:
    rows = db.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == principal.user.id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > context.clock(),
        )
        .order_by(LoginSession.created_at.desc())
    ).all()
    current = principal.session.id if principal.session else None
    return [
        SessionPublic.model_validate(row).model_copy(update={"current": row.id == current})
        for row in rows
    ]


@router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a session"
)
def revoke_session(
    session_id: str, principal: AccountWriter, db: SessionDep, context: ContextDep
) -> None:
    row = db.get(LoginSession, session_id)
    if row is None or row.user_id != principal.user.id or row.revoked_at is not None:
        raise not_found("session")
    row.revoked_at = context.clock()
    context.activity.record(
        db,
        event="account.session.revoke",
        actor=principal.actor,
        target_type="session",
        target_id=session_id,
    )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["deploy bot"])
    scopes: list[str] = Field(
        min_length=1, max_length=len(permissions.SCOPES) + 1, examples=[["servers:read"]]
    )
    expires_at: datetime | None = Field(default=None, description="UTC; never expires if unset")


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The whole key; shown only in this response")


@router.get("/api-keys", summary="API keys of this account (never their secrets)")
def list_api_keys(principal: AccountReader, db: SessionDep) -> list[ApiKeyPublic]:
    rows = db.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == principal.user.id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at)
    ).all()
    return [ApiKeyPublic.model_validate(row) for row in rows]


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the response is the only time its secret is shown",
)
def create_api_key(
    body: ApiKeyCreate, principal: AccountWriter, db: SessionDep, context: ContextDep
) -> ApiKeyCreated:
    created = accounts.create_api_key(
        db,
        user=principal.user,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        now=context.clock(),
    )
    context.activity.record(
        db,
        event="account.api_key.create",
        actor=principal.actor,
        target_type="api_key",
        target_id=created.key.id,
        properties={"scopes": created.key.scopes},
    )
    public = ApiKeyPublic.model_validate(created.key)
    return ApiKeyCreated(**public.model_dump(), key=created.plaintext)


@router.delete(
    "/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API key"
)
def revoke_api_key(
    key_id: str, principal: AccountWriter, db: SessionDep, context: ContextDep
) -> None:
    row = db.get(ApiKey, key_id)
    if row is None or row.user_id != principal.user.id or row.revoked_at is not None:
        raise not_found("API key")
    row.revoked_at = context.clock()
    context.activity.record(
        db,
        event="account.api_key.revoke",
        actor=principal.actor,
        target_type="api_key",
        target_id=key_id,
    )
