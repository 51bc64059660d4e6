"""The caller's own account: profile, password, email verification, sessions, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from stellarstack.panel import permissions
from stellarstack.panel.api.deps import (
    ContextDep,
    Principal,
    SessionDep,
    client_ip,
    require_scope,
)
from stellarstack.panel.api.errors import ErrorResponse, conflict, not_found
from stellarstack.panel.api.schemas import Accepted, UserPublic, user_public
from stellarstack.panel.db.models import ApiKey, LoginSession
from stellarstack.panel.services import accounts, email_links, mail
from stellarstack.panel.services.accounts import VERIFY_EMAIL

router = APIRouter(prefix="/api/account", tags=["account"])

AccountReader = Annotated[Principal, Depends(require_scope("account:read"))]
AccountWriter = Annotated[Principal, Depends(require_scope("account:write"))]


@router.get("", summary="Who am I")
def me(principal: AccountReader) -> UserPublic:
    return user_public(principal.user)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256, examples=["a new long passphrase"])


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the password (the current one is required); other sessions end",
    responses={429: {"model": ErrorResponse, "description": "too many wrong passwords"}},
)
def change_password(
    body: PasswordChange,
    request: Request,
    principal: AccountWriter,
    db: SessionDep,
    context: ContextDep,
) -> None:
    user = principal.user
    now = context.clock()
    accounts.confirm_password(
        db,
        user=user,
        password=body.current_password,
        settings=context.settings,
        ip=client_ip(request),
        now=now,
        field="body.current_password",
    )
    accounts.set_password(db, user=user, password=body.new_password, field="body.new_password")
    keep = principal.session.id if principal.session else None
    ended = accounts.revoke_sessions(db, user_id=user.id, now=now, keep=keep)
    context.activity.record(
        db,
        event="account.password.change",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
        properties={"sessions_ended": ended},
    )


@router.post(
    "/email/verification",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a link that confirms the account's address",
    responses={
        409: {"model": ErrorResponse, "description": "already verified"},
        429: {"model": ErrorResponse, "description": "too many requests"},
        503: {"model": ErrorResponse, "description": "no SMTP server configured"},
    },
)
def send_verification(
    request: Request,
    background: BackgroundTasks,
    principal: AccountWriter,
    db: SessionDep,
    context: ContextDep,
) -> Accepted:
    user = principal.user
    if user.email_verified_at is not None:
        raise conflict("the address is already verified")
    email_links.require_mail(context.mailer)
    now = context.clock()
    email_links.mail_rate_limit(
        db, settings=context.settings, email=user.email, ip=client_ip(request), now=now
    )
    token = email_links.issue(db, user=user, purpose=VERIFY_EMAIL, now=now)
    message = email_links.verification_message(context.settings, user=user, token=token)
    background.add_task(mail.deliver, context.mailer, message)
    context.activity.record(
        db,
        event="account.email.verification",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
    )
    return Accepted(message=f"a verification link is on its way to {user.email}")


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
    model_config = ConfigDict(
        extra="forbid",
        # Whole-body examples: without one, Swagger UI fills `expires_at` with the moment the
        # page was drawn, which is already past (and refused) when the request is sent.
        json_schema_extra={
            "examples": [
                {"name": "deploy bot", "scopes": ["servers:read"]},
                {
                    "name": "console script",
                    "scopes": ["servers:read", "console:read", "console:write"],
                    "expires_at": "2099-12-31T23:59:59Z",
                },
            ]
        },
    )

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
