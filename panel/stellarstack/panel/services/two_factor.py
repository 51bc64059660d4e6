"""TOTP two-factor authentication: enrolment, the login's second step, recovery codes.

Codes are accepted once: the step of each accepted TOTP code is stored and only later steps
pass, and a recovery code is marked used. Both writes are conditional UPDATEs checked by row
count, so two requests racing with the same code cannot both succeed on PostgreSQL either
(SQLite transactions are serialised anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from stellarstack.panel.api.errors import conflict, invalid
from stellarstack.panel.db.models import LoginAttempt, RecoveryCode, User
from stellarstack.panel.security import totp
from stellarstack.panel.security.recovery_codes import hash_recovery_code, new_recovery_codes
from stellarstack.panel.services import accounts
from stellarstack.panel.settings import PanelSettings

Method = Literal["totp", "recovery_code"]


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def _rowcount(result: object) -> int:
    return cast(CursorResult[Any], result).rowcount


def begin_enrolment(*, user: User) -> Enrolment:
    """A fresh secret for the authenticator app; active only once `enable` saw a code from
    it. Starting again replaces an unfinished enrolment."""
    if user.totp_enabled_at is not None:
        raise conflict("two-factor authentication is already on; turn it off first")
    user.totp_secret = totp.new_secret()
    user.totp_last_step = None
    return Enrolment(
        secret=user.totp_secret,
        otpauth_uri=totp.provisioning_uri(user.totp_secret, account=user.email),
    )


def accept_totp(db: Session, *, user: User, code: str, now: datetime) -> bool:
    """Whether `code` is valid now and newer than every code accepted before; records it."""
    if user.totp_secret is None:
        return False
    step = totp.accepted_step(
        user.totp_secret, code, unix_time=now.timestamp(), last_step=user.totp_last_step
    )
    if step is None:
        return False
    result = db.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return False
    user.totp_last_step = step
    return True


def use_recovery_code(db: Session, *, user: User, code: str, now: datetime) -> bool:
    """Whether `code` is one of the user's unused recovery codes; marks it used."""
    result = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == hash_recovery_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def replace_recovery_codes(db: Session, *, user: User) -> list[str]:
    """New codes (returned in plain text, once); the old ones stop working."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    db.add_all(RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(c)) for c in codes)
    db.flush()
    return codes


def recovery_codes_left(db: Session, *, user: User) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def enable(db: Session, *, user: User, code: str, now: datetime) -> list[str]:
    """Turn 2FA on once the app's first code checks out; returns the recovery codes."""
    if user.totp_enabled_at is not None:
        raise conflict("two-factor authentication is already on")
    if user.totp_secret is None:
        raise conflict("start with /api/account/two-factor/enrol to get a secret")
    if not accept_totp(db, user=user, code=code, now=now):
        raise invalid("body.code", "the code is wrong or expired; check the phone's clock")
    user.totp_enabled_at = now
    return replace_recovery_codes(db, user=user)


def disable(db: Session, *, user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def check_second_factor(
    db: Session, *, user: User, code: str | None, recovery_code: str | None, now: datetime
) -> Method | None:
    """Which factor passed (`code` from the app or a `recovery_code`), or None."""
    if (code is None) == (recovery_code is None):
        raise invalid("body.code", "send either `code` (from the app) or `recovery_code`")
    if user.totp_enabled_at is None:
        return None
    if code is not None:
        return "totp" if accept_totp(db, user=user, code=code, now=now) else None
    assert recovery_code is not None
    used = use_recovery_code(db, user=user, code=recovery_code, now=now)
    return "recovery_code" if used else None


# --- rate limits: the same limits as passwords, under their own account key ---------------
# Not the password's key: a correct password clears that one, and someone who knows the
# password could otherwise log in again after every few wrong codes and guess on forever.


def _keys(user: User, ip: str | None) -> list[tuple[str, str]]:
    keys = [("account", f"two-factor:{user.id}")]
    if ip:
        keys.append(("ip", f"ip:{ip}"))
    return keys


def check_rate_limit(
    db: Session, *, settings: PanelSettings, user: User, ip: str | None, now: datetime
) -> None:
    limits = {"account": settings.login_attempts_per_account, "ip": settings.login_attempts_per_ip}
    accounts.enforce_attempt_limits(
        db,
        settings=settings,
        limits=[(kind, key, limits[kind]) for kind, key in _keys(user, ip)],
        now=now,
    )


def note_failed_attempt(db: Session, *, user: User, ip: str | None, now: datetime) -> None:
    accounts.note_attempts(db, keys=[key for _, key in _keys(user, ip)], now=now)


def clear_attempts(db: Session, *, user: User) -> None:
    db.execute(delete(LoginAttempt).where(LoginAttempt.key == f"two-factor:{user.id}"))
