"""The caller's two-factor authentication (TOTP): enrol, enable, disable, recovery codes.

Every change asks for the password again (and turning 2FA off also for a code), so a session
left open on someone else's screen cannot take over or weaken the account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field

from stellarstack.panel.api.deps import ContextDep, Principal, SessionDep, client_ip, require_scope
from stellarstack.panel.api.errors import ErrorResponse, conflict, invalid
from stellarstack.panel.services import accounts, two_factor

router = APIRouter(prefix="/api/account/two-factor", tags=["account: two-factor"])

AccountReader = Annotated[Principal, Depends(require_scope("account:read"))]
AccountWriter = Annotated[Principal, Depends(require_scope("account:write"))]


class TwoFactorStatus(BaseModel):
    enabled: bool
    enrolling: bool
    """A secret was handed out but not yet confirmed with a code."""
    recovery_codes_left: int


class PasswordConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])


class EnrolmentPublic(BaseModel):
    secret: str = Field(description="Base32 secret for authenticator apps that take it typed")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI (for a QR code)")


class EnableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=10, examples=["123456"])


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Each works once in place of a code; shown only in this response"
    )


class DisableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256)
    code: str | None = Field(default=None, min_length=6, max_length=10, examples=["123456"])
    recovery_code: str | None = Field(default=None, min_length=8, max_length=40)


@router.get("", summary="Whether two-factor authentication is on")
def get_status(principal: AccountReader, db: SessionDep) -> TwoFactorStatus:
    user = principal.user
    return TwoFactorStatus(
        enabled=user.totp_enabled_at is not None,
        enrolling=user.totp_enabled_at is None and user.totp_secret is not None,
        recovery_codes_left=two_factor.recovery_codes_left(db, user=user),
    )


@router.post(
    "/enrol",
    summary="Start enrolling: a new secret for the authenticator app (needs the password)",
    responses={409: {"model": ErrorResponse, "description": "already enabled"}},
)
def enrol(
    body: PasswordConfirmation,
    request: Request,
    principal: AccountWriter,
    db: SessionDep,
    context: ContextDep,
) -> EnrolmentPublic:
    user = principal.user
    if user.totp_enabled_at is not None:
        raise conflict("two-factor authentication is already on; turn it off first")
    accounts.confirm_password(
        db,
        user=user,
        password=body.password,
        settings=context.settings,
        ip=client_ip(request),
        now=context.clock(),
    )
    enrolment = two_factor.begin_enrolment(user=user)
    context.activity.record(
        db,
        event="account.two_factor.enrol",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
    )
    return EnrolmentPublic(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post(
    "/enable",
    summary="Turn two-factor authentication on with a code from the app; returns recovery codes",
)
def enable(
    body: EnableRequest, principal: AccountWriter, db: SessionDep, context: ContextDep
) -> RecoveryCodes:
    codes = two_factor.enable(db, user=principal.user, code=body.code, now=context.clock())
    context.activity.record(
        db,
        event="account.two_factor.enable",
        actor=principal.actor,
        target_type="user",
        target_id=principal.user.id,
        properties={"before": {"enabled": False}, "after": {"enabled": True}},
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post(
    "/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn two-factor authentication off (password and a code or recovery code)",
)
def disable(
    body: DisableRequest,
    request: Request,
    principal: AccountWriter,
    db: SessionDep,
    context: ContextDep,
) -> None:
    user = principal.user
    if user.totp_enabled_at is None:
        raise conflict("two-factor authentication is not on")
    ip = client_ip(request)
    now = context.clock()
    accounts.confirm_password(
        db, user=user, password=body.password, settings=context.settings, ip=ip, now=now
    )
    two_factor.check_rate_limit(db, settings=context.settings, user=user, ip=ip, now=now)
    method = two_factor.check_second_factor(
        db, user=user, code=body.code, recovery_code=body.recovery_code, now=now
    )
    if method is None:
        two_factor.note_failed_attempt(db, user=user, ip=ip, now=now)
        db.commit()
        field = "body.code" if body.code is not None else "body.recovery_code"
        raise invalid(field, "the code is wrong, expired or already used")
    two_factor.clear_attempts(db, user=user)
    two_factor.disable(db, user=user)
    context.activity.record(
        db,
        event="account.two_factor.disable",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
        properties={"before": {"enabled": True}, "after": {"enabled": False}, "with": method},
    )


@router.post(
    "/recovery-codes",
    summary="Replace the recovery codes (needs the password); the old ones stop working",
)
def regenerate_recovery_codes(
    body: PasswordConfirmation,
    request: Request,
    principal: AccountWriter,
    db: SessionDep,
    context: ContextDep,
) -> RecoveryCodes:
    user = principal.user
    if user.totp_enabled_at is None:
        raise conflict("two-factor authentication is not on")
    accounts.confirm_password(
        db,
        user=user,
        password=body.password,
        settings=context.settings,
        ip=client_ip(request),
        now=context.clock(),
    )
    codes = two_factor.replace_recovery_codes(db, user=user)
    context.activity.record(
        db,
        event="account.two_factor.recovery_codes",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
    )
    return RecoveryCodes(recovery_codes=codes)
