"""A server's subusers and invitations (permission nodes users.*), and accepting invitations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select

from stellarstack.panel.api.deps import (
    ContextDep,
    CurrentPrincipal,
    ServerAccess,
    SessionDep,
    require_permission,
)
from stellarstack.panel.api.errors import forbidden, not_found
from stellarstack.panel.db.models import Invitation, Subuser, User
from stellarstack.panel.services import subusers
from stellarstack.panel.services.mail import compose, deliver

router = APIRouter(prefix="/api/servers/{server_id}/users", tags=["subusers"])
invitations_router = APIRouter(prefix="/api/invitations", tags=["subusers"])

UsersRead = Annotated[ServerAccess, Depends(require_permission("users.read"))]
UsersCreate = Annotated[ServerAccess, Depends(require_permission("users.create"))]
UsersUpdate = Annotated[ServerAccess, Depends(require_permission("users.update"))]
UsersDelete = Annotated[ServerAccess, Depends(require_permission("users.delete"))]


class SubuserPublic(BaseModel):
    id: str
    user_id: str
    email: str
    name: str
    permissions: list[str]
    created_at: datetime


class InvitationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    permissions: list[str]
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationPublic):
    accept_url: str = Field(
        description="The link the invitee opens (also mailed); it works only for an account "
        "with the invited email"
    )


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(examples=["friend@example.com"])
    permissions: list[str] = Field(
        min_length=1, max_length=100, examples=[["control.*", "console.read", "files.read"]]
    )


class SubuserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] = Field(min_length=1, max_length=100)


def _public(subuser: Subuser, user: User) -> SubuserPublic:
    return SubuserPublic(
        id=subuser.id,
        user_id=user.id,
        email=user.email,
        name=user.name,
        permissions=subuser.permissions,
        created_at=subuser.created_at,
    )


def _subuser(db: SessionDep, access: ServerAccess, subuser_id: str) -> tuple[Subuser, User]:
    subuser = db.get(Subuser, subuser_id)
    if subuser is None or subuser.server_id != access.server.id:
        raise not_found("subuser")
    user = db.get(User, subuser.user_id)
    if user is None:
        raise not_found("subuser")
    return subuser, user


@router.get("", summary="Subusers and open invitations of the server")
def list_subusers(access: UsersRead, db: SessionDep) -> list[SubuserPublic]:
    rows = db.execute(
        select(Subuser, User)
        .join(User, User.id == Subuser.user_id)
        .where(Subuser.server_id == access.server.id)
        .order_by(Subuser.created_at)
    ).all()
    return [_public(subuser, user) for subuser, user in rows]


@router.get("/invitations", summary="Open invitations of the server")
def list_invitations(
    access: UsersRead, db: SessionDep, context: ContextDep
) -> list[InvitationPublic]:
    rows = db.scalars(
        select(Invitation)
        .where(
            Invitation.server_id == access.server.id,
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > context.clock(),
        )
        .order_by(Invitation.created_at)
    ).all()
    return [InvitationPublic.model_validate(row) for row in rows]


@router.post(
    "/invitations",
    status_code=status.HTTP_201_CREATED,
    summary="Invite someone by email with a subset of your own permission nodes",
)
def create_invitation(
    body: InvitationCreate,
    access: UsersCreate,
    db: SessionDep,
    context: ContextDep,
    background: BackgroundTasks,
) -> InvitationCreated:
    nodes = subusers.check_grantable(body.permissions, granter_nodes=access.nodes)
    created = subusers.invite(
        db,
        server=access.server,
        email=body.email,
        nodes=nodes,
        invited_by=access.principal.user,
        now=context.clock(),
    )
    url = f"{context.settings.public_url}/invitations/{created.token}"
    context.activity.record(
        db,
        event="server.subuser.invite",
        actor=access.principal.actor,
        target_type="invitation",
        target_id=created.invitation.id,
        server_id=access.server.id,
        properties={"email": created.invitation.email, "permissions": nodes},
    )
    message = compose(
        context.settings,
        to=created.invitation.email,
        subject=f"You are invited to the server {access.server.name}",
        text=f"{access.principal.user.name} invited you to help run the game server "
        f"{access.server.name!r}.\n\nAccept (log in or sign up with this email address first): "
        f"{url}\n\nThe link expires on {created.invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n",
    )
    background.add_task(deliver, context.mailer, message)
    public = InvitationPublic.model_validate(created.invitation)
    return InvitationCreated(**public.model_dump(), accept_url=url)


@router.delete(
    "/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw an open invitation",
)
def delete_invitation(
    invitation_id: str, access: UsersDelete, db: SessionDep, context: ContextDep
) -> None:
    invitation = db.get(Invitation, invitation_id)
    if invitation is None or invitation.server_id != access.server.id:
        raise not_found("invitation")
    context.activity.record(
        db,
        event="server.subuser.invite.withdraw",
        actor=access.principal.actor,
        target_type="invitation",
        target_id=invitation.id,
        server_id=access.server.id,
    )
    db.delete(invitation)


@router.get("/{subuser_id}", summary="Get a subuser")
def get_subuser(subuser_id: str, access: UsersRead, db: SessionDep) -> SubuserPublic:
    return _public(*_subuser(db, access, subuser_id))


@router.put("/{subuser_id}", summary="Replace a subuser's permission nodes")
def update_subuser(
    subuser_id: str,
    body: SubuserUpdate,
    access: UsersUpdate,
    db: SessionDep,
    context: ContextDep,
) -> SubuserPublic:
    subuser, user = _subuser(db, access, subuser_id)
    if user.id == access.principal.user.id:
        raise forbidden("you cannot change your own permissions")
    nodes = subusers.check_grantable(body.permissions, granter_nodes=access.nodes)
    before = list(subuser.permissions)
    subuser.permissions = nodes
    context.activity.record(
        db,
        event="server.subuser.update",
        actor=access.principal.actor,
        target_type="subuser",
        target_id=subuser.id,
        server_id=access.server.id,
        properties={"before": before, "after": nodes, "user": user.email},
    )
    return _public(subuser, user)


@router.delete("/{subuser_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a subuser")
def delete_subuser(
    subuser_id: str, access: UsersDelete, db: SessionDep, context: ContextDep
) -> None:
    subuser, user = _subuser(db, access, subuser_id)
    context.activity.record(
        db,
        event="server.subuser.delete",
        actor=access.principal.actor,
        target_type="subuser",
        target_id=subuser.id,
        server_id=access.server.id,
        properties={"before": subuser.permissions, "user": user.email},
    )
    db.delete(subuser)


@invitations_router.post(
    "/{token}/accept",
    summary="Accept an invitation as the logged-in user (whose email it was sent to)",
)
def accept_invitation(
    token: str, principal: CurrentPrincipal, db: SessionDep, context: ContextDep
) -> SubuserPublic:
    subuser = subusers.accept(db, token=token, user=principal.user, now=context.clock())
    context.activity.record(
        db,
        event="server.subuser.accept",
        actor=principal.actor,
        target_type="subuser",
        target_id=subuser.id,
        server_id=subuser.server_id,
    )
    return _public(subuser, principal.user)
