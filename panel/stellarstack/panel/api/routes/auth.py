"""First-run setup, login (password, then a TOTP or recovery code when 2FA is on), logout,
password reset and email verification links."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select

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
from stellarstack.panel.api.errors import ApiError, ErrorResponse, conflict
from stellarstack.panel.api.schemas import (
    Accepted,
    Credentials,
    NewAccount,
    UserPublic,
    user_public,
)
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.models import User
from stellarstack.panel.services import accounts, email_links, mail, two_factor
from stellarstack.panel.services.accounts import PASSWORD_RESET
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


class TwoFactorLogin(BaseModel):
    """Exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, min_length=6, max_length=10, examples=["123456"])
    recovery_code: str | None = Field(
        default=None, min_length=8, max_length=40, examples=["k7qm-2xwe-94ht-vzab"]
    )


@router.post(
    "/login/two-factor",
    summary="Second login step: a code from the app or a recovery code; each works once",
    responses={
        401: {"model": ErrorResponse, "description": "wrong, expired or reused code"},
        409: {"model": ErrorResponse, "description": "this session owes no code"},
        429: {"model": ErrorResponse, "description": "too many failed attempts"},
    },
)
def login_two_factor(
    body: TwoFactorLogin,
    request: Request,
    response: Response,
    principal: PendingPrincipal,
    db: SessionDep,
    context: ContextDep,
) -> LoginResult:
    pending = principal.session
    if pending is None or not pending.two_factor_pending:
        raise conflict("this session is not waiting for a two-factor code")
    user = principal.user
    ip = client_ip(request)
    now = context.clock()
    two_factor.check_rate_limit(db, settings=context.settings, user=user, ip=ip, now=now)
    method = two_factor.check_second_factor(
        db, user=user, code=body.code, recovery_code=body.recovery_code, now=now
    )
    if method is None:
        two_factor.note_failed_attempt(db, user=user, ip=ip, now=now)
        context.activity.record(
            db,
            event="auth.login.two_factor.failed",
            actor=Actor(user_id=user.id, session_id=pending.id, ip=ip),
        )
        db.commit()
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED, "invalid_code", "the code is wrong, expired or used"
        )
    two_factor.clear_attempts(db, user=user)
    # A new token for the full session: whoever saw the pending cookie gains nothing.
    pending.revoked_at = now
    started = accounts.start_session(
        db,
        user=user,
        settings=context.settings,
        now=now,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        two_factor_pending=False,
    )
    context.activity.record(
        db,
        event="auth.login",
        actor=Actor(user_id=user.id, session_id=started.session.id, ip=ip),
        properties={"second_factor": method},
    )
    csrf = set_session_cookies(
        response, context, token=started.token, session_id=started.session.id
    )
    return LoginResult(status="ok", user=user_public(user), csrf_token=csrf)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(examples=["player@example.com"])


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=200, description="From the mailed link")
    password: str = Field(min_length=1, max_length=256, examples=["a new long passphrase"])


class EmailVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=200, description="From the mailed link")


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password reset link (the same answer whether or not the account exists)",
    responses={
        429: {"model": ErrorResponse, "description": "too many requests"},
        503: {"model": ErrorResponse, "description": "no SMTP server configured"},
    },
)
def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    context: ContextDep,
) -> Accepted:
    email_links.require_mail(context.mailer)
    ip = client_ip(request)
    now = context.clock()
    email_links.mail_rate_limit(db, settings=context.settings, email=body.email, ip=ip, now=now)
    user = db.scalar(select(User).where(User.email == accounts.normalise_email(body.email)))
    if user is not None and user.disabled_at is None:
        token = email_links.issue(db, user=user, purpose=PASSWORD_RESET, now=now)
        message = email_links.reset_message(context.settings, user=user, token=token)
        background.add_task(mail.deliver, context.mailer, message)
        context.activity.record(
            db,
            event="auth.password_reset.request",
            actor=Actor(ip=ip),
            target_type="user",
            target_id=user.id,
        )
    return Accepted(message="if an account has this address, a reset link is on its way")


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset link's token; ends every session of the account",
)
def confirm_password_reset(body: PasswordResetConfirm, db: SessionDep, context: ContextDep) -> None:
    user = email_links.reset_password(
        db, token=body.token, password=body.password, now=context.clock()
    )
    context.activity.record(
        db,
        event="auth.password_reset",
        actor=Actor(user_id=user.id),
        target_type="user",
        target_id=user.id,
    )


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address with a verification link's token",
)
def verify_email(body: EmailVerification, db: SessionDep, context: ContextDep) -> None:
    user = email_links.verify_email(db, token=body.token, now=context.clock())
    context.activity.record(
        db,
        event="auth.email.verify",
        actor=Actor(user_id=user.id),
        target_type="user",
        target_id=user.id,
    )
