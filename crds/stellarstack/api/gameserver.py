"""GameServer: one running game (namespaced); what users create and the panel writes."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stellarstack.api.common import (
    DNS1035_LABEL,
    ApiModel,
    Condition,
    DnsLabel,
    DnsSubdomain,
    IpAddress,
    Resource,
)
from stellarstack.api.quantity import Quantity, parse_quantity
from stellarstack.api.states import GameServerState

# Children are named `<name>-<suffix>` (e.g. `-install`, `-data`, `-udp-4534`); Kubernetes caps
# Service and label values at 63 characters, which leaves 45 for the GameServer itself.
MAX_GAMESERVER_NAME = 45
MAX_PORTS = 32

# Bounds that keep a typo (`memory: 64Ti`, `cpu: 5000`) from reaching a scheduler.
CPU_BOUNDS = (Fraction(1, 100), Fraction(256))
MEMORY_BOUNDS = (64 * 2**20, 1024 * 2**30)
DISK_BOUNDS = (100 * 2**20, 64 * 2**40)


class Protocol(StrEnum):
    """Transport protocol of a port; `TCPUDP` opens both on the same number."""

    TCP = "TCP"
    UDP = "UDP"
    TCPUDP = "TCPUDP"

    def expand(self) -> tuple[Literal["TCP", "UDP"], ...]:
        """The concrete protocols this stands for."""
        if self is Protocol.TCPUDP:
            return ("TCP", "UDP")
        return (self.value,)  # type: ignore[return-value]


class GamePort(ApiModel):
    """A port the game listens on."""

    name: DnsLabel = Field(max_length=15)
    """Port name (up to 15 characters), e.g. `game`, `query`, `rcon`."""
    port: int = Field(ge=1, le=65535)
    """Port number the game listens on inside its container (and `SERVER_PORT` for the first)."""
    protocol: Protocol = Protocol.UDP
    """TCP, UDP or TCPUDP (both)."""
    host_port: int | None = Field(default=None, ge=1, le=65535)
    """Node port to publish on (HostPort exposure and Docker nodes); defaults to `port`."""
    # Spelled as in a Kubernetes container port, where it ends up on HostPort exposure.
    host_ip: IpAddress | None = Field(default=None, alias="hostIP")
    """Node address to publish on (HostPort exposure and Docker nodes), e.g. the Docker
    node allocation's IP; every address of the node when unset (on a Docker node: its
    configured publish address)."""
    node_port: int | None = Field(default=None, ge=1, le=65535)
    """Fixed NodePort for NodePort exposure; the cluster picks one when unset."""


class ExposureType(StrEnum):
    """How players reach the ports."""

    HOST_PORT = "HostPort"
    """The node's address and `hostPort` (Docker nodes always work this way)."""
    NODE_PORT = "NodePort"
    """A NodePort Service on every node."""
    LOAD_BALANCER = "LoadBalancer"
    """A LoadBalancer Service; the address is its ingress."""
    CLUSTER_IP = "ClusterIP"
    """Only inside the cluster (for proxies and tests)."""


class Exposure(ApiModel):
    """How the ports are exposed to players."""

    type: ExposureType = ExposureType.HOST_PORT
    """HostPort, NodePort, LoadBalancer or ClusterIP."""
    load_balancer_class: str | None = Field(default=None, max_length=253)
    """Load balancer implementation for `LoadBalancer`."""
    service_annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations put on the Services (e.g. for a cloud load balancer)."""


class Resources(ApiModel):
    """Resource limits; the workload gets exactly these as requests and limits."""

    cpu: Quantity = "1"
    """CPU limit in cores (`500m`, `2`)."""
    memory: Quantity = "1Gi"
    """Memory limit (`512Mi`, `4Gi`)."""
    swap: Quantity = "0"
    """Extra swap on Docker nodes (memory + swap is the total); ignored on Kubernetes."""
    disk: Quantity = "5Gi"
    """Size of the data volume and the disk quota (`10Gi`)."""
    pids: int = Field(default=512, ge=32, le=65536)
    """Most processes and threads the server may run (contains fork bombs)."""

    @field_validator("cpu")
    @classmethod
    def _cpu_bounded(cls, value: str) -> str:
        low, high = CPU_BOUNDS
        if not low <= parse_quantity(value) <= high:
            raise ValueError(f"{value} is outside 10m..{high} cores")
        return value

    @field_validator("memory")
    @classmethod
    def _memory_bounded(cls, value: str) -> str:
        return _bounded_bytes(value, MEMORY_BOUNDS, "64Mi..1Ti")

    @field_validator("disk")
    @classmethod
    def _disk_bounded(cls, value: str) -> str:
        return _bounded_bytes(value, DISK_BOUNDS, "100Mi..64Ti")

    @field_validator("swap")
    @classmethod
    def _swap_bounded(cls, value: str) -> str:
        return _bounded_bytes(value, (0, MEMORY_BOUNDS[1]), "0..1Ti")


def _bounded_bytes(value: str, bounds: tuple[int, int], spelled: str) -> str:
    low, high = bounds
    if not low <= parse_quantity(value) <= high:
        raise ValueError(f"{value} is outside {spelled}")
    return value


class PowerState(StrEnum):
    """Desired power state."""

    RUNNING = "Running"
    STOPPED = "Stopped"


class Power(ApiModel):
    """Desired power state and one-shot requests."""

    state: PowerState = PowerState.RUNNING
    """Running or Stopped."""
    restart_request: str | None = Field(default=None, max_length=64)
    """Set to a new value (an id or timestamp) to restart once; `status.lastRestartRequest`
    echoes the value acted on."""
    kill_request: str | None = Field(default=None, max_length=64)
    """Set to a new value to kill the process once, without the stop method."""


class PlacementType(StrEnum):
    """Which runtime runs the server."""

    KUBERNETES = "Kubernetes"
    DOCKER_NODE = "DockerNode"


class Placement(ApiModel):
    """Where the server runs."""

    type: PlacementType = PlacementType.KUBERNETES
    """Kubernetes (the operator) or DockerNode (the named node's agent)."""
    node: DnsSubdomain | None = None
    """For DockerNode: the node's name. For Kubernetes: an optional node name to pin to."""

    @model_validator(mode="after")
    def _node_for_docker(self) -> Placement:
        if self.type is PlacementType.DOCKER_NODE and not self.node:
            raise ValueError("node: required when type is DockerNode")
        return self


class Storage(ApiModel):
    """The data volume (its size is `resources.disk`)."""

    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass for the volume; the cluster default when unset."""
    retain_on_delete: bool = False
    """Keep the volume (and its data) when the GameServer is deleted."""


class CrashPolicy(ApiModel):
    """What happens when the game exits without being asked to."""

    restart: bool = True
    """Restart a crashed server automatically."""
    initial_delay_seconds: int = Field(default=10, ge=0, le=3600)
    """Wait before the first automatic restart; doubled after each further crash."""
    max_delay_seconds: int = Field(default=300, ge=1, le=86400)
    """The longest wait between automatic restarts."""
    reset_after_seconds: int = Field(default=600, ge=10, le=86400)
    """A run lasting this long resets the wait to its initial value."""


class GameServerSpec(ApiModel):
    """What a GameServer asks for."""

    blueprint: DnsSubdomain
    """Name of the Blueprint (cluster-scoped) this server runs."""
    image: str | None = Field(default=None, max_length=512)
    """Which of the blueprint's images to run, by label or reference; the first when unset."""
    startup_command: str | None = Field(default=None, max_length=191)
    """Which of the blueprint's startup commands to use, by name; the first when unset."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Variable values by environment name; unset ones take the blueprint's default."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory, disk and process limits."""
    ports: list[GamePort] = Field(default_factory=list, max_length=MAX_PORTS)
    """Ports the game listens on; the first is the primary port (`SERVER_PORT`)."""
    exposure: Exposure = Field(default_factory=Exposure)
    """How players reach the ports."""
    power: Power = Field(default_factory=Power)
    """Desired power state and one-shot restart/kill requests."""
    placement: Placement = Field(default_factory=Placement)
    """Kubernetes or a named Docker node."""
    storage: Storage = Field(default_factory=Storage)
    """Volume class and whether it outlives the GameServer."""
    crash_policy: CrashPolicy = Field(default_factory=CrashPolicy)
    """Automatic restart after crashes, with back-off."""
    suspended: bool = False
    """An admin suspended the server: it is stopped and refuses power requests."""
    reinstall_request: str | None = Field(default=None, max_length=64)
    """Set to a new value to run the install step again once."""

    @model_validator(mode="after")
    def _ports_unique(self) -> GameServerSpec:
        names: set[str] = set()
        taken: dict[tuple[str, int], str] = {}
        published: dict[tuple[str, int], list[tuple[str | None, str]]] = {}
        for index, port in enumerate(self.ports):
            if port.name in names:
                raise ValueError(f"ports[{index}].name: {port.name} is used twice")
            names.add(port.name)
            for protocol in port.protocol.expand():
                key = (protocol, port.port)
                if key in taken:
                    raise ValueError(
                        f"ports[{index}].port: {protocol} {port.port} is already used by "
                        f"port {taken[key]}"
                    )
                taken[key] = port.name
                public = (protocol, port.host_port or port.port)
                for address, other in published.get(public, []):
                    if _addresses_overlap(address, port.host_ip):
                        raise ValueError(
                            f"ports[{index}].hostPort: {protocol} {public[1]} is already "
                            f"published by port {other}"
                        )
                published.setdefault(public, []).append((port.host_ip, port.name))
        return self


def _addresses_overlap(one: str | None, other: str | None) -> bool:
    """Whether two host addresses would take the same socket: the same address, or either
    one being every address (unset, 0.0.0.0 or ::)."""
    if one is None or other is None or one == other:
        return True
    return ipaddress.ip_address(one).is_unspecified or ipaddress.ip_address(other).is_unspecified


class PortStatus(ApiModel):
    """Where players reach one port."""

    name: str
    """The port's name."""
    protocol: Literal["TCP", "UDP"]
    """TCP or UDP."""
    port: int
    """Port number to connect to at `status.address`."""
    container_port: int
    """Port number inside the container."""


class ExitInfo(ApiModel):
    """How the game last exited."""

    exit_code: int | None = None
    """Process exit code, when known."""
    reason: str = ""
    """E.g. `Completed`, `Error`, `OOMKilled`."""
    finished_at: datetime | None = None
    """When it exited."""


class InstallResult(ApiModel):
    """Outcome of the last install step."""

    result: Literal["Succeeded", "Failed"]
    """Succeeded or Failed."""
    finished_at: datetime | None = None
    """When it finished."""
    message: str = ""
    """Why it failed, or the last lines of its log."""
    request: str | None = None
    """The `spec.reinstallRequest` it answered, if any."""


class GameServerStatus(ApiModel):
    """What the runtime last observed."""

    state: GameServerState = GameServerState.PENDING
    """Where the server is in its lifecycle."""
    reason: str = ""
    """One CamelCase word explaining the state (e.g. `BlueprintNotFound`)."""
    message: str = ""
    """A sentence explaining the state."""
    address: str | None = None
    """Address players connect to."""
    ports: list[PortStatus] = Field(default_factory=list)
    """Where each port is reachable at `address`."""
    node: str | None = None
    """Kubernetes node or Docker node running the server."""
    conditions: list[Condition] = Field(default_factory=list)
    """Standard conditions: BlueprintReady, Installed, Ready."""
    observed_generation: int | None = None
    """The generation this status describes."""
    state_since: datetime | None = None
    """When `state` last changed."""
    started_at: datetime | None = None
    """When the current run started."""
    restart_count: int = 0
    """Crash restarts since the server was last started on request."""
    last_exit: ExitInfo | None = None
    """How the game last exited."""
    install: InstallResult | None = None
    """Outcome of the last install."""
    last_restart_request: str | None = None
    """The `spec.power.restartRequest` value last acted on."""
    last_kill_request: str | None = None
    """The `spec.power.killRequest` value last acted on."""
    last_reinstall_request: str | None = None
    """The `spec.reinstallRequest` value last acted on."""


class GameServer(Resource):
    """One game server: its blueprint, settings, resources, ports and desired power state."""

    KIND: ClassVar[str] = "GameServer"
    PLURAL: ClassVar[str] = "gameservers"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gs",)
    MAX_NAME_LENGTH: ClassVar[int] = MAX_GAMESERVER_NAME
    NAME_PATTERN: ClassVar[re.Pattern[str]] = DNS1035_LABEL

    kind: Literal["GameServer"] = "GameServer"
    spec: GameServerSpec
    """What the server asks for."""
    status: GameServerStatus | None = None
    """Set by the runtime."""
