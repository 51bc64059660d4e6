"""One-time links sent by mail: password reset and email verification.

The link carries a random token; only its hash is stored. A token works once, until it
expires, and only for its purpose. A password reset also proves the address, so it counts as
verification; a new password voids every other reset link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import status
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from stellarstack.panel.api.errors import ApiError, invalid
from stellarstack.panel.db.models import EmailToken, User
from stellarstack.panel.security.tokens import hash_token, new_token
from stellarstack.panel.services import accounts
from stellarstack.panel.services.accounts import PASSWORD_RESET, VERIFY_EMAIL
from stellarstack.panel.services.mail import Mailer, can_send, compose
from stellarstack.panel.settings import PanelSettings

LIFETIMES = {PASSWORD_RESET: timedelta(hours=1), VERIFY_EMAIL: timedelta(hours=48)}
PAGES = {PASSWORD_RESET: "reset-password", VERIFY_EMAIL: "verify-email"}


def link(settings: PanelSettings, purpose: str, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/{PAGES[purpose]}?{urlencode({'token': token})}"


def issue(db: Session, *, user: User, purpose: str, now: datetime) -> str:
    """A new token for `user`; earlier unused tokens of the same purpose stop working, so only
    the newest mail's link is live."""
    db.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_token()
    db.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
            details={"email": user.email},
        )
    )
    db.flush()
    return token


def _consume(db: Session, *, token: str, purpose: str, now: datetime) -> User:
    expired = invalid("body.token", "this link is invalid, used or expired; ask for a new one")
    row = db.scalar(
        select(EmailToken).where(
            EmailToken.token_hash == hash_token(token), EmailToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise expired
    result = db.execute(
        update(EmailToken)
        .where(EmailToken.id == row.id, EmailToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        raise expired
    user = db.get(User, row.user_id)
    # The link was sent to the address the account had then; it proves nothing about another.
    if user is None or user.disabled_at is not None or row.details.get("email") != user.email:
        raise expired
    return user


def reset_password(db: Session, *, token: str, password: str, now: datetime) -> User:
    """Set a new password from a reset link; every session of the user ends."""
    accounts.check_password_strength(password)
    user = _consume(db, token=token, purpose=PASSWORD_RESET, now=now)
    accounts.set_password(db, user=user, password=password)
    if user.email_verified_at is None:
        user.email_verified_at = now
    accounts.revoke_sessions(db, user_id=user.id, now=now)
    accounts.clear_attempts(db, email=user.email)
    return user


def verify_email(db: Session, *, token: str, now: datetime) -> User:
    user = _consume(db, token=token, purpose=VERIFY_EMAIL, now=now)
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


# --- the messages -------------------------------------------------------------------------


def reset_message(settings: PanelSettings, *, user: User, token: str) -> EmailMessage:
    return compose(
        settings,
        to=user.email,
        subject="Reset your StellarStack password",
        text=(
            f"Hello {user.name},\n\n"
            "someone (hopefully you) asked to reset the password of your StellarStack account.\n"
            "Open this link within one hour to choose a new one:\n\n"
            f"{link(settings, PASSWORD_RESET, token)}\n\n"
            "Setting a new password logs out every session of the account. If you did not ask "
            "for this, ignore this mail: your password stays as it is.\n"
        ),
    )


def verification_message(settings: PanelSettings, *, user: User, token: str) -> EmailMessage:
    return compose(
        settings,
        to=user.email,
        subject="Confirm your email address for StellarStack",
        text=(
            f"Hello {user.name},\n\n"
            "please confirm that this address belongs to your StellarStack account by opening "
            "this link within 48 hours:\n\n"
            f"{link(settings, VERIFY_EMAIL, token)}\n"
        ),
    )


def mail_rate_limit(
    db: Session, *, settings: PanelSettings, email: str, ip: str | None, now: datetime
) -> None:
    """Refuse (429) too many mails to one address or from one client; each request counts,
    whether or not the account exists, so the limit reveals nothing either."""
    address = accounts.normalise_email(email)
    limits = [("account", f"mail:{address}", settings.mail_requests_per_account)]
    if ip:
        limits.append(("ip", f"mail-ip:{ip}", settings.mail_requests_per_ip))
    accounts.enforce_attempt_limits(db, settings=settings, limits=limits, now=now)
    accounts.note_attempts(db, keys=[key for _, key, _ in limits], now=now)


def require_mail(mailer: Mailer) -> None:
    """Refuse (503) features that need mail on a panel that cannot send any."""
    if not can_send(mailer):
        raise ApiError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "mail_unavailable",
            "this panel cannot send mail (no SMTP server is configured); ask an admin",
        )
