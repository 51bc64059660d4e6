"""Admin: locations, Docker nodes with their allocations, Kubernetes targets."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from stellarstack.panel.api.deps import AdminReader, AdminWriter, ContextDep, SessionDep
from stellarstack.panel.api.errors import conflict, invalid, not_found
from stellarstack.panel.db.models import Allocation, KubernetesTarget, Location, Node
from stellarstack.panel.nodecapacity import MIB, compute_capacity, load_stored, mib_up
from stellarstack.panel.services import infrastructure as infra

router = APIRouter(prefix="/api/admin", tags=["admin: infrastructure"])

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


# --- locations ------------------------------------------------------------------------------


class LocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    short: str = Field(min_length=1, max_length=60, examples=["eu-west"])
    description: str = Field(default="", max_length=255, examples=["Amsterdam"])


class LocationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    short: str | None = Field(default=None, min_length=1, max_length=60)
    description: str | None = Field(default=None, max_length=255)


class LocationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    short: str
    description: str


def _location(db: SessionDep, location_id: str | None, field: str) -> None:
    if location_id is not None and db.get(Location, location_id) is None:
        raise invalid(field, "no such location")


@router.get("/locations", summary="List locations")
def list_locations(_: AdminReader, db: SessionDep) -> list[LocationPublic]:
    rows = db.scalars(select(Location).order_by(Location.short)).all()
    return [LocationPublic.model_validate(row) for row in rows]


@router.post("/locations", status_code=status.HTTP_201_CREATED, summary="Create a location")
def create_location(
    body: LocationCreate, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> LocationPublic:
    if db.scalar(select(Location).where(Location.short == body.short)) is not None:
        raise conflict("a location with this short name exists", field="body.short")
    location = Location(short=body.short, description=body.description)
    db.add(location)
    db.flush()
    context.activity.record(
        db,
        event="admin.location.create",
        actor=principal.actor,
        target_type="location",
        target_id=location.id,
        properties={"after": body.model_dump()},
    )
    return LocationPublic.model_validate(location)


@router.patch("/locations/{location_id}", summary="Change a location")
def update_location(
    location_id: str,
    body: LocationUpdate,
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
) -> LocationPublic:
    location = db.get(Location, location_id)
    if location is None:
        raise not_found("location")
    before = LocationPublic.model_validate(location).model_dump()
    for key, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(location, key, value)
    after = LocationPublic.model_validate(location).model_dump()
    context.activity.record(
        db,
        event="admin.location.update",
        actor=principal.actor,
        target_type="location",
        target_id=location.id,
        properties={"before": before, "after": after},
    )
    return LocationPublic.model_validate(location)


@router.delete(
    "/locations/{location_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an empty location",
)
def delete_location(
    location_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> None:
    location = db.get(Location, location_id)
    if location is None:
        raise not_found("location")
    infra.location_in_use(db, location)
    context.activity.record(
        db,
        event="admin.location.delete",
        actor=principal.actor,
        target_type="location",
        target_id=location.id,
        properties={"before": {"short": location.short}},
    )
    db.delete(location)


# --- nodes ----------------------------------------------------------------------------------


_OVERRIDE = "An admin-set capacity that wins over what the node reports; 0: use the report."


class NodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["node-1"])
    location_id: str | None = None
    url: str = Field(max_length=500, examples=["https://node-1.example.com:8443"])
    token: str = Field(
        min_length=1, max_length=512, description="The node's STELLARSTACK_NODE_TOKEN"
    )
    agent_id: str = Field(
        min_length=1, max_length=63, description="The node's STELLARSTACK_NODE_AGENT_ID"
    )
    public_address: str = Field(default="", max_length=255, examples=["203.0.113.10"])
    memory_mib: int = Field(default=0, ge=0, le=16 * 1024 * 1024, description=_OVERRIDE)
    disk_mib: int = Field(default=0, ge=0, le=1024 * 1024 * 1024, description=_OVERRIDE)
    cpu_millicores: int = Field(default=0, ge=0, le=1024 * 1000, description=_OVERRIDE)


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    location_id: str | None = None
    url: str | None = Field(default=None, max_length=500)
    token: str | None = Field(default=None, min_length=1, max_length=512)
    agent_id: str | None = Field(default=None, min_length=1, max_length=63)
    public_address: str | None = Field(default=None, max_length=255)
    memory_mib: int | None = Field(default=None, ge=0, le=16 * 1024 * 1024, description=_OVERRIDE)
    disk_mib: int | None = Field(default=None, ge=0, le=1024 * 1024 * 1024, description=_OVERRIDE)
    cpu_millicores: int | None = Field(default=None, ge=0, le=1024 * 1000, description=_OVERRIDE)
    maintenance: bool | None = None


class NodeFields(BaseModel):
    """A node's stored settings (what the audit log records of a change)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    location_id: str | None
    url: str
    agent_id: str
    public_address: str
    memory_mib: int = Field(description=_OVERRIDE)
    disk_mib: int = Field(description=_OVERRIDE)
    cpu_millicores: int = Field(description=_OVERRIDE)
    maintenance: bool
    last_heartbeat_at: datetime | None
    last_error: str | None


class NodeCapacity(BaseModel):
    """The capacity the panel counts with: per field the admin's override, else the node's
    report, else 0 (not known yet)."""

    memory_mib: int
    disk_mib: int
    cpu_millicores: int
    overridden: list[str] = Field(description="The fields an admin set on the node")


class NodeReported(BaseModel):
    """What the node last measured of its host (as of `last_heartbeat_at`)."""

    memory_mib: int
    disk_mib: int
    disk_free_mib: int
    cpu_millicores: int


class NodeAllocated(BaseModel):
    """What the servers on the node are given between them (their limits, rounded up to MiB),
    as the node last reported."""

    memory_mib: int
    disk_mib: int
    cpu_millicores: int
    servers: int


class NodePublic(NodeFields):
    """A node; its token is never shown again."""

    online: bool
    capacity: NodeCapacity
    reported: NodeReported | None = Field(description="None until the node first answered")
    allocated: NodeAllocated | None = Field(description="None until the node first answered")


def _node_public(node: Node, now: datetime) -> NodePublic:
    stored = load_stored(node.capacity_report)
    effective = compute_capacity(
        memory_mib=node.memory_mib,
        disk_mib=node.disk_mib,
        cpu_millicores=node.cpu_millicores,
        reported=stored,
    )
    reported = allocated = None
    if stored is not None:
        reported = NodeReported(
            memory_mib=stored.capacity.memory_bytes // MIB,
            disk_mib=stored.capacity.disk_bytes // MIB,
            disk_free_mib=stored.capacity.disk_free_bytes // MIB,
            cpu_millicores=stored.capacity.cpu_millicores,
        )
        allocated = NodeAllocated(
            memory_mib=mib_up(stored.allocated.memory_bytes),
            disk_mib=mib_up(stored.allocated.disk_bytes),
            cpu_millicores=stored.allocated.cpu_millicores,
            servers=stored.allocated.servers,
        )
    return NodePublic(
        **NodeFields.model_validate(node).model_dump(),
        online=infra.node_online(node, now),
        capacity=NodeCapacity(**effective.model_dump()),
        reported=reported,
        allocated=allocated,
    )


def _node(db: SessionDep, node_id: str) -> Node:
    node = db.get(Node, node_id)
    if node is None:
        raise not_found("node")
    return node


@router.get("/nodes", summary="List Docker nodes")
def list_nodes(_: AdminReader, db: SessionDep, context: ContextDep) -> list[NodePublic]:
    now = context.clock()
    return [_node_public(n, now) for n in db.scalars(select(Node).order_by(Node.name)).all()]


@router.post("/nodes", status_code=status.HTTP_201_CREATED, summary="Register a Docker node")
def create_node(
    body: NodeCreate, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> NodePublic:
    if db.scalar(select(Node).where(Node.name == body.name)) is not None:
        raise conflict("a node with this name exists", field="body.name")
    _location(db, body.location_id, "body.location_id")
    infra.check_node_token(body.token)
    node = Node(**{**body.model_dump(), "url": infra.check_node_url(body.url)})
    db.add(node)
    db.flush()
    context.activity.record(
        db,
        event="admin.node.create",
        actor=principal.actor,
        target_type="node",
        target_id=node.id,
        properties={"after": body.model_dump(exclude={"token"})},
    )
    return _node_public(node, context.clock())


@router.get("/nodes/{node_id}", summary="Get a node")
def get_node(node_id: str, _: AdminReader, db: SessionDep, context: ContextDep) -> NodePublic:
    return _node_public(_node(db, node_id), context.clock())


@router.patch("/nodes/{node_id}", summary="Change a node")
def update_node(
    node_id: str, body: NodeUpdate, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> NodePublic:
    node = _node(db, node_id)
    changes = body.model_dump(exclude_unset=True)
    if "location_id" in changes:
        _location(db, body.location_id, "body.location_id")
    if body.url is not None:
        changes["url"] = infra.check_node_url(body.url)
    if body.token is not None:
        infra.check_node_token(body.token)
    before = NodeFields.model_validate(node).model_dump(mode="json")
    for key, value in changes.items():
        if value is not None or key == "location_id":
            setattr(node, key, value)
    after = NodeFields.model_validate(node).model_dump(mode="json")
    context.activity.record(
        db,
        event="admin.node.update",
        actor=principal.actor,
        target_type="node",
        target_id=node.id,
        properties={"before": before, "after": after, "token_changed": body.token is not None},
    )
    return _node_public(node, context.clock())


@router.delete(
    "/nodes/{node_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an unused node"
)
def delete_node(node_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep) -> None:
    node = _node(db, node_id)
    infra.ensure_unused(db, "node", node_id=node.id)
    context.activity.record(
        db,
        event="admin.node.delete",
        actor=principal.actor,
        target_type="node",
        target_id=node.id,
        properties={"before": {"name": node.name, "url": node.url}},
    )
    db.delete(node)


class AllocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ip: str = Field(examples=["203.0.113.10"])
    ports: list[str] = Field(min_length=1, max_length=100, examples=[["25565", "27015-27020"]])
    alias: str | None = Field(default=None, max_length=255)


class AllocationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    node_id: str
    ip: str
    port: int
    alias: str | None
    server_id: str | None
    notes: str


@router.get("/nodes/{node_id}/allocations", summary="List a node's allocations")
def list_allocations(
    node_id: str,
    _: AdminReader,
    db: SessionDep,
    free: bool | None = Query(default=None, description="only unassigned (true) or assigned"),
) -> list[AllocationPublic]:
    _node(db, node_id)
    query = select(Allocation).where(Allocation.node_id == node_id)
    if free is True:
        query = query.where(Allocation.server_id.is_(None))
    elif free is False:
        query = query.where(Allocation.server_id.is_not(None))
    rows = db.scalars(query.order_by(Allocation.ip, Allocation.port)).all()
    return [AllocationPublic.model_validate(row) for row in rows]


@router.post(
    "/nodes/{node_id}/allocations",
    status_code=status.HTTP_201_CREATED,
    summary="Add ports (single or ranges) on an IP; existing ones are kept",
)
def create_allocations(
    node_id: str,
    body: AllocationCreate,
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
) -> list[AllocationPublic]:
    node = _node(db, node_id)
    ip = infra.check_ip(body.ip)
    ports = infra.parse_ports(body.ports)
    created = infra.add_allocations(db, node=node, ip=ip, ports=ports, alias=body.alias)
    context.activity.record(
        db,
        event="admin.allocation.create",
        actor=principal.actor,
        target_type="node",
        target_id=node.id,
        properties={"ip": ip, "ports": [a.port for a in created]},
    )
    return [AllocationPublic.model_validate(row) for row in created]


@router.delete(
    "/nodes/{node_id}/allocations/{allocation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an unassigned allocation",
)
def delete_allocation(
    node_id: str, allocation_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> None:
    allocation = db.get(Allocation, allocation_id)
    if allocation is None or allocation.node_id != node_id:
        raise not_found("allocation")
    if allocation.server_id is not None:
        raise conflict("the allocation is assigned to a server; remove it there first")
    context.activity.record(
        db,
        event="admin.allocation.delete",
        actor=principal.actor,
        target_type="allocation",
        target_id=allocation.id,
        properties={"before": {"ip": allocation.ip, "port": allocation.port}},
    )
    db.delete(allocation)


# --- Kubernetes targets ---------------------------------------------------------------------


class KubernetesTargetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["prod-games"])
    location_id: str | None = None
    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, examples=["games"])
    context: str | None = Field(default=None, max_length=253)
    public_address: str = Field(default="", max_length=255)


class KubernetesTargetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    location_id: str | None = None
    context: str | None = Field(default=None, max_length=253)
    public_address: str | None = Field(default=None, max_length=255)


class KubernetesTargetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    location_id: str | None
    namespace: str
    context: str | None
    public_address: str


def _target(db: SessionDep, target_id: str) -> KubernetesTarget:
    target = db.get(KubernetesTarget, target_id)
    if target is None:
        raise not_found("Kubernetes target")
    return target


@router.get("/kubernetes-targets", summary="List Kubernetes targets")
def list_targets(_: AdminReader, db: SessionDep) -> list[KubernetesTargetPublic]:
    rows = db.scalars(select(KubernetesTarget).order_by(KubernetesTarget.name)).all()
    return [KubernetesTargetPublic.model_validate(row) for row in rows]


@router.post(
    "/kubernetes-targets",
    status_code=status.HTTP_201_CREATED,
    summary="Add a Kubernetes namespace servers can be created in",
)
def create_target(
    body: KubernetesTargetCreate, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> KubernetesTargetPublic:
    if db.scalar(select(KubernetesTarget).where(KubernetesTarget.name == body.name)):
        raise conflict("a Kubernetes target with this name exists", field="body.name")
    _location(db, body.location_id, "body.location_id")
    target = KubernetesTarget(**body.model_dump())
    db.add(target)
    db.flush()
    context.activity.record(
        db,
        event="admin.kubernetes_target.create",
        actor=principal.actor,
        target_type="kubernetes_target",
        target_id=target.id,
        properties={"after": body.model_dump()},
    )
    return KubernetesTargetPublic.model_validate(target)


@router.patch("/kubernetes-targets/{target_id}", summary="Change a Kubernetes target")
def update_target(
    target_id: str,
    body: KubernetesTargetUpdate,
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
) -> KubernetesTargetPublic:
    target = _target(db, target_id)
    changes = body.model_dump(exclude_unset=True)
    if "location_id" in changes:
        _location(db, body.location_id, "body.location_id")
    before = KubernetesTargetPublic.model_validate(target).model_dump()
    for key, value in changes.items():
        if value is not None or key in {"location_id", "context"}:
            setattr(target, key, value)
    after = KubernetesTargetPublic.model_validate(target).model_dump()
    context.activity.record(
        db,
        event="admin.kubernetes_target.update",
        actor=principal.actor,
        target_type="kubernetes_target",
        target_id=target.id,
        properties={"before": before, "after": after},
    )
    return KubernetesTargetPublic.model_validate(target)


@router.delete(
    "/kubernetes-targets/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an unused Kubernetes target",
)
def delete_target(
    target_id: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> None:
    target = _target(db, target_id)
    infra.ensure_unused(db, "Kubernetes target", kubernetes_target_id=target.id)
    context.activity.record(
        db,
        event="admin.kubernetes_target.delete",
        actor=principal.actor,
        target_type="kubernetes_target",
        target_id=target.id,
        properties={"before": {"name": target.name, "namespace": target.namespace}},
    )
    db.delete(target)
