"""What a Docker node has and what its servers are given: reading the node's report
(`GET /api/v1/node`) and deciding the capacity the panel shows. Pure: no I/O.

Capacity per resource is the admin's figure when one is set (a non-zero `memory_mib`,
`disk_mib` or `cpu_millicores` on the node: an override, e.g. to keep room for the host's own
work or to overcommit on purpose), else what the node last reported, else 0 (unknown).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MIB = 1024 * 1024
CapacityField = Literal["memory_mib", "disk_mib", "cpu_millicores"]


class _NodeModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class ReportedCapacity(_NodeModel):
    """The host as the node agent measures it."""

    memory_bytes: int = Field(ge=0, alias="memoryBytes")
    disk_bytes: int = Field(ge=0, alias="diskBytes")
    disk_free_bytes: int = Field(ge=0, alias="diskFreeBytes")
    cpu_millicores: int = Field(ge=0, alias="cpuMillicores")


class ReportedAllocation(_NodeModel):
    """The sum of the resource limits of the GameServers the node holds."""

    memory_bytes: int = Field(ge=0, alias="memoryBytes")
    disk_bytes: int = Field(ge=0, alias="diskBytes")
    cpu_millicores: int = Field(ge=0, alias="cpuMillicores")
    servers: int = Field(ge=0)


class NodeReport(_NodeModel):
    """The node agent's answer to `GET /api/v1/node`."""

    agent_id: str = Field(alias="agentId")
    pid: int
    capacity: ReportedCapacity
    allocated: ReportedAllocation

    def stored(self) -> dict[str, Any]:
        """What the panel keeps of it (the node's figures; not who answered)."""
        return self.model_dump(mode="json", include={"capacity", "allocated"})


class StoredReport(_NodeModel):
    """`NodeReport.stored()` read back from the database."""

    capacity: ReportedCapacity
    allocated: ReportedAllocation


class Heard(_NodeModel):
    """The outcome of asking a node: its report, or why it does not count as an answer."""

    report: NodeReport | None = None
    error: str | None = None


def read_node_answer(status_code: int, body: bytes, *, agent_id: str) -> Heard:
    """Judge a node's answer to `GET /api/v1/node`: only a well-formed report from the agent
    the panel registered (`agent_id`) counts. Another agent at the same address would refuse
    the server tokens the panel signs for this node, so it is an error, not a heartbeat."""
    if status_code in (401, 403):
        return Heard(error=f"the node refused the panel's token (HTTP {status_code})")
    if status_code != 200:
        return Heard(error=f"the node answered HTTP {status_code}")
    try:
        document = json.loads(body)
    except ValueError:
        return Heard(error="unreadable node report: not JSON")
    if not isinstance(document, dict):
        return Heard(error="unreadable node report: not a JSON object")
    try:
        report = NodeReport.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return Heard(error=f"unreadable node report: {where}: {first['msg']}"[:500])
    if report.agent_id != agent_id:
        return Heard(
            error=f"the agent at this address is {report.agent_id!r}, not {agent_id!r}"[:500]
        )
    return Heard(report=report)


def load_stored(document: dict[str, Any] | None) -> StoredReport | None:
    """The stored report, or None when there is none or it no longer reads (a newer panel's
    shape is not guessed at: the next heartbeat writes a fresh one)."""
    if not document:
        return None
    try:
        return StoredReport.model_validate(document)
    except ValidationError:
        return None


class EffectiveCapacity(_NodeModel):
    """The capacity the panel counts with, and which figures an admin set."""

    memory_mib: int
    disk_mib: int
    cpu_millicores: int
    overridden: list[CapacityField]
    """Fields set by an admin on the node, which win over the node's report."""


def compute_capacity(
    *, memory_mib: int, disk_mib: int, cpu_millicores: int, reported: StoredReport | None
) -> EffectiveCapacity:
    """Admin figures (non-zero) win; otherwise the report (whole MiB, rounded down); else 0."""
    measured: dict[CapacityField, int] = {"memory_mib": 0, "disk_mib": 0, "cpu_millicores": 0}
    if reported is not None:
        measured = {
            "memory_mib": reported.capacity.memory_bytes // MIB,
            "disk_mib": reported.capacity.disk_bytes // MIB,
            "cpu_millicores": reported.capacity.cpu_millicores,
        }
    configured: dict[CapacityField, int] = {
        "memory_mib": memory_mib,
        "disk_mib": disk_mib,
        "cpu_millicores": cpu_millicores,
    }
    overridden: list[CapacityField] = [name for name, value in configured.items() if value > 0]
    chosen = {name: configured[name] if name in overridden else measured[name] for name in measured}
    return EffectiveCapacity(**chosen, overridden=overridden)


def mib_up(count: int) -> int:
    """Bytes in whole MiB, rounded up (what is promised to servers is never understated)."""
    return -(-count // MIB)
