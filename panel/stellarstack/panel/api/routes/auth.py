"""First-run setup, login, logout."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from stellarstack.panel.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    ContextDep,
    Principal,
    SessionDep,
    authenticate,
    client_ip,
    csrf_token_for,
)
from stellarstack.panel.api.errors import ApiError, ErrorResponse
from stellarstack.panel.api.schemas import Credentials, NewAccount, UserPublic, user_public
from stellarstack.panel.context import PanelContext
from stellarstack.panel.services import accounts
from stellarstack.panel.services.activity import Actor

router = APIRouter(prefix="/api/auth", tags=["auth"])


class SetupStatus(BaseModel):
    required: bool


class LoginResult(BaseModel):
    """`two_factor_required`: send a code to `/api/auth/login/two-factor` next."""

    status: Literal["ok", "two_factor_required"]
    user: UserPublic | None = None
    csrf_token: str


def set_session_cookies(
    response: Response, context: PanelContext, *, token: str, session_id: str
) -> str:
    secure = context.settings.cookie_secure
    max_age = context.settings.session_lifetime_hours * 3600
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, max_age=max_age
    )
    csrf = csrf_token_for(context, session_id)
    # Readable by the page's script, which echoes it in the X-CSRF-Token header; another site
    # can neither read it nor set the header.
    response.set_cookie(CSRF_COOKIE, csrf, samesite="strict", secure=secure, max_age=max_age)
    return csrf


@router.get("/setup", summary="Whether the first admin still has to be created")
def setup_status(db: SessionDep) -> SetupStatus:
    return SetupStatus(required=accounts.setup_required(db))


@router.post(
    "/setup",
    status_code=status.HTTP_201_CREATED,
    summary="Create the first admin (only while no account exists); logs them in",
    responses={409: {"model": ErrorResponse, "description": "already set up"}},
)
def setup(
    body: NewAccount, request: Request, response: Response, db: SessionDep, context: ContextDep
) -> LoginResult:
    user = accounts.create_first_admin(db, email=body.email, name=body.name, password=body.password)
    ip = client_ip(request)
    context.activity.record(
        db,
        event="auth.setup",
        actor=Actor(user_id=user.id, ip=ip),
        target_type="user",
        target_id=user.id,
    )
    started = accounts.start_session(
        db,
        user=user,
        settings=context.settings,
        now=context.clock(),
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        two_factor_pending=False,
    )
    csrf = set_session_cookies(
        response, context, token=started.token, session_id=started.session.id
    )
    return LoginResult(status="ok", user=user_public(user), csrf_token=csrf)


@router.post(
    "/login",
    summary="Log in with email and password",
    responses={
        401: {"model": ErrorResponse, "description": "wrong email or password"},
        429: {"model": ErrorResponse, "description": "too many failed attempts"},
    },
)
def login(
    body: Credentials, request: Request, response: Response, db: SessionDep, context: ContextDep
) -> LoginResult:
    ip = client_ip(request)
    now = context.clock()
    accounts.check_rate_limit(db, settings=context.settings, email=body.email, ip=ip, now=now)
    user = accounts.authenticate_password(db, email=body.email, password=body.password)
    if user is None:
        accounts.note_failed_attempt(db, email=body.email, ip=ip, now=now)
        context.activity.record(
            db,
            event="auth.login.failed",
            actor=Actor(ip=ip),
            properties={"email": accounts.normalise_email(body.email)},
        )
        # The failure is committed (it counts towards the limit); the error is the response.
        db.commit()
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED, "invalid_credentials", "wrong email or password"
        )
    accounts.clear_attempts(db, email=body.email)
    pending = user.totp_enabled_at is not None
    started = accounts.start_session(
        db,
        user=user,
        settings=context.settings,
        now=now,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        two_factor_pending=pending,
    )
    context.activity.record(
        db,
        event="auth.login.password" if pending else "auth.login",
        actor=Actor(user_id=user.id, session_id=started.session.id, ip=ip),
    )
    csrf = set_session_cookies(
        response, context, token=started.token, session_id=started.session.id
    )
    if pending:
        return LoginResult(status="two_factor_required", csrf_token=csrf)
    return LoginResult(status="ok", user=user_public(user), csrf_token=csrf)


def _pending_or_full(request: Request, db: SessionDep, context: ContextDep) -> Principal:
    return authenticate(request, db, context, allow_pending=True)


PendingPrincipal = Annotated[Principal, Depends(_pending_or_full)]


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this browser session")
def logout(principal: PendingPrincipal, response: Response, context: ContextDep) -> Response:
    if principal.session is not None:
        principal.session.revoked_at = context.clock()
    response.status_code = status.HTTP_204_NO_CONTENT
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response
