"""Which ports a new server gets and where a Docker node publishes them. Pure: no I/O.

A create that names no ports gets its blueprint's default ports (primary first, so that
`SERVER_PORT` is the primary port's number); the blueprint variables that carry a port's number
get it. On a Docker node every port is published on an allocation: as few allocations as the
ports need, because one allocation (an address and a number) holds one TCP and one UDP port.
A create that would leave the server unreachable is refused with what to pass instead, unless
the caller asked for no ports with `"ports": []`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GamePort, Protocol


@dataclass(frozen=True)
class PortWish:
    """A port as a create request names it."""

    name: str
    port: int
    protocol: str
    host_port: int | None = None
    node_port: int | None = None


class PortChoiceError(ValueError):
    """A refused port choice: the request field it concerns and what to do about it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Address:
    """An allocation as the plan sees it: where on the node a port is published."""

    ip: str
    port: int


NO_PORTS_HINT = '"ports": [] for a server nobody can reach'


def server_ports(blueprint: Blueprint, asked: Sequence[PortWish] | None) -> list[PortWish]:
    """The ports asked for, or the blueprint's defaults when the request names none (`None`;
    an empty list is a deliberate choice of no ports). Refused when there are none to take."""
    if asked is not None:
        return list(asked)
    defaults = blueprint.spec.default_ports()
    if not defaults:
        example = '[{"name": "game", "port": 25565, "protocol": "TCP"}]'
        raise PortChoiceError(
            "body.ports",
            f"the blueprint {blueprint.metadata.name!r} declares no default ports, so the "
            f"server would be unreachable: pass ports (e.g. {example}), or {NO_PORTS_HINT}",
        )
    return [PortWish(name=p.name, port=p.port, protocol=p.protocol.value) for p in defaults]


def with_port_variables(
    blueprint: Blueprint, ports: Sequence[PortWish], variables: Mapping[str, str]
) -> dict[str, str]:
    """`variables` plus the values of the blueprint variables that carry a port's number, from
    the port of the same name. A value the caller gave that says otherwise is refused."""
    carried = blueprint.spec.port_variables(
        [GamePort(name=p.name, port=p.port, protocol=Protocol(p.protocol)) for p in ports]
    )
    for env, number in carried.items():
        given = variables.get(env)
        if given is not None and given != number:
            port = next(p.name for p in blueprint.spec.ports if p.variable == env)
            raise PortChoiceError(
                f"body.variables.{env}",
                f"carries the number of port {port!r}, which is {number}: leave {env} out, "
                f"or pass the port in ports with the number you want",
            )
    return {**variables, **carried}


def allocation_slots(ports: Sequence[PortWish]) -> list[int]:
    """For each port, which of the server's allocations publishes it (0 is the primary one):
    the first whose number is still free for the port's protocols, so a TCP and a UDP port
    share one allocation and two ports of one protocol never do."""
    taken: list[set[str]] = []
    slots: list[int] = []
    for port in ports:
        needs = set(Protocol(port.protocol).expand())
        slot = next((i for i, used in enumerate(taken) if not used & needs), len(taken))
        if slot == len(taken):
            taken.append(set())
        taken[slot] |= needs
        slots.append(slot)
    return slots


def preferred_numbers(ports: Sequence[PortWish], slots: Sequence[int]) -> list[int]:
    """For each allocation a server needs, the number worth asking for first: the container
    port of the first port it publishes, so that players use the number the game knows."""
    preferred: dict[int, int] = {}
    for port, slot in zip(ports, slots, strict=True):
        preferred.setdefault(slot, port.port)
    return [preferred[slot] for slot in range(len(preferred))]


def named_slots(ports: Sequence[PortWish], allocations: int) -> list[int]:
    """Slots when the caller named the allocations: the n-th port on the n-th allocation, the
    ports past the list on the primary one."""
    return [index if index < allocations else 0 for index in range(len(ports))]


def docker_ports(
    ports: Sequence[PortWish], slots: Sequence[int], addresses: Sequence[Address]
) -> list[dict[str, Any]]:
    """`spec.ports` for a Docker node: each port published on its allocation's address and
    number (`hostIP`, `hostPort`); Kubernetes-only settings do not reach the node."""
    return [
        {
            "name": port.name,
            "port": port.port,
            "protocol": port.protocol,
            "hostPort": addresses[slot].port,
            "hostIP": addresses[slot].ip,
        }
        for port, slot in zip(ports, slots, strict=True)
    ]


def kubernetes_ports(ports: Sequence[PortWish]) -> list[dict[str, Any]]:
    """`spec.ports` for a Kubernetes target: exposure settings as the caller gave them."""
    entries: list[dict[str, Any]] = []
    for port in ports:
        entry: dict[str, Any] = {"name": port.name, "port": port.port, "protocol": port.protocol}
        if port.host_port is not None:
            entry["hostPort"] = port.host_port
        if port.node_port is not None:
            entry["nodePort"] = port.node_port
        entries.append(entry)
    return entries


def no_free_allocation(free: int, needed: int, ports: Sequence[PortWish]) -> str:
    """Why a create on a Docker node without enough free allocations is refused, and what to
    pass instead."""
    names = ", ".join(port.name for port in ports)
    return (
        f"the node has {free} free allocation(s); {needed} needed to publish the ports "
        f"({names}): choose another node_id, ask an admin to add allocations, or pass "
        f"{NO_PORTS_HINT}"
    )
