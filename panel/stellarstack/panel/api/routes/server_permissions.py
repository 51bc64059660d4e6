"""What the caller may do on one server: the permission nodes they can use there, so a client
(the web UI) can hide the controls the server would refuse. The server still checks every
request; this only saves a user from buttons that cannot work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from stellarstack.panel import permissions
from stellarstack.panel.api.deps import (
    Principal,
    ServerAccess,
    SessionDep,
    load_server_access,
    require_scope,
)

router = APIRouter(prefix="/api/servers/{server_id}", tags=["servers"])


class ServerPermissions(BaseModel):
    permissions: list[str] = Field(
        description="The permission nodes the caller can use on this server, in the panel's "
        "order (owners and admins: every node; with an API key, narrowed to its scopes)"
    )
    owner: bool = Field(description="The caller owns the server (or is an admin)")


def _viewer(
    server_id: str,
    principal: Annotated[Principal, Depends(require_scope("servers:read"))],
    db: SessionDep,
) -> ServerAccess:
    """Anyone who can see the server; 404 for everyone else, as for an unknown id."""
    return load_server_access(db, principal, server_id)


@router.get("/permissions", summary="The permission nodes you can use on this server")
def server_permissions(
    access: Annotated[ServerAccess, Depends(_viewer)],
) -> ServerPermissions:
    usable = [
        node
        for nodes in permissions.PERMISSION_NODES.values()
        for node in nodes
        if access.can(node)
    ]
    return ServerPermissions(permissions=usable, owner=access.is_owner)
