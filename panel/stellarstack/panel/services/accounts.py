"""Accounts: first-run setup, users, password logins with rate limits, sessions, API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import status
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stellarstack.panel import permissions
from stellarstack.panel.api.errors import ApiError, conflict, invalid
from stellarstack.panel.db.models import (
    ApiKey,
    EmailToken,
    LoginAttempt,
    LoginSession,
    Role,
    User,
)
from stellarstack.panel.security.passwords import (
    DUMMY_HASH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from stellarstack.panel.security.tokens import hash_token, new_token
from stellarstack.panel.settings import PanelSettings

API_KEY_PREFIX = "ssk_"
PASSWORD_RESET = "password_reset"
VERIFY_EMAIL = "verify_email"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_strength(password: str, *, field: str = "body.password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid(field, f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise invalid(field, f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def _lock_users(db: Session) -> None:
    """Serialise first-run setup. SQLite transactions already hold the write lock."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))


def setup_required(db: Session) -> bool:
    return db.scalar(select(func.count()).select_from(User)) == 0


def create_user(
    db: Session, *, email: str, name: str, password: str, role: Role = Role.USER
) -> User:
    check_password_strength(password)
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=hash_password(password),
        role=role,
    )
    db.add(user)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        raise conflict("an account with this email exists", field="body.email") from exc
    return user


def create_first_admin(db: Session, *, email: str, name: str, password: str) -> User:
    """The first account, an admin; refused once any account exists."""
    _lock_users(db)
    if not setup_required(db):
        raise conflict("the panel is already set up; log in instead")
    return create_user(db, email=email, name=name, password=password, role=Role.ADMIN)


# --- rate limits -------------------------------------------------------------------------


def _attempt_keys(email: str | None, ip: str | None) -> list[tuple[str, str]]:
    keys = []
    if email:
        keys.append(("account", f"account:{normalise_email(email)}"))
    if ip:
        keys.append(("ip", f"ip:{ip}"))
    return keys


def enforce_attempt_limits(
    db: Session, *, settings: PanelSettings, limits: list[tuple[str, str, int]], now: datetime
) -> None:
    """Refuse (429) when any `(kind, key, limit)` reached its limit within the login window.
    `kind` names what is limited in the message: "account" or "ip"."""
    since = now - timedelta(seconds=settings.login_window_seconds)
    db.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
    for kind, key, limit in limits:
        count = db.scalar(
            select(func.count()).select_from(LoginAttempt).where(LoginAttempt.key == key)
        )
        if (count or 0) >= limit:
            raise ApiError(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "rate_limited",
                f"too many attempts for this {kind}; try again later",
                headers={"Retry-After": str(settings.login_window_seconds)},
            )


def note_attempts(db: Session, *, keys: list[str], now: datetime) -> None:
    for key in keys:
        db.add(LoginAttempt(key=key, at=now))


def check_rate_limit(
    db: Session, *, settings: PanelSettings, email: str | None, ip: str | None, now: datetime
) -> None:
    """Refuse (429) when the account or the address failed too often in the window."""
    limits = {"account": settings.login_attempts_per_account, "ip": settings.login_attempts_per_ip}
    enforce_attempt_limits(
        db,
        settings=settings,
        limits=[(kind, key, limits[kind]) for kind, key in _attempt_keys(email, ip)],
        now=now,
    )


def note_failed_attempt(db: Session, *, email: str | None, ip: str | None, now: datetime) -> None:
    note_attempts(db, keys=[key for _, key in _attempt_keys(email, ip)], now=now)


def clear_attempts(db: Session, *, email: str) -> None:
    db.execute(delete(LoginAttempt).where(LoginAttempt.key == f"account:{normalise_email(email)}"))


def authenticate_password(db: Session, *, email: str, password: str) -> User | None:
    """The user whose email and password these are; None otherwise (same cost either way)."""
    user = db.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        verify_password(DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or user.disabled_at is not None:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


# --- sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    session: LoginSession
    token: str
    """The cookie value; only its hash is stored."""


def start_session(
    db: Session,
    *,
    user: User,
    settings: PanelSettings,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
    two_factor_pending: bool,
) -> NewSession:
    token = new_token()
    lifetime = (
        timedelta(minutes=10)
        if two_factor_pending
        else timedelta(hours=settings.session_lifetime_hours)
    )
    session = LoginSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=ip,
        user_agent=(user_agent or "")[:512] or None,
        two_factor_pending=two_factor_pending,
    )
    db.add(session)
    db.flush()
    return NewSession(session=session, token=token)


def revoke_sessions(db: Session, *, user_id: str, now: datetime, keep: str | None = None) -> int:
    """Revoke every live session of a user except `keep`; returns how many."""
    sessions = db.scalars(
        select(LoginSession).where(
            LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
        )
    ).all()
    count = 0
    for session in sessions:
        if session.id != keep:
            session.revoked_at = now
            count += 1
    return count


# --- API keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    plaintext: str
    """`ssk_<id>.<secret>`, shown once."""


def create_api_key(
    db: Session,
    *,
    user: User,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    now: datetime,
) -> NewApiKey:
    unknown = permissions.invalid_scopes(scopes)
    if unknown:
        raise invalid("body.scopes", f"unknown scopes: {', '.join(unknown)}")
    if not scopes:
        raise invalid("body.scopes", "an API key needs at least one scope")
    if expires_at is not None and expires_at <= now:
        raise invalid("body.expires_at", "the expiry must be in the future")
    if not user.is_admin and any(s.startswith("admin:") for s in scopes):
        raise invalid("body.scopes", "admin scopes are only for admins")
    prefix = API_KEY_PREFIX + new_token(9).replace("-", "x").replace("_", "y")
    secret = new_token()
    key = ApiKey(
        user_id=user.id,
        name=name.strip(),
        prefix=prefix,
        secret_hash=hash_token(secret),
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=expires_at,
    )
    db.add(key)
    db.flush()
    return NewApiKey(key=key, plaintext=f"{prefix}.{secret}")


# --- passwords ----------------------------------------------------------------------------


def confirm_password(
    db: Session,
    *,
    user: User,
    password: str,
    settings: PanelSettings,
    ip: str | None,
    now: datetime,
    field: str = "body.password",
) -> None:
    """Check the password of a logged-in user before a sensitive change. Failures count
    towards the same limits as failed logins, so a stolen session cannot guess it."""
    check_rate_limit(db, settings=settings, email=user.email, ip=ip, now=now)
    if verify_password(user.password_hash, password):
        return
    note_failed_attempt(db, email=user.email, ip=ip, now=now)
    # The failure must count although the request fails.
    db.commit()
    raise invalid(field, "the password is wrong")


def set_password(db: Session, *, user: User, password: str, field: str = "body.password") -> None:
    """Store a new password; every outstanding reset link of the user stops working."""
    check_password_strength(password, field=field)
    user.password_hash = hash_password(password)
    db.execute(
        delete(EmailToken).where(
            EmailToken.user_id == user.id, EmailToken.purpose == PASSWORD_RESET
        )
    )
