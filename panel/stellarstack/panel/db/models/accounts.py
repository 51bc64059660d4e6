"""Users and everything that authenticates them: sessions, API keys, 2FA, one-time tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base, IdMixin, TimestampMixin, utcnow


class Role(StrEnum):
    """Admins manage the whole panel; users see their own servers and those shared with them."""

    ADMIN = "admin"
    USER = "user"


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    """Stored lower-cased, so uniqueness ignores case."""
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    """argon2id."""
    role: Mapped[Role] = mapped_column(
        SqlEnum(Role, native_enum=False, length=16), default=Role.USER
    )
    email_verified_at: Mapped[datetime | None] = mapped_column(default=None)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    """Base32 TOTP secret; set while enrolling, active once `totp_enabled_at` is set."""
    totp_enabled_at: Mapped[datetime | None] = mapped_column(default=None)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    """The 30-second step of the last accepted code: a code is never accepted twice."""
    server_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    """Most servers the user may own; no limit when unset."""
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class RecoveryCode(IdMixin, Base):
    __tablename__ = "recovery_codes"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginSession(IdMixin, Base):
    """A browser login. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "login_sessions"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    two_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    """Password accepted, TOTP code still owed: the session grants nothing else yet."""


class ApiKey(IdMixin, Base):
    """A personal API key. Shown once as `<prefix>.<secret>`; only the secret's hash is kept."""

    __tablename__ = "api_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginAttempt(IdMixin, Base):
    """A failed login or 2FA attempt, counted per account and per address for rate limits.
    Kept in the database so that every panel replica sees the same counts."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)

    key: Mapped[str] = mapped_column(String(300))
    """`account:<email>` or `ip:<address>`."""
    at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailToken(IdMixin, Base):
    """A one-time link sent by mail: password reset or email verification."""

    __tablename__ = "email_tokens"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
