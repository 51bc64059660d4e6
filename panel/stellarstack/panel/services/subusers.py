"""Subusers: invitations by email that expire, and the permission nodes each subuser holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from stellarstack.panel import permissions
from stellarstack.panel.api.errors import ApiError, conflict, forbidden, invalid, not_found
from stellarstack.panel.db.models import Invitation, Server, Subuser, User
from stellarstack.panel.security.tokens import hash_token, new_token
from stellarstack.panel.services.accounts import normalise_email

INVITATION_LIFETIME = timedelta(days=7)


def check_grantable(
    requested: list[str], *, granter_nodes: frozenset[str], field: str = "body.permissions"
) -> list[str]:
    """The requested nodes, when they are real and the granter holds every one of them.
    Nobody can hand out more than they have (a subuser with `users.create` cannot invite
    someone with `files.delete` unless they hold it themselves)."""
    unknown = permissions.invalid_nodes(requested)
    if unknown:
        raise invalid(field, f"unknown permission nodes: {', '.join(unknown)}")
    if not requested:
        raise invalid(field, "grant at least one permission node")
    beyond = sorted(permissions.expand(requested) - granter_nodes)
    if beyond:
        raise forbidden(f"you cannot grant permissions you do not hold: {', '.join(beyond)}")
    return sorted(set(requested))


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str


def invite(
    db: Session,
    *,
    server: Server,
    email: str,
    nodes: list[str],
    invited_by: User,
    now: datetime,
) -> NewInvitation:
    email = normalise_email(email)
    owner = db.get(User, server.owner_id) if server.owner_id else None
    if owner is not None and owner.email == email:
        raise conflict("the owner already has every permission", field="body.email")
    existing_user = db.scalar(select(User).where(User.email == email))
    if existing_user is not None and db.scalar(
        select(Subuser).where(Subuser.server_id == server.id, Subuser.user_id == existing_user.id)
    ):
        raise conflict("this user is already a subuser of the server", field="body.email")
    # A new invitation to the same address replaces the open one.
    for open_invitation in db.scalars(
        select(Invitation).where(
            Invitation.server_id == server.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
        )
    ).all():
        db.delete(open_invitation)
    token = new_token()
    invitation = Invitation(
        server_id=server.id,
        email=email,
        permissions=nodes,
        token_hash=hash_token(token),
        invited_by_id=invited_by.id,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    db.add(invitation)
    db.flush()
    return NewInvitation(invitation=invitation, token=token)


def accept(db: Session, *, token: str, user: User, now: datetime) -> Subuser:
    """Accept an invitation as `user`, whose email must be the invited one."""
    invitation = db.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None or invitation.accepted_at is not None:
        raise not_found("invitation")
    if invitation.expires_at <= now:
        raise ApiError(410, "expired", "this invitation expired; ask for a new one")
    if invitation.email != user.email:
        # Same answer as a wrong token: the link is only good for the invited address.
        raise not_found("invitation")
    server = db.get(Server, invitation.server_id)
    if server is None:
        raise not_found("invitation")
    if server.owner_id == user.id:
        raise conflict("you own this server")
    subuser = db.scalar(
        select(Subuser).where(Subuser.server_id == server.id, Subuser.user_id == user.id)
    )
    if subuser is None:
        subuser = Subuser(server_id=server.id, user_id=user.id, permissions=invitation.permissions)
        db.add(subuser)
    else:
        subuser.permissions = invitation.permissions
    invitation.accepted_at = now
    db.flush()
    return subuser
