"""Request and response bodies shared by several routers (per-entity schemas live beside their
router as `XCreate` / `XUpdate` / `XPublic`)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from stellarstack.panel.db.models import Role

T = TypeVar("T")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    role: Role
    email_verified: bool = False
    two_factor_enabled: bool = False
    created_at: datetime


def user_public(user: object) -> UserPublic:
    public = UserPublic.model_validate(user)
    return public.model_copy(
        update={
            "email_verified": getattr(user, "email_verified_at", None) is not None,
            "two_factor_enabled": getattr(user, "totp_enabled_at", None) is not None,
        }
    )


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(examples=["admin@example.com"])
    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(examples=["admin@example.com"])
    name: str = Field(min_length=1, max_length=100, examples=["Ada"])
    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])


class Accepted(BaseModel):
    """A request taken on that completes later (a mail on its way)."""

    message: str


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total count of matching items."""

    items: list[T]
    total: int
    page: int
    per_page: int
