"""Locations, Docker nodes and their allocations, Kubernetes targets, blueprints."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.eggs import EggError, import_egg
from stellarstack.api.eggs.errors import validation_reason
from stellarstack.panel.api.errors import conflict, invalid
from stellarstack.panel.db.models import (
    Allocation,
    BlueprintRecord,
    KubernetesTarget,
    Location,
    Node,
    Server,
)

MAX_PORTS_PER_REQUEST = 1000
MIN_NODE_TOKEN_LENGTH = 32
# A node whose health check answered within this long is online.
HEARTBEAT_FRESH = timedelta(seconds=90)


def check_node_url(url: str, *, field: str = "body.url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise invalid(field, "the node URL must be http(s)://host[:port]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise invalid(field, "the node URL must not carry credentials, a query or a fragment")
    return url.rstrip("/")


def check_node_token(token: str, *, field: str = "body.token") -> None:
    if len(token) < MIN_NODE_TOKEN_LENGTH:
        raise invalid(field, f"the node token must be at least {MIN_NODE_TOKEN_LENGTH} characters")


def node_online(node: Node, now: datetime) -> bool:
    return node.last_heartbeat_at is not None and now - node.last_heartbeat_at <= HEARTBEAT_FRESH


def parse_ports(entries: list[str], *, field: str = "body.ports") -> list[int]:
    """`["25565", "27015-27020"]` → the ports, each 1024..65535, at most 1000 in all."""
    ports: set[int] = set()
    for index, entry in enumerate(entries):
        where = f"{field}.{index}"
        start_text, _, end_text = entry.strip().partition("-")
        if not start_text.isdigit() or (end_text and not end_text.isdigit()):
            raise invalid(where, f"{entry!r} is neither a port nor a range like 27015-27020")
        start = int(start_text)
        end = int(end_text) if end_text else start
        if not 1024 <= start <= end <= 65535:
            raise invalid(where, f"{entry!r}: ports must be within 1024-65535, low to high")
        if len(ports) + (end - start + 1) > MAX_PORTS_PER_REQUEST:
            raise invalid(field, f"at most {MAX_PORTS_PER_REQUEST} ports per request")
        ports.update(range(start, end + 1))
    if not ports:
        raise invalid(field, "give at least one port")
    return sorted(ports)


def check_ip(ip: str, *, field: str = "body.ip") -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError as exc:
        raise invalid(field, f"{ip!r} is not an IP address") from exc


def add_allocations(
    db: Session, *, node: Node, ip: str, ports: list[int], alias: str | None
) -> list[Allocation]:
    """Add every port not yet allocated on that IP; existing ones are left as they are."""
    existing = set(
        db.scalars(
            select(Allocation.port).where(
                Allocation.node_id == node.id, Allocation.ip == ip, Allocation.port.in_(ports)
            )
        )
    )
    created = [
        Allocation(node_id=node.id, ip=ip, port=port, alias=alias)
        for port in ports
        if port not in existing
    ]
    db.add_all(created)
    db.flush()
    return created


def servers_using(db: Session, **where: Any) -> int:
    query = select(func.count()).select_from(Server)
    for column, value in where.items():
        query = query.where(getattr(Server, column) == value)
    return db.scalar(query) or 0


def ensure_unused(db: Session, what: str, **where: Any) -> None:
    count = servers_using(db, **where)
    if count:
        raise conflict(f"{count} server(s) use this {what}; move or delete them first")


def location_in_use(db: Session, location: Location) -> None:
    nodes = db.scalar(select(func.count()).where(Node.location_id == location.id)) or 0
    targets = (
        db.scalar(select(func.count()).where(KubernetesTarget.location_id == location.id)) or 0
    )
    if nodes or targets:
        raise conflict(f"{nodes} node(s) and {targets} Kubernetes target(s) are in this location")


# --- blueprints -----------------------------------------------------------------------------


def parse_blueprint(document: dict[str, Any], *, field: str = "body") -> Blueprint:
    """A Blueprint from its wire document; 422 naming the first failing field."""
    try:
        return Blueprint.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise invalid(f"{field}.{location}" if location else field, validation_reason(exc)) from exc


def blueprint_from_egg_text(text: str, *, name: str | None) -> Blueprint:
    try:
        return import_egg(text, name=name)
    except EggError as exc:
        raise invalid("body", f"not an importable egg: {exc}") from exc


def store_blueprint(db: Session, *, blueprint: Blueprint, replace: bool) -> BlueprintRecord:
    name = blueprint.metadata.name or ""
    record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == name))
    document = blueprint.model_copy(update={"status": None}).to_wire()
    if record is None:
        record = BlueprintRecord(name=name, document=document)
        db.add(record)
    elif not replace:
        raise conflict(f"a blueprint named {name!r} exists", field="body.metadata.name")
    else:
        record.document = document
    db.flush()
    return record


def load_blueprint(record: BlueprintRecord) -> Blueprint:
    return Blueprint.model_validate(record.document)
