"""Status sync: read every backend's GameServers, store each known server's state and status,
mark servers whose GameServer is gone, and adopt GameServers the panel does not know (made with
kubectl or GitOps, or on a node directly) as unassigned servers that admins can give an owner.

`plan_sync` decides (pure); `sync_all` reads the backends and applies the plans; `status_sync`
runs it periodically while the panel serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stellarstack.panel.backends.base import BackendError, Kind
from stellarstack.panel.backends.docker_node import DEFAULT_NAMESPACE
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import KubernetesTarget, Node, Server, TargetKind
from stellarstack.panel.services.activity import Actor

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 15.0
MISSING = "Missing"
ANNOTATION_DELETED = "stellarstack.io/panel-deleted"
"""Set by the panel on a GameServer it is deleting: a node lists such a server until it has
stopped and cleaned up, and it must not come back as an adopted server meanwhile."""


@dataclass(frozen=True)
class Adoption:
    """A GameServer found at a backend with no server row."""

    name: str
    namespace: str
    blueprint: str
    suspended: bool
    status: dict[str, Any]


@dataclass
class SyncPlan:
    """What one backend's listing means for the servers the panel has there."""

    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Server id → the status read (including the suspended flag of the spec)."""
    missing: list[str] = field(default_factory=list)
    """Server ids whose GameServer is gone."""
    adopt: list[Adoption] = field(default_factory=list)


def plan_sync(known: Mapping[tuple[str, str], str], found: Sequence[Mapping[str, Any]]) -> SyncPlan:
    """`known` maps (namespace, name) → server id for the servers at one backend; `found` is
    the backend's GameServer documents. GameServers being deleted (by the API server's
    deletionTimestamp or the panel's annotation) are not adopted: they are on their way out."""
    plan = SyncPlan()
    seen: set[tuple[str, str]] = set()
    for document in found:
        metadata = document.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if not key[1]:
            continue
        seen.add(key)
        spec = document.get("spec") or {}
        status = dict(document.get("status") or {})
        if key in known:
            plan.statuses[known[key]] = status
        elif not metadata.get("deletionTimestamp") and not (metadata.get("annotations") or {}).get(
            ANNOTATION_DELETED
        ):
            plan.adopt.append(
                Adoption(
                    name=key[1],
                    namespace=key[0],
                    blueprint=str(spec.get("blueprint") or ""),
                    suspended=bool(spec.get("suspended")),
                    status=status,
                )
            )
    plan.missing = sorted(server_id for key, server_id in known.items() if key not in seen)
    return plan


@dataclass
class SyncOutcome:
    adopted: int = 0
    updated: int = 0
    missing: int = 0
    unreachable: list[str] = field(default_factory=list)
    """Nodes and targets (by name) that could not be read this time."""


@dataclass(frozen=True)
class _Where:
    label: str
    node: Node | None
    target: KubernetesTarget | None

    @property
    def namespace(self) -> str:
        return DEFAULT_NAMESPACE if self.target is None else self.target.namespace


def _places(context: PanelContext) -> list[_Where]:
    with transaction(context.sessions) as db:
        nodes = [_Where(f"node {n.name}", n, None) for n in db.scalars(select(Node)).all()]
        targets = [
            _Where(f"Kubernetes target {t.name}", None, t)
            for t in db.scalars(select(KubernetesTarget)).all()
        ]
    return nodes + targets


def _apply(context: PanelContext, where: _Where, found: list[dict[str, Any]]) -> SyncOutcome:
    outcome = SyncOutcome()
    now = context.clock()
    with transaction(context.sessions) as db:
        query = select(Server)
        if where.node is not None:
            query = query.where(Server.node_id == where.node.id)
        else:
            assert where.target is not None
            query = query.where(Server.kubernetes_target_id == where.target.id)
        rows = {s.id: s for s in db.scalars(query).all()}
        known = {(s.namespace, s.resource_name): s.id for s in rows.values()}
        plan = plan_sync(known, found)
        for server_id, status in plan.statuses.items():
            server = rows[server_id]
            server.status, server.status_read_at = status, now
            server.state = str(status.get("state") or "Pending")
            outcome.updated += 1
        for server_id in plan.missing:
            rows[server_id].state, rows[server_id].status_read_at = MISSING, now
            outcome.missing += 1
        for adoption in plan.adopt:
            server = Server(
                name=adoption.name,
                owner_id=None,
                target_kind=TargetKind.DOCKER if where.node else TargetKind.KUBERNETES,
                node_id=where.node.id if where.node else None,
                kubernetes_target_id=where.target.id if where.target else None,
                namespace=adoption.namespace or where.namespace,
                resource_name=adoption.name,
                blueprint=adoption.blueprint,
                external=True,
                suspended=adoption.suspended,
                state=str(adoption.status.get("state") or "Pending"),
                status=adoption.status,
                status_read_at=now,
            )
            try:
                # A create the panel is committing right now holds this name: skip it.
                with db.begin_nested():
                    db.add(server)
                    db.flush()
            except IntegrityError:
                continue
            context.activity.record(
                db,
                event="server.adopt",
                actor=Actor(),
                target_type="server",
                target_id=server.id,
                server_id=server.id,
                properties={
                    "after": {
                        "resource": f"{server.namespace}/{server.resource_name}",
                        "where": where.label,
                    }
                },
            )
            outcome.adopted += 1
    return outcome


async def sync_all(context: PanelContext) -> SyncOutcome:
    """One pass over every node and target. A backend that cannot be read is reported and
    its servers keep their last status."""
    total = SyncOutcome()
    for where in await asyncio.to_thread(_places, context):
        try:
            if where.node is not None:
                backend = context.backends.for_node(where.node)
            else:
                assert where.target is not None
                backend = context.backends.for_target(where.target)
            found = await backend.list_resources(Kind.GAMESERVER, where.namespace)
        except BackendError as exc:
            log.warning("status sync: %s: %s", where.label, exc)
            total.unreachable.append(where.label)
            continue
        outcome = await asyncio.to_thread(_apply, context, where, found)
        total.adopted += outcome.adopted
        total.updated += outcome.updated
        total.missing += outcome.missing
    return total


@contextlib.asynccontextmanager
async def status_sync(
    context: PanelContext, *, interval: float = INTERVAL_SECONDS
) -> AsyncIterator[None]:
    """Run `sync_all` every `interval` seconds while the panel serves."""

    async def loop() -> None:
        while True:
            try:
                await sync_all(context)
            except Exception:  # a failed pass must not end the loop; the next may work
                log.exception("server status sync failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="server-status-sync")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
