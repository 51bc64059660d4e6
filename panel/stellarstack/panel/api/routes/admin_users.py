"""Admin: user accounts."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, or_, select

from stellarstack.panel.api.deps import AdminReader, AdminWriter, ContextDep, SessionDep
from stellarstack.panel.api.errors import conflict, not_found
from stellarstack.panel.api.schemas import Page, UserPublic, user_public
from stellarstack.panel.db.models import Role, Server, User
from stellarstack.panel.security.passwords import hash_password
from stellarstack.panel.services import accounts, email_links, mail
from stellarstack.panel.services.accounts import VERIFY_EMAIL

router = APIRouter(prefix="/api/admin/users", tags=["admin: users"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(examples=["player@example.com"])
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)
    role: Role = Role.USER
    server_limit: int | None = Field(default=None, ge=0, le=100000)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    role: Role | None = None
    server_limit: int | None = Field(default=None, ge=0, le=100000)
    disabled: bool | None = None


class AdminUserPublic(UserPublic):
    server_limit: int | None = None
    disabled: bool = False


def _public(user: User) -> AdminUserPublic:
    return AdminUserPublic(
        **user_public(user).model_dump(),
        server_limit=user.server_limit,
        disabled=user.disabled_at is not None,
    )


@router.get("", summary="List users (filter by email or name)")
def list_users(
    _: AdminReader,
    db: SessionDep,
    search: str | None = Query(default=None, max_length=254),
    page: int = Query(default=1, ge=1, le=1_000_000),
    per_page: int = Query(default=50, ge=1, le=200),
) -> Page[AdminUserPublic]:
    query = select(User)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(User.email.like(pattern), func.lower(User.name).like(pattern)))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(User.created_at, User.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return Page(items=[_public(u) for u in rows], total=total, page=page, per_page=per_page)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(
    body: UserCreate,
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
    background: BackgroundTasks,
) -> AdminUserPublic:
    user = accounts.create_user(
        db, email=body.email, name=body.name, password=body.password, role=body.role
    )
    user.server_limit = body.server_limit
    if mail.can_send(context.mailer):
        # The new user confirms the address the admin typed.
        token = email_links.issue(db, user=user, purpose=VERIFY_EMAIL, now=context.clock())
        message = email_links.verification_message(context.settings, user=user, token=token)
        background.add_task(mail.deliver, context.mailer, message)
    context.activity.record(
        db,
        event="admin.user.create",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
        properties={"after": {"email": user.email, "role": user.role}},
    )
    return _public(user)


@router.get("/{user_id}", summary="Get a user")
def get_user(user_id: str, _: AdminReader, db: SessionDep) -> AdminUserPublic:
    user = db.get(User, user_id)
    if user is None:
        raise not_found("user")
    return _public(user)


@router.patch("/{user_id}", summary="Change a user")
def update_user(
    user_id: str, body: UserUpdate, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> AdminUserPublic:
    user = db.get(User, user_id)
    if user is None:
        raise not_found("user")
    before = {
        "name": user.name,
        "role": user.role,
        "server_limit": user.server_limit,
        "disabled": user.disabled_at is not None,
    }
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and body.name is not None:
        user.name = body.name.strip()
    if body.password is not None:
        accounts.check_password_strength(body.password)
        user.password_hash = hash_password(body.password)
        accounts.revoke_sessions(db, user_id=user.id, now=context.clock())
    if body.role is not None:
        if user.id == principal.user.id and body.role is not Role.ADMIN:
            raise conflict("you cannot remove your own admin role", field="body.role")
        user.role = body.role
    if "server_limit" in changes:
        user.server_limit = body.server_limit
    if body.disabled is not None:
        if user.id == principal.user.id and body.disabled:
            raise conflict("you cannot disable your own account", field="body.disabled")
        user.disabled_at = context.clock() if body.disabled else None
        if body.disabled:
            accounts.revoke_sessions(db, user_id=user.id, now=context.clock())
    after = {
        "name": user.name,
        "role": user.role,
        "server_limit": user.server_limit,
        "disabled": user.disabled_at is not None,
    }
    context.activity.record(
        db,
        event="admin.user.update",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
        properties={"before": before, "after": after},
    )
    return _public(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a user")
def delete_user(user_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep) -> None:
    user = db.get(User, user_id)
    if user is None:
        raise not_found("user")
    if user.id == principal.user.id:
        raise conflict("you cannot delete your own account")
    owned = db.scalar(select(func.count()).select_from(Server).where(Server.owner_id == user.id))
    if owned:
        raise conflict(f"the user owns {owned} server(s); reassign or delete them first")
    context.activity.record(
        db,
        event="admin.user.delete",
        actor=principal.actor,
        target_type="user",
        target_id=user.id,
        properties={"before": {"email": user.email}},
    )
    db.delete(user)
