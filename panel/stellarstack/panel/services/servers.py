"""Servers: create from a blueprint onto a Docker node or a Kubernetes target, change, power,
reinstall, suspend and delete them. The GameServer resource at the backend is the truth for what
runs; the `servers` row is who owns it, where it is, and its status as last read.

These functions run in the request's worker thread inside its transaction; backend calls are
sent to the event loop (`on_backend`) and waited for. A create writes the row, claims its
allocations and writes the GameServer in one transaction: when the backend refuses, nothing is
kept. Limits are checked after locking the owner's row (PostgreSQL; SQLite transactions hold the
database write lock), so parallel creates cannot exceed them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.from_thread
from fastapi import status
from pydantic import ValidationError
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from stellarstack.api.blueprint import Blueprint, check_variable_values
from stellarstack.api.constants import API_VERSION, GROUP
from stellarstack.api.gameserver import GameServer
from stellarstack.api.manifests import error_messages
from stellarstack.panel import portplan
from stellarstack.panel.api.errors import ApiError, FieldProblem, conflict, invalid, not_found
from stellarstack.panel.backends.base import (
    BackendError,
    BackendUnavailableError,
    Kind,
    PowerAction,
    ResourceInvalidError,
    ResourceMissingError,
    ServerBackend,
)
from stellarstack.panel.backends.docker_node import DEFAULT_NAMESPACE
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.base import new_id
from stellarstack.panel.db.models import (
    Allocation,
    BlueprintRecord,
    KubernetesTarget,
    Node,
    Server,
    TargetKind,
    User,
)
from stellarstack.panel.portplan import PortChoiceError, PortWish
from stellarstack.panel.services.activity import Actor
from stellarstack.panel.services.status_sync import ANNOTATION_DELETED, MISSING

T = TypeVar("T")
LABEL_SERVER_ID = f"{GROUP}/panel-server"
"""Label on GameServers the panel created: the id of their `servers` row."""


# --- where a server runs -----------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A Docker node or a Kubernetes target, and the namespace a server lives in there."""

    node: Node | None
    target: KubernetesTarget | None

    @property
    def kind(self) -> TargetKind:
        return TargetKind.DOCKER if self.node is not None else TargetKind.KUBERNETES

    @property
    def namespace(self) -> str:
        return DEFAULT_NAMESPACE if self.target is None else self.target.namespace

    def backend(self, context: PanelContext) -> ServerBackend:
        """Call on the event loop."""
        if self.node is not None:
            return context.backends.for_node(self.node)
        assert self.target is not None
        return context.backends.for_target(self.target)


def place_of(db: Session, server: Server) -> Place:
    if server.target_kind is TargetKind.DOCKER:
        node = db.get(Node, server.node_id) if server.node_id else None
        if node is None:
            raise conflict("the server's node no longer exists")
        return Place(node=node, target=None)
    target = db.get(KubernetesTarget, server.kubernetes_target_id or "")
    if target is None:
        raise conflict("the server's Kubernetes target no longer exists")
    return Place(node=None, target=target)


def on_backend(
    context: PanelContext, place: Place, action: Callable[[ServerBackend], Awaitable[T]]
) -> T:
    """Run `action` with the place's backend on the event loop, from a worker thread; backend
    failures become API errors."""

    async def run() -> T:
        return await action(place.backend(context))

    try:
        return anyio.from_thread.run(run)
    except ResourceInvalidError as exc:
        raise _invalid_document(exc.problems) from exc
    except BackendUnavailableError as exc:
        raise ApiError(
            status.HTTP_503_SERVICE_UNAVAILABLE, "backend_unavailable", str(exc)
        ) from exc
    except ResourceMissingError as exc:
        raise ApiError(status.HTTP_409_CONFLICT, "resource_missing", str(exc)) from exc
    except BackendError as exc:
        raise ApiError(status.HTTP_502_BAD_GATEWAY, "backend_error", str(exc)) from exc


def problem_field(problem: str) -> tuple[str, str]:
    """`spec.variables.X: message` → (`body.variables.X`, message)."""
    path, _, message = problem.partition(": ")
    if path.startswith("spec."):
        path = "body." + path[len("spec.") :]
    elif not path.startswith("body"):
        path = f"body.{path}" if path and path != "(document)" else "body"
    return path, message or problem


def _invalid_document(problems: list[str]) -> ApiError:
    fields = [FieldProblem(field=f, message=m) for f, m in map(problem_field, problems)] or [
        FieldProblem(field="body", message="invalid")
    ]
    first = fields[0]
    return ApiError(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "validation_error",
        f"{first.field}: {first.message}",
        field=first.field,
        fields=fields,
    )


# --- reading ----------------------------------------------------------------------------


def record_status(server: Server, document: Mapping[str, Any] | None, *, now: Any) -> None:
    """Store what the backend reported (a missing GameServer is the panel's `Missing`)."""
    server.status_read_at = now
    if document is None:
        server.state = MISSING
        return
    found = dict(document.get("status") or {})
    server.status = found
    server.state = str(found.get("state") or "Pending")


def allocations_of(db: Session, server: Server) -> list[Allocation]:
    return list(
        db.scalars(
            select(Allocation)
            .where(Allocation.server_id == server.id)
            .order_by(Allocation.ip, Allocation.port)
        )
    )


def visible_spec(
    document: Mapping[str, Any] | None, blueprint: Blueprint | None, *, admin: bool
) -> dict[str, Any] | None:
    """The GameServer's spec as the caller may see it: variables the blueprint hides from
    users are left out for them."""
    if document is None:
        return None
    spec = dict(document.get("spec") or {})
    if not admin:
        hidden = (
            {v.env for v in blueprint.spec.variables if not v.user_viewable}
            if blueprint is not None
            else set()
        )
        spec["variables"] = {
            k: v for k, v in (spec.get("variables") or {}).items() if k not in hidden
        }
    return spec


def blueprint_named(db: Session, name: str) -> Blueprint | None:
    record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == name))
    return None if record is None else Blueprint.model_validate(record.document)


# --- creating ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerWish:
    """What a create request asks for (already shaped by the route's schema)."""

    name: str
    description: str
    blueprint: str
    node_id: str | None
    kubernetes_target_id: str | None
    image: str | None
    startup_command: str | None
    variables: dict[str, str]
    resources: dict[str, Any]
    ports: list[PortWish] | None
    """The ports asked for; None when the request names none (the blueprint's defaults)."""
    allocation_ids: list[str]
    exposure: dict[str, Any] | None
    start: bool
    allocation_limit: int | None
    backup_limit: int | None


def lock_owner(db: Session, owner: User) -> None:
    """Take the owner's row lock for the rest of the transaction (PostgreSQL); SQLite's
    `BEGIN IMMEDIATE` transactions already exclude each other."""
    db.execute(select(User.id).where(User.id == owner.id).with_for_update())


def check_server_limit(db: Session, owner: User) -> None:
    if owner.server_limit is None:
        return
    owned = db.scalar(select(func.count()).select_from(Server).where(Server.owner_id == owner.id))
    if (owned or 0) >= owner.server_limit:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "limit_reached",
            f"the server limit of {owner.server_limit} is reached: {owner.email} owns {owned} "
            "server(s)",
            field="body.owner_id",
        )


def _place_for(db: Session, wish: ServerWish) -> Place:
    if (wish.node_id is None) == (wish.kubernetes_target_id is None):
        raise invalid("body.node_id", "give exactly one of node_id and kubernetes_target_id")
    if wish.node_id is not None:
        node = db.get(Node, wish.node_id)
        if node is None:
            raise invalid("body.node_id", "no such node")
        if node.maintenance:
            raise conflict("the node is in maintenance; choose another", field="body.node_id")
        return Place(node=node, target=None)
    target = db.get(KubernetesTarget, wish.kubernetes_target_id or "")
    if target is None:
        raise invalid("body.kubernetes_target_id", "no such Kubernetes target")
    return Place(node=None, target=target)


def check_image(blueprint: Blueprint, image: str | None, *, field: str = "body.image") -> None:
    if image is None:
        return
    if not any(image in (choice.name, choice.image) for choice in blueprint.spec.images):
        names = ", ".join(choice.name for choice in blueprint.spec.images)
        raise invalid(field, f"not one of the blueprint's images ({names})")


def check_variables(blueprint: Blueprint, values: dict[str, str], *, admin: bool) -> None:
    problems = check_variable_values(blueprint.spec, values, as_user=not admin)
    if problems:
        raise _invalid_document(problems)


def check_variable_change(
    blueprint: Blueprint, changed: dict[str, str], merged: dict[str, str], *, admin: bool
) -> None:
    """A change of some values: users may change only user-editable variables (values an
    admin set on others stay as they are), and the whole resulting set must hold the rules."""
    for env in changed:
        variable = blueprint.spec.variable(env)
        if variable is None:
            raise invalid(f"body.variables.{env}", f"the blueprint has no variable {env}")
        if not admin and not variable.user_editable:
            raise invalid(f"body.variables.{env}", "not editable by users")
    check_variables(blueprint, merged, admin=True)


def claim_allocations(
    db: Session,
    *,
    server: Server,
    node: Node,
    wanted: list[str],
    count: int,
    field: str = "body.allocation_ids",
    preferred: list[int] | None = None,
    refusal: Callable[[int, int], str] | None = None,
) -> list[Allocation]:
    """Give the server the allocations `wanted` (ids), or `count` free ones of the node when
    none are named: for the n-th, the one numbered `preferred[n]` when it is free, else the
    lowest. An allocation already given to a server is refused: the conditional update
    re-checks `server_id IS NULL` under the row lock, so two requests never both get one.
    `refusal(free, count)` words the 409 when the node has too few free allocations."""
    if not wanted and count:
        postgresql = db.get_bind().dialect.name == "postgresql"
        for slot in range(count):
            free = select(Allocation.id).where(
                Allocation.node_id == node.id, Allocation.server_id.is_(None)
            )
            if wanted:
                free = free.where(Allocation.id.not_in(wanted))
            if preferred is not None and slot < len(preferred):
                free = free.order_by(case((Allocation.port == preferred[slot], 0), else_=1))
            free = free.order_by(Allocation.ip, Allocation.port).limit(1)
            if postgresql:
                # Rows another create holds are skipped, not waited for: it is taking them.
                free = free.with_for_update(skip_locked=True)
            found = db.scalar(free)
            if found is None:
                message = (
                    refusal(len(wanted), count)
                    if refusal is not None
                    else f"the node has {len(wanted)} free allocation(s); {count} needed"
                )
                raise conflict(message, field=field)
            wanted.append(found)
    if len(set(wanted)) != len(wanted):
        raise invalid(field, "an allocation is named twice")
    for index, allocation_id in enumerate(wanted):
        claimed = db.execute(
            update(Allocation)
            .where(
                Allocation.id == allocation_id,
                Allocation.node_id == node.id,
                Allocation.server_id.is_(None),
            )
            .values(server_id=server.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            exists = db.get(Allocation, allocation_id)
            if exists is None or exists.node_id != node.id:
                raise invalid(f"{field}.{index}", "no such allocation on this node")
            raise conflict(
                f"allocation {exists.ip}:{exists.port} is given to another server",
                field=f"{field}.{index}",
            )
    claimed_rows = db.scalars(
        select(Allocation)
        .where(Allocation.id.in_(wanted))
        .execution_options(populate_existing=True)
    )
    by_id = {allocation.id: allocation for allocation in claimed_rows}
    return [by_id[i] for i in wanted]


def gameserver_document(
    *,
    server: Server,
    place: Place,
    wish: ServerWish,
    ports: list[PortWish],
    variables: dict[str, str],
    slots: list[int],
    allocations: list[Allocation],
) -> dict[str, Any]:
    """The GameServer a create writes. On a Docker node port n is published on
    `allocations[slots[n]]`; on Kubernetes the ports keep their exposure settings."""
    if place.node is not None:
        addresses = [portplan.Address(ip=a.ip, port=a.port) for a in allocations]
        published = portplan.docker_ports(ports, slots, addresses)
    else:
        published = portplan.kubernetes_ports(ports)
    spec: dict[str, Any] = {
        "blueprint": wish.blueprint,
        "variables": dict(variables),
        "resources": wish.resources,
        "ports": published,
        "power": {"state": "Running" if wish.start else "Stopped"},
    }
    if wish.image is not None:
        spec["image"] = wish.image
    if wish.startup_command is not None:
        spec["startupCommand"] = wish.startup_command
    if place.node is not None:
        spec["placement"] = {"type": "DockerNode", "node": place.node.agent_id.lower()}
    else:
        spec["placement"] = {"type": "Kubernetes"}
        if wish.exposure is not None:
            spec["exposure"] = wish.exposure
    return {
        "apiVersion": API_VERSION,
        "kind": "GameServer",
        "metadata": {
            "name": server.resource_name,
            "namespace": server.namespace,
            "labels": {LABEL_SERVER_ID: server.id},
        },
        "spec": spec,
    }


def validated(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the API model accepts it, or 422 naming each field."""
    try:
        return GameServer.model_validate(document).to_wire()
    except ValidationError as exc:
        raise _invalid_document(error_messages(exc)) from exc


def create_server(
    db: Session,
    *,
    context: PanelContext,
    actor: Actor,
    caller: User,
    owner: User,
    wish: ServerWish,
) -> tuple[Server, dict[str, Any]]:
    """A new server and the GameServer document the backend stored."""
    admin = caller.is_admin
    place = _place_for(db, wish)
    blueprint = blueprint_named(db, wish.blueprint)
    if blueprint is None:
        raise invalid("body.blueprint", f"no blueprint named {wish.blueprint!r}")
    check_image(blueprint, wish.image)
    check_variables(blueprint, wish.variables, admin=admin)
    if place.node is None and wish.allocation_ids:
        raise invalid("body.allocation_ids", "allocations are for Docker nodes")
    if place.node is not None and wish.exposure is not None:
        raise invalid("body.exposure", "Docker nodes publish ports on allocations only")
    if not admin and (wish.allocation_limit is not None or wish.backup_limit is not None):
        field = "allocation_limit" if wish.allocation_limit is not None else "backup_limit"
        raise invalid(f"body.{field}", "only admins set limits")
    try:
        ports = portplan.server_ports(blueprint, wish.ports)
        variables = portplan.with_port_variables(blueprint, ports, wish.variables)
    except PortChoiceError as problem:
        raise invalid(problem.field, problem.message) from None
    # A port number the caller chose must also suit the variable that carries it.
    check_variables(blueprint, variables, admin=True)
    slots: list[int] = []
    if place.node is not None and ports:
        slots = (
            portplan.named_slots(ports, len(wish.allocation_ids))
            if wish.allocation_ids
            else portplan.allocation_slots(ports)
        )
    needed = len(wish.allocation_ids) or (max(slots) + 1 if slots else 0)
    allocation_limit = wish.allocation_limit if wish.allocation_limit is not None else 1
    if wish.allocation_limit is None and (admin or wish.ports is None):
        # The blueprint's default ports are an admin's choice: they get what they need.
        allocation_limit = max(1, needed)
    if needed > allocation_limit:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "limit_reached",
            f"the allocation limit of {allocation_limit} is exceeded ({needed} asked for)",
            field="body.allocation_ids",
        )

    lock_owner(db, owner)
    check_server_limit(db, owner)

    server_id = new_id()
    server = Server(
        id=server_id,
        name=wish.name.strip(),
        description=wish.description,
        owner_id=owner.id,
        target_kind=place.kind,
        node_id=place.node.id if place.node else None,
        kubernetes_target_id=place.target.id if place.target else None,
        namespace=place.namespace,
        resource_name=f"gs-{server_id[:12]}",
        blueprint=wish.blueprint,
        allocation_limit=allocation_limit,
    )
    if wish.backup_limit is not None:
        server.backup_limit = wish.backup_limit
    db.add(server)
    db.flush()
    allocations: list[Allocation] = []
    if place.node is not None:
        allocations = claim_allocations(
            db,
            server=server,
            node=place.node,
            wanted=list(wish.allocation_ids),
            count=needed,
            field="body.allocation_ids" if wish.allocation_ids else "body.node_id",
            preferred=portplan.preferred_numbers(ports, slots),
            refusal=lambda free, count: portplan.no_free_allocation(free, count, ports),
        )
    document = validated(
        gameserver_document(
            server=server,
            place=place,
            wish=wish,
            ports=ports,
            variables=variables,
            slots=slots,
            allocations=allocations,
        )
    )
    blueprint_document = blueprint.model_copy(update={"status": None}).to_wire()

    async def write(backend: ServerBackend) -> dict[str, Any]:
        if place.node is not None:
            await backend.apply(Kind.BLUEPRINT, "", blueprint_document)
        elif await backend.get(Kind.BLUEPRINT, "", wish.blueprint) is None:
            # A cluster's own Blueprints (GitOps) are never overwritten; a missing one is added.
            await backend.apply(Kind.BLUEPRINT, "", blueprint_document)
        return await backend.apply(Kind.GAMESERVER, server.namespace, document)

    stored = on_backend(context, place, write)
    record_status(server, stored, now=context.clock())
    context.activity.record(
        db,
        event="server.create",
        actor=actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={
            "after": {
                "name": server.name,
                "owner_id": owner.id,
                "blueprint": wish.blueprint,
                "target": place.kind,
                "resource": f"{server.namespace}/{server.resource_name}",
                "allocations": [f"{a.ip}:{a.port}" for a in allocations],
            }
        },
    )
    return server, stored


# --- changing ---------------------------------------------------------------------------


def read_document(context: PanelContext, place: Place, server: Server) -> dict[str, Any]:
    async def read(backend: ServerBackend) -> dict[str, Any] | None:
        return await backend.get(Kind.GAMESERVER, server.namespace, server.resource_name)

    found = on_backend(context, place, read)
    if found is None:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "resource_missing",
            f"the GameServer {server.namespace}/{server.resource_name} no longer exists",
        )
    return found


def reapply_spec(
    context: PanelContext,
    place: Place,
    server: Server,
    change: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Read the GameServer, change its spec, validate and write it back."""
    current = read_document(context, place, server)
    spec = dict(current.get("spec") or {})
    change(spec)
    metadata = {
        key: value
        for key, value in (current.get("metadata") or {}).items()
        if key in {"name", "namespace", "labels", "annotations"}
    }
    document = validated(
        {"apiVersion": API_VERSION, "kind": "GameServer", "metadata": metadata, "spec": spec}
    )

    async def write(backend: ServerBackend) -> dict[str, Any]:
        return await backend.apply(Kind.GAMESERVER, server.namespace, document)

    stored = on_backend(context, place, write)
    record_status(server, stored, now=context.clock())
    return stored


def power(
    db: Session, *, context: PanelContext, actor: Actor, server: Server, action: PowerAction
) -> str | None:
    if server.suspended:
        raise conflict("the server is suspended; an admin must unsuspend it first")
    place = place_of(db, server)
    namespace, name = server.namespace, server.resource_name
    # Nothing read here must hold until the node answers: end the transaction (on SQLite it
    # holds the write lock) so a slow node does not hold the database; the entry below is
    # written in a short one of its own once the node has accepted.
    db.commit()

    async def send(backend: ServerBackend) -> str | None:
        return await backend.power(namespace, name, action)

    request = on_backend(context, place, send)
    context.activity.record(
        db,
        event=f"server.power.{action}",
        actor=actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={"request": request} if request else {},
    )
    return request


def reinstall(db: Session, *, context: PanelContext, actor: Actor, server: Server) -> str:
    if server.suspended:
        raise conflict("the server is suspended; an admin must unsuspend it first")
    request = uuid.uuid4().hex
    reapply_spec(
        context,
        place_of(db, server),
        server,
        lambda spec: spec.__setitem__("reinstallRequest", request),
    )
    context.activity.record(
        db,
        event="server.reinstall",
        actor=actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={"request": request},
    )
    return request


def set_suspended(
    db: Session, *, context: PanelContext, actor: Actor, server: Server, suspended: bool
) -> None:
    before = server.suspended
    reapply_spec(
        context,
        place_of(db, server),
        server,
        lambda spec: spec.__setitem__("suspended", suspended),
    )
    server.suspended = suspended
    context.activity.record(
        db,
        event="server.suspend" if suspended else "server.unsuspend",
        actor=actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={"before": {"suspended": before}, "after": {"suspended": suspended}},
    )


def delete_server(db: Session, *, context: PanelContext, actor: Actor, server: Server) -> None:
    """Ask the backend to delete the GameServer (it stops first), then forget the server; its
    allocations become free."""
    place = place_of(db, server)

    async def remove(backend: ServerBackend) -> None:
        current = await backend.get(Kind.GAMESERVER, server.namespace, server.resource_name)
        if current is None:
            return
        # Marked first: the status sync must not adopt it while the backend still lists it.
        metadata = current.get("metadata") or {}
        marked = {
            "apiVersion": API_VERSION,
            "kind": "GameServer",
            "metadata": {
                "name": server.resource_name,
                "namespace": server.namespace,
                "labels": metadata.get("labels") or {},
                "annotations": {**(metadata.get("annotations") or {}), ANNOTATION_DELETED: "true"},
            },
            "spec": current.get("spec") or {},
        }
        await backend.apply(Kind.GAMESERVER, server.namespace, marked)
        await backend.delete(Kind.GAMESERVER, server.namespace, server.resource_name)

    on_backend(context, place, remove)
    context.activity.record(
        db,
        event="server.delete",
        actor=actor,
        target_type="server",
        target_id=server.id,
        properties={
            "before": {
                "name": server.name,
                "owner_id": server.owner_id,
                "resource": f"{server.namespace}/{server.resource_name}",
            }
        },
    )
    db.execute(
        update(Allocation)
        .where(Allocation.server_id == server.id)
        .values(server_id=None)
        .execution_options(synchronize_session=False)
    )
    db.delete(server)


def assign_owner(
    db: Session, *, context: PanelContext, actor: Actor, server: Server, owner_id: str
) -> None:
    owner = db.get(User, owner_id)
    if owner is None:
        raise invalid("body.owner_id", "no such user")
    lock_owner(db, owner)
    if server.owner_id != owner.id:
        check_server_limit(db, owner)
    before = server.owner_id
    server.owner_id = owner.id
    context.activity.record(
        db,
        event="server.owner",
        actor=actor,
        target_type="server",
        target_id=server.id,
        server_id=server.id,
        properties={"before": {"owner_id": before}, "after": {"owner_id": owner.id}},
    )


def server_or_404(db: Session, server_id: str) -> Server:
    server = db.get(Server, server_id)
    if server is None:
        raise not_found("server")
    return server


# --- allocations after creation ------------------------------------------------------------


def _published_on(port: Mapping[str, Any], ip: str, number: int) -> bool:
    """Whether a GameServer port is published on the allocation `ip:number` (a port without
    `hostIP`, written before ports carried one, matches by number)."""
    return port.get("hostPort") == number and port.get("hostIP") in (None, ip)


def _primary_allocation(document: Mapping[str, Any], allocation: Allocation) -> bool:
    ports = (document.get("spec") or {}).get("ports") or []
    return bool(ports) and _published_on(ports[0], allocation.ip, allocation.port)


def add_allocation(
    db: Session,
    *,
    context: PanelContext,
    actor: Actor,
    server: Server,
    allocation_id: str | None,
) -> Allocation:
    """Give a server on a Docker node one more allocation (a named one, or any free one of its
    node), published as the same port number inside the container for TCP and UDP, as
    Pterodactyl's additional allocations are. The server's row is locked first, so parallel
    requests cannot exceed `allocation_limit`."""
    if server.target_kind is not TargetKind.DOCKER:
        raise invalid("body.allocation_id", "allocations are for servers on Docker nodes")
    db.execute(select(Server.id).where(Server.id == server.id).with_for_update())
    held = db.scalar(
        select(func.count()).select_from(Allocation).where(Allocation.server_id == server.id)
    )
    if (held or 0) >= server.allocation_limit:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "limit_reached",
            f"the allocation limit of {server.allocation_limit} is reached",
            field="body.allocation_id",
        )
    place = place_of(db, server)
    assert place.node is not None
    [allocation] = claim_allocations(
        db,
        server=server,
        node=place.node,
        wanted=[allocation_id] if allocation_id else [],
        count=1,
        field="body.allocation_id",
    )

    def publish(spec: dict[str, Any]) -> None:
        spec["ports"] = [
            *(spec.get("ports") or []),
            {
                "name": f"a{allocation.port}",
                "port": allocation.port,
                "protocol": "TCPUDP",
                "hostPort": allocation.port,
                "hostIP": allocation.ip,
            },
        ]

    reapply_spec(context, place, server, publish)
    context.activity.record(
        db,
        event="server.allocation.create",
        actor=actor,
        target_type="allocation",
        target_id=allocation.id,
        server_id=server.id,
        properties={"after": {"allocation": f"{allocation.ip}:{allocation.port}"}},
    )
    return allocation


def remove_allocation(
    db: Session, *, context: PanelContext, actor: Actor, server: Server, allocation_id: str
) -> None:
    """Take an allocation back (not the primary one); its ports leave the GameServer."""
    db.execute(select(Server.id).where(Server.id == server.id).with_for_update())
    allocation = db.get(Allocation, allocation_id)
    if allocation is None or allocation.server_id != server.id:
        raise not_found("allocation")
    place = place_of(db, server)
    current = read_document(context, place, server)
    if _primary_allocation(current, allocation):
        raise conflict("the primary allocation cannot be removed")

    def unpublish(spec: dict[str, Any]) -> None:
        spec["ports"] = [
            p
            for p in spec.get("ports") or []
            if not _published_on(p, allocation.ip, allocation.port)
        ]

    reapply_spec(context, place, server, unpublish)
    allocation.server_id = None
    context.activity.record(
        db,
        event="server.allocation.delete",
        actor=actor,
        target_type="allocation",
        target_id=allocation.id,
        server_id=server.id,
        properties={"before": {"allocation": f"{allocation.ip}:{allocation.port}"}},
    )
