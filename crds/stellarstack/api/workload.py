"""The runtime-neutral `Workload`: what a GameServer plus its Blueprint turns into.

Both runtimes start from this one object: the operator builds Pods, PVCs, Services and install
Jobs from it, nodeproxy builds Docker containers. Everything a workload may do is decided here,
so the two runtimes cannot drift apart on what a blueprint is allowed to ask for — and nothing
here can express privileges, host paths, host networking or extra capabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from stellarstack.api.blueprint import (
    Blueprint,
    ConfigFile,
    ConfigParser,
    Readiness,
    StopMethod,
    check_variable_values,
)
from stellarstack.api.constants import (
    LABEL_BLUEPRINT,
    LABEL_GAMESERVER,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGED_BY,
)
from stellarstack.api.gameserver import CrashPolicy, ExposureType, GamePort, GameServer
from stellarstack.api.quantity import byte_count, cpu_millicores
from stellarstack.api.startup import PLACEHOLDER, StartupError, render_startup


class WorkloadError(ValueError):
    """A GameServer that cannot become a workload; every problem names its field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WorkloadSettings:
    """Runtime-wide choices that no GameServer or Blueprint can change."""

    run_as_user: int = 1000
    run_as_group: int = 1000
    data_path: str = "/home/container"
    """Where the data volume is mounted in the game container (eggs expect this path)."""
    install_path: str = "/mnt/server"
    """Where the data volume is mounted in the install container (eggs expect this path)."""
    server_ip: str = "0.0.0.0"
    """Address games bind to inside their container."""
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        # Root inside the container is one kernel bug away from root on the node.
        if self.run_as_user == 0 or self.run_as_group == 0:
            raise ValueError("workloads never run as root (user or group 0)")


@dataclass(frozen=True)
class WorkloadPort:
    """One published port (TCPUDP ports appear twice, once per protocol)."""

    name: str
    protocol: Literal["TCP", "UDP"]
    container_port: int
    host_port: int
    node_port: int | None
    host_ip: str | None = None
    """Node address the port is published on; every address of the node when None."""


@dataclass(frozen=True)
class Limits:
    """Resource limits in runtime units."""

    cpu_millicores: int
    memory_bytes: int
    swap_bytes: int
    disk_bytes: int
    pids: int


@dataclass(frozen=True)
class DataVolume:
    """The server's persistent data."""

    size_bytes: int
    storage_class: str | None
    retain_on_delete: bool


@dataclass(frozen=True)
class ConfigEditPlan:
    """One key to set, its placeholders already replaced by values."""

    key: str
    value: str | None
    replacements: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConfigFilePlan:
    """A config file to edit before each start."""

    path: str
    parser: ConfigParser
    edits: tuple[ConfigEditPlan, ...]


@dataclass(frozen=True)
class InstallPlan:
    """The install step: `interpreter` runs `script` with the volume at `settings.install_path`."""

    image: str
    interpreter: str
    script: str
    env: Mapping[str, str]
    timeout_seconds: int


@dataclass(frozen=True)
class ProbePlan:
    """A network readiness check against a concrete container port."""

    type: Literal["tcp", "udp", "http"]
    container_port: int
    path: str
    payload: bytes


@dataclass(frozen=True)
class Workload:
    """Everything a runtime needs to run one game server."""

    name: str
    namespace: str | None
    image: str
    argv: tuple[str, ...]
    """The whole command line: it replaces both the image's entrypoint and its command, so no
    image script (such as an egg image's `eval $STARTUP`) ever sees the values. Runtimes add
    their own init process for signal forwarding and zombie reaping."""
    uses_shell: bool
    env: Mapping[str, str]
    working_dir: str
    ports: tuple[WorkloadPort, ...]
    exposure: ExposureType
    limits: Limits
    volume: DataVolume
    stop: StopMethod
    readiness: Readiness
    probe: ProbePlan | None
    crash_policy: CrashPolicy
    install: InstallPlan | None
    config_files: tuple[ConfigFilePlan, ...]
    file_denylist: tuple[str, ...]
    run_as_user: int
    run_as_group: int
    read_only_root_filesystem: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def build_workload(
    gameserver: GameServer, blueprint: Blueprint, settings: WorkloadSettings | None = None
) -> Workload:
    """Turn a GameServer and its Blueprint into a Workload, or raise `WorkloadError`."""
    settings = settings or WorkloadSettings()
    spec, bp = gameserver.spec, blueprint.spec
    name = gameserver.metadata.name or ""
    problems: list[str] = []
    if spec.blueprint != blueprint.metadata.name:
        problems.append(f"spec.blueprint: names {spec.blueprint}, not {blueprint.metadata.name}")
    problems.extend(check_variable_values(bp, spec.variables))

    image = bp.images[0].image
    if spec.image is not None:
        chosen = next((i for i in bp.images if spec.image in (i.name, i.image)), None)
        if chosen is None:
            problems.append(f"spec.image: {spec.image!r} is not one of the blueprint's images")
        else:
            image = chosen.image

    startup = bp.startup_commands[0]
    if spec.startup_command is not None:
        named = next((c for c in bp.startup_commands if c.name == spec.startup_command), None)
        if named is None:
            problems.append(
                f"spec.startupCommand: {spec.startup_command!r} is not one of the blueprint's"
            )
        else:
            startup = named

    ports = tuple(
        WorkloadPort(
            name=port.name,
            protocol=protocol,
            container_port=port.port,
            host_port=port.host_port or port.port,
            node_port=port.node_port,
            host_ip=port.host_ip,
        )
        for port in spec.ports
        for protocol in port.protocol.expand()
    )
    limits = Limits(
        cpu_millicores=cpu_millicores(spec.resources.cpu),
        memory_bytes=byte_count(spec.resources.memory),
        swap_bytes=byte_count(spec.resources.swap),
        disk_bytes=byte_count(spec.resources.disk),
        pids=spec.resources.pids,
    )
    env = _environment(gameserver, blueprint, settings, limits)
    uses_placeholder = {p for c in bp.startup_commands for p in PLACEHOLDER.findall(c.command)}
    if "SERVER_PORT" in uses_placeholder and not spec.ports:
        problems.append("spec.ports: the blueprint's startup uses SERVER_PORT; add a port")

    probe = None
    if bp.readiness.probe is not None and not bp.readiness.console_patterns:
        probe = _probe_plan(bp.readiness, spec.ports, problems)

    argv: tuple[str, ...] = ()
    uses_shell = False
    try:
        rendered = render_startup(startup.command, env)
        argv, uses_shell = rendered.argv, rendered.uses_shell
    except StartupError as exc:
        problems.append(f"spec.startupCommand: {exc}")

    if problems:
        raise WorkloadError(problems)

    install = None
    if bp.install is not None:
        install = InstallPlan(
            image=bp.install.image,
            interpreter=bp.install.entrypoint,
            script=bp.install.script,
            env=env,
            timeout_seconds=bp.install.timeout_seconds,
        )
    return Workload(
        name=name,
        namespace=gameserver.metadata.namespace,
        image=image,
        argv=argv,
        uses_shell=uses_shell,
        env=env,
        working_dir=settings.data_path,
        ports=ports,
        exposure=spec.exposure.type,
        limits=limits,
        volume=DataVolume(
            size_bytes=limits.disk_bytes,
            storage_class=spec.storage.storage_class_name,
            retain_on_delete=spec.storage.retain_on_delete,
        ),
        stop=bp.stop,
        readiness=bp.readiness,
        probe=probe,
        crash_policy=spec.crash_policy,
        install=install,
        config_files=tuple(_config_plan(file, env) for file in bp.config_files),
        file_denylist=tuple(bp.file_denylist),
        run_as_user=settings.run_as_user,
        run_as_group=settings.run_as_group,
        read_only_root_filesystem=bp.read_only_root_filesystem,
        labels=workload_labels(gameserver),
    )


def workload_labels(gameserver: GameServer) -> dict[str, str]:
    """Labels every child of a GameServer carries, in both runtimes."""
    return {
        LABEL_GAMESERVER: gameserver.metadata.name or "",
        LABEL_BLUEPRINT: gameserver.spec.blueprint,
        LABEL_NAME: "gameserver",
        LABEL_INSTANCE: gameserver.metadata.name or "",
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def _environment(
    gameserver: GameServer, blueprint: Blueprint, settings: WorkloadSettings, limits: Limits
) -> dict[str, str]:
    env = {var.env: var.default for var in blueprint.spec.variables}
    env.update(gameserver.spec.variables)
    # Built-ins last, so that no variable can pretend to be one.
    env["SERVER_IP"] = settings.server_ip
    env["SERVER_MEMORY"] = str(limits.memory_bytes // 2**20)
    env["SERVER_UUID"] = gameserver.metadata.uid or ""
    env["SERVER_NAME_ID"] = gameserver.metadata.name or ""
    env["TZ"] = settings.time_zone
    if gameserver.spec.ports:
        env["SERVER_PORT"] = str(gameserver.spec.ports[0].port)
    return env


def _probe_plan(
    readiness: Readiness, game_ports: list[GamePort], problems: list[str]
) -> ProbePlan | None:
    probe = readiness.probe
    assert probe is not None  # the caller checked
    if not game_ports:
        problems.append("spec.ports: the blueprint's readiness probe needs a port")
        return None
    target = game_ports[0]
    if probe.port is not None:
        found = next((p for p in game_ports if probe.port in (p.name, p.port, str(p.port))), None)
        if found is None:
            problems.append(
                f"spec.ports: no port {probe.port!r}, which the blueprint's readiness probes"
            )
            return None
        target = found
    return ProbePlan(
        type=probe.type.value,
        container_port=target.port,
        path=probe.path,
        payload=bytes.fromhex(probe.payload_hex or ""),
    )


def _config_plan(file: ConfigFile, env: Mapping[str, str]) -> ConfigFilePlan:
    def fill(text: str) -> str:
        # Config files are data, never executed, so values are substituted textually; a
        # placeholder without a value becomes empty, as in Pterodactyl.
        return PLACEHOLDER.sub(lambda m: env.get(m.group(1), ""), text)

    return ConfigFilePlan(
        path=file.path,
        parser=file.parser,
        edits=tuple(
            ConfigEditPlan(
                key=edit.key,
                value=None if edit.value is None else fill(edit.value),
                replacements=tuple((r.match, fill(r.value)) for r in edit.replacements),
            )
            for edit in file.edits
        ),
    )
