"""Servers: create from a blueprint on a Docker node or a Kubernetes target, list, get (status
read from the backend), change, power, reinstall, delete; admins suspend, assign owners and
see servers found at a backend that nobody was given yet."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.from_thread
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from stellarstack.api.gameserver import Exposure, Protocol, Resources
from stellarstack.panel.api.deps import (
    AdminReader,
    AdminWriter,
    ContextDep,
    Principal,
    ServerAccess,
    SessionDep,
    load_server_access,
    require_permission,
    require_scope,
)
from stellarstack.panel.api.errors import ApiError, forbidden, invalid, not_found
from stellarstack.panel.api.schemas import Page
from stellarstack.panel.backends.base import BackendError, Kind, ServerBackend
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Allocation, Server, TargetKind, User
from stellarstack.panel.portplan import PortWish
from stellarstack.panel.services import idempotency, server_lists, servers
from stellarstack.panel.services.status_sync import sync_all

router = APIRouter(prefix="/api/servers", tags=["servers"])
admin_router = APIRouter(prefix="/api/admin/servers", tags=["admin: servers"])


# --- schemas ------------------------------------------------------------------------------


class PortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=15, examples=["game"])
    port: int = Field(ge=1, le=65535, description="The port the game listens on in its container")
    protocol: Protocol = Protocol.UDP
    host_port: int | None = Field(
        default=None, ge=1, le=65535, description="Kubernetes HostPort exposure only"
    )
    node_port: int | None = Field(
        default=None, ge=1, le=65535, description="Kubernetes NodePort exposure only"
    )


class ServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191, examples=["Survival"])
    description: str = Field(default="", max_length=1000)
    blueprint: str = Field(min_length=1, max_length=253, examples=["paper"])
    node_id: str | None = Field(default=None, description="A Docker node (or give a target)")
    kubernetes_target_id: str | None = Field(
        default=None, description="A Kubernetes target (or give a node)"
    )
    owner_id: str | None = Field(default=None, description="Admins: who owns it (default: you)")
    image: str | None = Field(default=None, description="One of the blueprint's images")
    startup_command: str | None = Field(default=None, max_length=191)
    variables: dict[str, str] = Field(default_factory=dict, examples=[{"MOTD": "hello"}])
    resources: Resources = Field(default_factory=Resources)
    ports: list[PortRequest] | None = Field(
        default=None,
        max_length=32,
        description="The ports the game listens on, the first primary. Left out: the "
        "blueprint's default ports (refused when it declares none). `[]`: no ports at all, "
        "a server nobody can reach.",
    )
    allocation_ids: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Docker nodes: allocations for the ports in order (the first is primary; "
        "ports beyond the list use it). When none are named, free ones are chosen: as few as "
        "the ports need (a TCP and a UDP port share one), preferring the port's own number.",
    )
    exposure: Exposure | None = Field(default=None, description="Kubernetes only")
    start: bool = Field(default=True, description="Start once installed")
    allocation_limit: int | None = Field(default=None, ge=0, le=32, description="Admins only")
    backup_limit: int | None = Field(default=None, ge=0, le=1000, description="Admins only")


class ServerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=191)
    description: str | None = Field(default=None, max_length=1000)
    variables: dict[str, str] | None = Field(
        default=None, description="Values to change (others are kept)"
    )
    image: str | None = None
    resources: Resources | None = Field(default=None, description="Admins only")
    allocation_limit: int | None = Field(default=None, ge=0, le=32, description="Admins only")
    backup_limit: int | None = Field(default=None, ge=0, le=1000, description="Admins only")


class AllocationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    ip: str
    port: int
    alias: str | None


class ServerPublic(BaseModel):
    id: str
    name: str
    description: str
    owner_id: str | None
    target_kind: TargetKind
    node_id: str | None
    kubernetes_target_id: str | None
    namespace: str
    resource_name: str
    blueprint: str
    external: bool
    suspended: bool
    allocation_limit: int
    backup_limit: int
    schedule_limit: int
    state: str
    status: dict[str, Any]
    status_read_at: datetime | None
    allocations: list[AllocationPublic]
    spec: dict[str, Any] | None = Field(
        default=None, description="The GameServer's spec, where it was read"
    )
    backend_error: str | None = Field(
        default=None, description="Why the status could not be read just now"
    )
    created_at: datetime


class PowerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["start", "stop", "restart", "kill"]


class PowerAccepted(BaseModel):
    action: str
    request: str | None = Field(description="The restart/kill request id the status echoes")


class ReinstallAccepted(BaseModel):
    request: str


class OwnerAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_id: str


class SyncResult(BaseModel):
    adopted: int
    updated: int
    missing: int
    unreachable: list[str]


def _public(
    db: Session,
    server: Server,
    *,
    spec: dict[str, Any] | None = None,
    backend_error: str | None = None,
    allocations: list[Allocation] | None = None,
) -> ServerPublic:
    if allocations is None:
        allocations = servers.allocations_of(db, server)
    return ServerPublic(
        id=server.id,
        name=server.name,
        description=server.description,
        owner_id=server.owner_id,
        target_kind=server.target_kind,
        node_id=server.node_id,
        kubernetes_target_id=server.kubernetes_target_id,
        namespace=server.namespace,
        resource_name=server.resource_name,
        blueprint=server.blueprint,
        external=server.external,
        suspended=server.suspended,
        allocation_limit=server.allocation_limit,
        backup_limit=server.backup_limit,
        schedule_limit=server.schedule_limit,
        state=server.state,
        status=server.status or {},
        status_read_at=server.status_read_at,
        allocations=[AllocationPublic.model_validate(a) for a in allocations],
        spec=spec,
        backend_error=backend_error,
        created_at=server.created_at,
    )


_SERVER_PAGE = Page[ServerPublic]


def _page_response(found: server_lists.ServerPage, page: int, per_page: int) -> Response:
    """A page of servers as JSON: validated once from plain rows and serialized by pydantic.
    Returned as bytes, so FastAPI does not validate it again (in another thread hand-off)."""
    items = [
        {
            **row,
            "status": row["status"] or {},
            "allocations": [dict(allocation) for allocation in found.allocations[row["id"]]],
        }
        for row in found.rows
    ]
    body = _SERVER_PAGE.model_validate(
        {"items": items, "total": found.total, "page": page, "per_page": per_page}
    )
    return Response(
        _SERVER_PAGE.__pydantic_serializer__.to_json(body), media_type="application/json"
    )


# --- dependencies -------------------------------------------------------------------------

ServersReader = Annotated[Principal, Depends(require_scope("servers:read"))]
ServersWriter = Annotated[Principal, Depends(require_scope("servers:write"))]


def _viewer(server_id: str, principal: ServersReader, db: SessionDep) -> ServerAccess:
    """Anyone who can see the server (owner, subuser, admin); 404 for everyone else."""
    return load_server_access(db, principal, server_id)


Viewer = Annotated[ServerAccess, Depends(_viewer)]


def _need(access: ServerAccess, node: str) -> None:
    if not access.can(node):
        raise forbidden(f"you lack the {node!r} permission on this server (or the key's scope)")


# --- routes -------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ServerPublic,
    summary="Create a server from a blueprint",
    responses={409: {"description": "a limit is reached, an allocation is taken or none is free"}},
)
def create_server(
    body: ServerCreate,
    request: Request,
    principal: ServersWriter,
    db: SessionDep,
    context: ContextDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="Repeat a create safely: the same key and body replay the first answer",
        ),
    ] = None,
) -> Response:
    caller = principal.user
    owner = caller
    if body.owner_id is not None and body.owner_id != caller.id:
        if not caller.is_admin:
            raise invalid("body.owner_id", "only admins create servers for other users")
        found = db.get(User, body.owner_id)
        if found is None:
            raise invalid("body.owner_id", "no such user")
        owner = found
    wish = servers.ServerWish(
        name=body.name,
        description=body.description,
        blueprint=body.blueprint,
        node_id=body.node_id,
        kubernetes_target_id=body.kubernetes_target_id,
        image=body.image,
        startup_command=body.startup_command,
        variables=body.variables,
        resources=body.resources.to_wire(),
        ports=None
        if body.ports is None
        else [
            PortWish(
                name=p.name,
                port=p.port,
                protocol=str(p.protocol),
                host_port=p.host_port,
                node_port=p.node_port,
            )
            for p in body.ports
        ],
        allocation_ids=body.allocation_ids,
        exposure=body.exposure.to_wire() if body.exposure else None,
        start=body.start,
        allocation_limit=body.allocation_limit,
        backup_limit=body.backup_limit,
    )

    def produce() -> ServerPublic:
        server, stored = servers.create_server(
            db, context=context, actor=principal.actor, caller=caller, owner=owner, wish=wish
        )
        blueprint = servers.blueprint_named(db, server.blueprint)
        spec = servers.visible_spec(stored, blueprint, admin=caller.is_admin)
        return _public(db, server, spec=spec)

    return idempotency.idempotent_create(
        db,
        principal=principal.label,
        key=idempotency_key,
        request_fingerprint=idempotency.fingerprint(
            "POST", request.url.path, body.model_dump(mode="json")
        ),
        now=context.clock(),
        produce=produce,
    )


@router.get(
    "",
    summary="List the servers you can see (admins: every server)",
    response_model=Page[ServerPublic],
)
def list_servers(
    principal: ServersReader,
    db: SessionDep,
    name: str | None = Query(default=None, max_length=191, description="Part of the name"),
    state: str | None = Query(default=None, max_length=32),
    owner_id: str | None = Query(default=None, description="Admins: one owner's servers"),
    page: int = Query(default=1, ge=1, le=1_000_000),
    per_page: int = Query(default=50, ge=1, le=200),
) -> Response:
    if not principal.is_admin:
        visibility, who = server_lists.Visibility.SEEN_BY, principal.user_id
    elif owner_id is not None:
        visibility, who = server_lists.Visibility.OWNED_BY, owner_id
    else:
        visibility, who = server_lists.Visibility.ALL, None
    found = server_lists.server_page(
        db, visibility, who=who, name=name, state=state, page=page, per_page=per_page
    )
    return _page_response(found, page, per_page)


def _refresh(
    context: PanelContext, db: Session, access: ServerAccess
) -> tuple[dict[str, Any] | None, str | None]:
    """Read the GameServer from its backend outside the request's transaction (a slow node
    must not hold the database), then store its status in a transaction of its own."""
    server_id = access.server.id
    place = servers.place_of(db, access.server)
    namespace, name = access.server.namespace, access.server.resource_name
    db.commit()

    async def read(backend: ServerBackend) -> dict[str, Any] | None:
        return await backend.get(Kind.GAMESERVER, namespace, name)

    try:
        document = servers.on_backend(context, place, read)
    except ApiError as exc:
        return None, exc.message
    with transaction(context.sessions) as fresh:
        server = fresh.get(Server, server_id)
        if server is not None:
            servers.record_status(server, document, now=context.clock())
    return document, None


@router.get("/{server_id}", summary="Get a server, its status read from the backend now")
def get_server(access: Viewer, db: SessionDep, context: ContextDep) -> ServerPublic:
    document, error = _refresh(context, db, access)
    # A read of its own (no write lock on SQLite): the request's session holds the server as
    # it was before the status was stored.
    with transaction(context.read_sessions) as fresh:
        server = fresh.get(Server, access.server.id)
        if server is None:
            raise not_found("server")
        blueprint = servers.blueprint_named(fresh, server.blueprint)
        spec = servers.visible_spec(document, blueprint, admin=access.principal.is_admin)
        return _public(fresh, server, spec=spec, backend_error=error)


@router.patch("/{server_id}", summary="Change a server (resources and limits: admins)")
def update_server(
    body: ServerUpdate, access: Viewer, db: SessionDep, context: ContextDep
) -> ServerPublic:
    server, admin = access.server, access.principal.user.is_admin
    changes = body.model_dump(exclude_unset=True)
    if not access.principal.has_scope("servers:write"):
        raise forbidden("this API key lacks the 'servers:write' scope")
    if {"name", "description"} & changes.keys():
        _need(access, "settings.rename")
    if "variables" in changes:
        _need(access, "startup.update")
    if "image" in changes:
        _need(access, "startup.image")
    for field in ("resources", "allocation_limit", "backup_limit"):
        if field in changes and not admin:
            raise invalid(f"body.{field}", "only admins change resources and limits")
    before: dict[str, Any] = {"name": server.name, "description": server.description}
    after: dict[str, Any] = {}
    if body.name is not None:
        server.name = body.name.strip()
    if body.description is not None:
        server.description = body.description
    for field in ("allocation_limit", "backup_limit"):
        value = changes.get(field)
        if value is not None:
            before[field] = getattr(server, field)
            setattr(server, field, value)
    stored: dict[str, Any] | None = None
    blueprint = servers.blueprint_named(db, server.blueprint)
    if {"variables", "image", "resources"} & changes.keys():
        if blueprint is None:
            raise ApiError(
                status.HTTP_409_CONFLICT,
                "conflict",
                f"the blueprint {server.blueprint!r} is not in the panel; variables and image "
                "cannot be checked",
            )
        place = servers.place_of(db, server)
        current = servers.read_document(context, place, server)
        current_spec = current.get("spec") or {}
        before.update(
            variables=current_spec.get("variables", {}),
            image=current_spec.get("image"),
            resources=current_spec.get("resources"),
        )
        if body.variables is not None:
            merged = {**(current_spec.get("variables") or {}), **body.variables}
            servers.check_variable_change(blueprint, body.variables, merged, admin=admin)
        if body.image is not None:
            servers.check_image(blueprint, body.image)

        def change(spec: dict[str, Any]) -> None:
            if body.variables is not None:
                spec["variables"] = {**(spec.get("variables") or {}), **body.variables}
            if body.image is not None:
                spec["image"] = body.image
            if body.resources is not None:
                spec["resources"] = body.resources.to_wire()

        stored = servers.reapply_spec(context, place, server, change)
        stored_spec = stored.get("spec") or {}
        after.update(
            variables=stored_spec.get("variables", {}),
            image=stored_spec.get("image"),
            resources=stored_spec.get("resources"),
        )
    for field in ("name", "description", "allocation_limit", "backup_limit"):
        if field in before:
            after[field] = getattr(server, field)
    context.activity.record(
        db,
        event="server.update",
        actor=access.principal.actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={"before": before, "after": after},
    )
    return _public(db, server, spec=servers.visible_spec(stored, blueprint, admin=admin))


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a server")
def delete_server(access: Viewer, db: SessionDep, context: ContextDep) -> None:
    if not access.is_owner:
        raise forbidden("only the server's owner or an admin deletes it")
    if not access.principal.has_scope("servers:write"):
        raise forbidden("this API key lacks the 'servers:write' scope")
    servers.delete_server(db, context=context, actor=access.principal.actor, server=access.server)


@router.post(
    "/{server_id}/power",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start, stop, restart or kill (permission control.<action>)",
)
def power(body: PowerRequest, access: Viewer, db: SessionDep, context: ContextDep) -> PowerAccepted:
    _need(access, f"control.{body.action}")
    request = servers.power(
        db, context=context, actor=access.principal.actor, server=access.server, action=body.action
    )
    return PowerAccepted(action=body.action, request=request)


@router.post(
    "/{server_id}/reinstall",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run the blueprint's install step again",
)
def reinstall(
    access: Annotated[ServerAccess, Depends(require_permission("settings.reinstall"))],
    db: SessionDep,
    context: ContextDep,
) -> ReinstallAccepted:
    request = servers.reinstall(
        db, context=context, actor=access.principal.actor, server=access.server
    )
    return ReinstallAccepted(request=request)


class AllocationAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allocation_id: str | None = Field(
        default=None, description="A free allocation of the server's node; any free one if unset"
    )


@router.get("/{server_id}/allocations", summary="The server's addresses and ports")
def list_server_allocations(
    access: Annotated[ServerAccess, Depends(require_permission("allocations.read"))],
    db: SessionDep,
) -> list[AllocationPublic]:
    return [AllocationPublic.model_validate(a) for a in servers.allocations_of(db, access.server)]


@router.post(
    "/{server_id}/allocations",
    status_code=status.HTTP_201_CREATED,
    response_model=AllocationPublic,
    summary="Add an allocation of the node (up to the server's allocation limit)",
)
def add_server_allocation(
    body: AllocationAdd,
    request: Request,
    access: Annotated[ServerAccess, Depends(require_permission("allocations.create"))],
    db: SessionDep,
    context: ContextDep,
    idempotency_key: Annotated[str | None, Header(alias=idempotency.HEADER)] = None,
) -> Response:
    def produce() -> AllocationPublic:
        allocation = servers.add_allocation(
            db,
            context=context,
            actor=access.principal.actor,
            server=access.server,
            allocation_id=body.allocation_id,
        )
        return AllocationPublic.model_validate(allocation)

    return idempotency.idempotent_create(
        db,
        principal=access.principal.label,
        key=idempotency_key,
        request_fingerprint=idempotency.fingerprint(
            "POST", request.url.path, body.model_dump(mode="json")
        ),
        now=context.clock(),
        produce=produce,
    )


@router.delete(
    "/{server_id}/allocations/{allocation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an allocation (not the primary one)",
)
def remove_server_allocation(
    allocation_id: str,
    access: Annotated[ServerAccess, Depends(require_permission("allocations.delete"))],
    db: SessionDep,
    context: ContextDep,
) -> None:
    servers.remove_allocation(
        db,
        context=context,
        actor=access.principal.actor,
        server=access.server,
        allocation_id=allocation_id,
    )


# --- admin ------------------------------------------------------------------------------


@admin_router.post("/{server_id}/suspend", summary="Suspend a server (it stops)")
def suspend(
    server_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> ServerPublic:
    server = servers.server_or_404(db, server_id)
    servers.set_suspended(db, context=context, actor=principal.actor, server=server, suspended=True)
    return _public(db, server)


@admin_router.post("/{server_id}/unsuspend", summary="Lift a suspension")
def unsuspend(
    server_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> ServerPublic:
    server = servers.server_or_404(db, server_id)
    servers.set_suspended(
        db, context=context, actor=principal.actor, server=server, suspended=False
    )
    return _public(db, server)


@admin_router.get(
    "/unassigned",
    summary="Servers found at a backend that nobody owns yet",
    response_model=Page[ServerPublic],
)
def list_unassigned(
    _: AdminReader,
    db: SessionDep,
    page: int = Query(default=1, ge=1, le=1_000_000),
    per_page: int = Query(default=50, ge=1, le=200),
) -> Response:
    found = server_lists.server_page(
        db, server_lists.Visibility.UNASSIGNED, page=page, per_page=per_page
    )
    return _page_response(found, page, per_page)


@admin_router.post("/{server_id}/owner", summary="Give a server (adopted or not) an owner")
def assign_owner(
    server_id: str,
    body: OwnerAssignment,
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
) -> ServerPublic:
    server = servers.server_or_404(db, server_id)
    servers.assign_owner(
        db, context=context, actor=principal.actor, server=server, owner_id=body.owner_id
    )
    return _public(db, server)


@admin_router.post(
    "/sync", summary="Read every backend now: update states, adopt unknown GameServers"
)
def sync_now(_: AdminWriter, db: SessionDep, context: ContextDep) -> SyncResult:
    # The pass writes in transactions of its own; this request's must not hold the database.
    db.commit()
    try:
        outcome = anyio.from_thread.run(sync_all, context)
    except BackendError as exc:  # pragma: no cover - sync_all reports per backend
        raise ApiError(status.HTTP_502_BAD_GATEWAY, "backend_error", str(exc)) from exc
    return SyncResult(
        adopted=outcome.adopted,
        updated=outcome.updated,
        missing=outcome.missing,
        unreachable=outcome.unreachable,
    )
