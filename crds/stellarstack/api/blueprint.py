"""Blueprint: how to install, start, stop and watch one kind of game server (cluster-scoped).

Blueprints are what Pterodactyl and Pelican call eggs. Admins curate them; GameServers refer to
them by name. Nothing in a Blueprint can widen what a workload may do: there is no field for
privileges, capabilities, host paths, host networking or service accounts.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stellarstack.api.common import ApiModel, Condition, DnsLabel, EnvName, Resource
from stellarstack.api.gameserver import MAX_PORTS, GamePort, Protocol
from stellarstack.api.startup import BUILTIN_VARIABLES, PLACEHOLDER
from stellarstack.api.states import BlueprintPhase

MAX_VARIABLES = 64
MAX_VALUE_LENGTH = 4096
MAX_SCRIPT_LENGTH = 256 * 1024


class VariableType(StrEnum):
    """What kind of value a variable holds."""

    STRING = "string"
    INTEGER = "integer"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"


class VariableFormat(StrEnum):
    """A named shape a string value must have."""

    ALPHA = "alpha"
    ALPHA_NUM = "alphaNum"
    ALPHA_DASH = "alphaDash"
    URL = "url"
    IP = "ip"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    EMAIL = "email"
    UUID = "uuid"
    JSON = "json"


_FORMAT_CHECKS: dict[VariableFormat, re.Pattern[str]] = {
    VariableFormat.ALPHA: re.compile(r"^[^\W\d_]+$"),
    VariableFormat.ALPHA_NUM: re.compile(r"^[^\W_]+$"),
    VariableFormat.ALPHA_DASH: re.compile(r"^[\w-]+$"),
    VariableFormat.URL: re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#]+[^\s]*$"),
    VariableFormat.EMAIL: re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
}
_BOOLEAN_VALUES = {"true", "false", "1", "0"}
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class VariableRules(ApiModel):
    """Typed validation rules for a variable's value (the typed form of Laravel rule strings)."""

    required: bool = False
    """The value may not be empty."""
    nullable: bool = False
    """An empty value is accepted even when other rules would refuse it."""
    type: VariableType = VariableType.STRING
    """`string`, `integer`, `numeric` (any decimal number) or `boolean` (true/false/1/0)."""
    min: int | float | None = None
    """Smallest value for numbers; shortest length for strings."""
    max: int | float | None = None
    """Largest value for numbers; longest length for strings."""
    digits_min: int | None = Field(default=None, ge=1, le=64)
    """Integers only: the fewest digits the value may have."""
    digits_max: int | None = Field(default=None, ge=1, le=64)
    """Integers only: the most digits the value may have."""
    in_: list[str] | None = Field(default=None, alias="in", max_length=512)
    """The value must be one of these."""
    not_in: list[str] | None = Field(default=None, max_length=512)
    """The value must not be one of these."""
    regex: str | None = Field(default=None, max_length=1024)
    """A Python regular expression the whole value must match (searched, as Laravel does)."""
    not_regex: str | None = Field(default=None, max_length=1024)
    """A Python regular expression the value must not match."""
    format: VariableFormat | None = None
    """A named shape the value must have (url, ip, email, uuid, ...)."""

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _bounds_ordered(self) -> VariableRules:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if (
            self.digits_min is not None
            and self.digits_max is not None
            and self.digits_min > self.digits_max
        ):
            raise ValueError(f"digitsMin ({self.digits_min}) is greater than digitsMax")
        return self

    def problems(self, value: str) -> list[str]:
        """Every rule the value breaks, as sentences; empty when the value is acceptable."""
        if value == "":
            return ["is required"] if self.required and not self.nullable else []
        problems: list[str] = []
        number: float | None = None
        if self.type is VariableType.BOOLEAN:
            if value.lower() not in _BOOLEAN_VALUES:
                problems.append("must be a boolean (true, false, 1 or 0)")
        elif self.type is VariableType.INTEGER:
            if _INTEGER.match(value):
                number = int(value)
            else:
                problems.append("must be an integer")
        elif self.type is VariableType.NUMERIC:
            if _NUMERIC.match(value):
                number = float(value)
            else:
                problems.append("must be a number")
        size: float = number if number is not None else len(value)
        unit = "" if number is not None else " characters"
        if self.min is not None and size < self.min and (number is not None or not problems):
            problems.append(f"must be at least {_plain(self.min)}{unit}")
        if self.max is not None and size > self.max and (number is not None or not problems):
            problems.append(f"must be at most {_plain(self.max)}{unit}")
        digits = len(value.lstrip("+-"))
        if self.digits_min is not None and (
            not value.lstrip("+-").isdigit() or digits < self.digits_min
        ):
            problems.append(f"must have at least {self.digits_min} digits")
        if self.digits_max is not None and (
            not value.lstrip("+-").isdigit() or digits > self.digits_max
        ):
            problems.append(f"must have at most {self.digits_max} digits")
        if self.in_ is not None and value not in self.in_:
            problems.append("must be one of: " + ", ".join(self.in_))
        if self.not_in is not None and value in self.not_in:
            problems.append("must not be one of: " + ", ".join(self.not_in))
        if self.regex is not None and re.search(self.regex, value) is None:
            problems.append(f"must match the pattern {self.regex}")
        if self.not_regex is not None and re.search(self.not_regex, value) is not None:
            problems.append(f"must not match the pattern {self.not_regex}")
        if self.format is not None and not _has_format(value, self.format):
            problems.append(f"must be a valid {self.format.value}")
        return problems


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _has_format(value: str, shape: VariableFormat) -> bool:
    if shape in _FORMAT_CHECKS:
        return _FORMAT_CHECKS[shape].match(value) is not None
    try:
        if shape is VariableFormat.IP:
            ipaddress.ip_address(value)
        elif shape is VariableFormat.IPV4:
            ipaddress.IPv4Address(value)
        elif shape is VariableFormat.IPV6:
            ipaddress.IPv6Address(value)
        elif shape is VariableFormat.UUID:
            uuid.UUID(value)
        elif shape is VariableFormat.JSON:
            json.loads(value)
    except ValueError:
        return False
    return True


class Variable(ApiModel):
    """A setting the startup command, config files and install script can use."""

    env: EnvName
    """Environment variable name; `{{ENV}}` in templates refers to it."""
    name: str = Field(min_length=1, max_length=191)
    """Display name shown to users."""
    description: str = Field(default="", max_length=MAX_VALUE_LENGTH)
    """What the variable does, shown to users."""
    default: str = Field(default="", max_length=MAX_VALUE_LENGTH)
    """Value used when a GameServer does not set one."""
    user_viewable: bool = True
    """Server owners and subusers may see the value."""
    user_editable: bool = False
    """Server owners and subusers may change the value (admins always may)."""
    rules: VariableRules = Field(default_factory=VariableRules)
    """Rules every value must satisfy."""
    field_type: Literal["text", "textarea", "select", "checkbox", "number"] = "text"
    """How the panel renders the input."""
    sort: int | None = None
    """Position in forms; lower first."""

    @field_validator("env")
    @classmethod
    def _not_builtin(cls, env: str) -> str:
        if env in BUILTIN_VARIABLES:
            raise ValueError(f"{env} is set by StellarStack itself and cannot be a variable")
        return env


class StopType(StrEnum):
    """How a server is asked to stop."""

    COMMAND = "Command"
    SIGNAL = "Signal"


class StopSignal(StrEnum):
    """Signals a blueprint may stop a server with."""

    SIGINT = "SIGINT"
    SIGTERM = "SIGTERM"
    SIGQUIT = "SIGQUIT"
    SIGHUP = "SIGHUP"
    SIGUSR1 = "SIGUSR1"
    SIGUSR2 = "SIGUSR2"
    SIGKILL = "SIGKILL"


class StopMethod(ApiModel):
    """How to stop the server cleanly before the grace period runs out and it is killed."""

    type: StopType = StopType.SIGNAL
    """`Command`: write `command` to the console; `Signal`: send `signal` to the process."""
    command: str | None = Field(default=None, min_length=1, max_length=1024)
    """Console command for `type: Command`, e.g. `stop` or `quit`."""
    signal: StopSignal = StopSignal.SIGTERM
    """Signal for `type: Signal`."""
    grace_period_seconds: int = Field(default=30, ge=1, le=3600)
    """How long to wait for a clean exit before killing the process."""

    @model_validator(mode="after")
    def _command_present(self) -> StopMethod:
        if self.type is StopType.COMMAND and not self.command:
            raise ValueError("command: required when type is Command")
        if "\n" in (self.command or ""):
            raise ValueError("command: must be a single line")
        return self


class ProbeType(StrEnum):
    """Kinds of network readiness probe."""

    TCP = "tcp"
    UDP = "udp"
    HTTP = "http"


class Probe(ApiModel):
    """A network check that passes once the game answers."""

    type: ProbeType
    """`tcp`: a connection is accepted; `udp`: a datagram is answered; `http`: a 2xx/3xx reply."""
    port: str | int | None = None
    """Port name or number of the GameServer to probe; the primary port when unset."""
    path: str = Field(default="/", max_length=1024)
    """HTTP path for `type: http`."""
    payload_hex: str | None = Field(default=None, max_length=2048, pattern=r"^([0-9a-fA-F]{2})*$")
    """Datagram to send for `type: udp`, in hex; an empty datagram when unset."""


class Readiness(ApiModel):
    """When a started server counts as Running."""

    console_patterns: list[str] = Field(default_factory=list, max_length=16)
    """Running once a console line contains any of these texts (Pterodactyl's `done`)."""
    console_regex: bool = False
    """Treat `consolePatterns` as Python regular expressions instead of plain text."""
    probe: Probe | None = None
    """Running once this network check passes (used when no console pattern is given)."""
    timeout_seconds: int = Field(default=900, ge=5, le=86400)
    """Starting longer than this is reported (the server keeps starting)."""

    @model_validator(mode="after")
    def _patterns_compile(self) -> Readiness:
        if self.console_regex:
            for index, pattern in enumerate(self.console_patterns):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"consolePatterns[{index}]: invalid regex: {exc}") from exc
        return self


class ConfigParser(StrEnum):
    """File formats a config-file edit understands."""

    PROPERTIES = "properties"
    INI = "ini"
    JSON = "json"
    YAML = "yaml"
    XML = "xml"
    FILE = "file"


class ValueReplacement(ApiModel):
    """Replace the current value only when it matches `match` (Pterodactyl's regex finds)."""

    match: str = Field(max_length=1024)
    """Existing value (or `regex:` followed by a pattern) that triggers the replacement."""
    value: str = Field(max_length=MAX_VALUE_LENGTH)
    """New value; may contain `{{VARIABLE}}` placeholders."""


class ConfigEdit(ApiModel):
    """Set one key of a config file before every start."""

    key: str = Field(max_length=512)
    """Key to set: a property name, `section.key` for ini, a dotted path for json/yaml/xml, or
    the start of a line for `file` (where an empty key matches every line)."""
    value: str | None = Field(default=None, max_length=MAX_VALUE_LENGTH)
    """New value; may contain `{{VARIABLE}}` placeholders."""
    replacements: list[ValueReplacement] = Field(default_factory=list, max_length=32)
    """Conditional values, tried in order, when `value` is unset."""

    @model_validator(mode="after")
    def _one_value(self) -> ConfigEdit:
        if self.value is None and not self.replacements:
            raise ValueError("value: either value or replacements is required")
        return self


class ConfigFile(ApiModel):
    """A file inside the server directory whose keys are set before every start."""

    path: str = Field(min_length=1, max_length=1024)
    """Path relative to the server directory; it can never leave it."""
    parser: ConfigParser
    """How the file is read and written."""
    edits: list[ConfigEdit] = Field(min_length=1, max_length=256)
    """The keys to set."""

    @field_validator("path")
    @classmethod
    def _inside_server_directory(cls, path: str) -> str:
        return check_relative_path(path)

    @model_validator(mode="after")
    def _keys_present(self) -> ConfigFile:
        for index, edit in enumerate(self.edits):
            if not edit.key and self.parser is not ConfigParser.FILE:
                raise ValueError(
                    f"edits[{index}].key: empty; only the file parser accepts an empty key "
                    "(it matches every line)"
                )
        return self


def check_relative_path(path: str) -> str:
    """Refuse a path that could leave the server directory; return it normalised."""
    if "\x00" in path:
        raise ValueError("must not contain NUL")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise ValueError(f"{path!r} must be relative to the server directory")
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if ".." in parts:
        raise ValueError(f"{path!r} must not contain '..'")
    normalised = "/".join(part for part in parts if part != ".")
    if not normalised:
        raise ValueError(f"{path!r} names no file")
    return normalised


class InstallStep(ApiModel):
    """A script run once in its own container, before the first start and on reinstall.

    The data volume is mounted at `/mnt/server`; the script runs without privileges, with the
    server's resource limits, as a non-root user.
    """

    image: str = Field(min_length=1, max_length=512)
    """Container image that runs the script."""
    entrypoint: str = Field(default="bash", min_length=1, max_length=256)
    """Interpreter that runs the script, e.g. `bash` or `ash`."""
    script: str = Field(max_length=MAX_SCRIPT_LENGTH)
    """The script itself."""
    timeout_seconds: int = Field(default=3600, ge=10, le=86400)
    """Installs taking longer than this fail."""


class BlueprintImage(ApiModel):
    """One container image a server may run, with the label users choose it by."""

    name: str = Field(min_length=1, max_length=191)
    """Label shown to users, e.g. `Java 21`."""
    image: str = Field(min_length=1, max_length=512)
    """Image reference, e.g. `ghcr.io/example/java:21`."""


class StartupCommand(ApiModel):
    """A startup command template."""

    name: str = Field(min_length=1, max_length=191)
    """Label shown to users; the first command is the default."""
    command: str = Field(min_length=1, max_length=MAX_VALUE_LENGTH)
    """Template with `{{VARIABLE}}` placeholders; values are never interpreted by a shell."""


class EggSource(ApiModel):
    """Where an imported blueprint came from, kept so that exports round-trip."""

    format: Literal["PTDL_v1", "PTDL_v2", "PLCN_v1", "PLCN_v2", "PLCN_v3"]
    """The egg format version it was imported from."""
    uuid: str | None = None
    """The egg's UUID (Pelican)."""
    update_url: str | None = None
    """Where the egg publishes updates."""
    exported_at: datetime | None = None
    """When the egg was exported."""
    image: str | None = Field(default=None, max_length=1024 * 1024)
    """The egg's icon (Pelican), usually a data URL."""


PRIMARY_PORT_VARIABLE = "SERVER_PORT"
"""The built-in variable that always holds the primary port's number (the egg convention)."""


class BlueprintPort(ApiModel):
    """A port the game listens on, given to every new server that does not name its own."""

    name: DnsLabel = Field(max_length=15)
    """Port name (up to 15 characters), e.g. `game`, `query`; the server's port gets it too."""
    port: int = Field(ge=1, le=65535)
    """Port number the game listens on inside its container."""
    protocol: Protocol
    """TCP, UDP or TCPUDP (both on the same number)."""
    primary: bool = False
    """The server's main port: listed first, so `SERVER_PORT` holds it. At most one port is
    primary; when none is marked, the first is."""
    variable: EnvName | None = None
    """The environment variable the game learns this port's number from: `SERVER_PORT` (the
    primary port only; StellarStack sets it), or one of the blueprint's variables, which a
    server created with these ports gets set to `port`. Unset when the number is fixed in the
    game or its config."""


class BlueprintSpec(ApiModel):
    """What a Blueprint defines."""

    display_name: str = Field(min_length=1, max_length=191)
    """Human name, e.g. `Paper`."""
    description: str = Field(default="", max_length=MAX_VALUE_LENGTH * 4)
    """What this blueprint runs."""
    author: str = Field(default="", max_length=191)
    """Who maintains it (usually an email address)."""
    tags: list[str] = Field(default_factory=list, max_length=32)
    """Free-form tags for search."""
    features: list[str] = Field(default_factory=list, max_length=32)
    """Panel features this game uses (e.g. `eula`, `java_version`)."""
    images: list[BlueprintImage] = Field(min_length=1, max_length=32)
    """Images a server may run; the first is the default."""
    startup_commands: list[StartupCommand] = Field(min_length=1, max_length=16)
    """Startup command templates; the first is the default."""
    variables: list[Variable] = Field(default_factory=list, max_length=MAX_VARIABLES)
    """Settings users and admins can give values."""
    ports: list[BlueprintPort] = Field(default_factory=list, max_length=MAX_PORTS)
    """Ports a new server gets when it names none (the panel publishes them on free
    allocations of a Docker node); GameServers always list their own ports."""
    stop: StopMethod = Field(default_factory=StopMethod)
    """How the server is stopped cleanly."""
    readiness: Readiness = Field(default_factory=Readiness)
    """When a started server counts as Running."""
    config_files: list[ConfigFile] = Field(default_factory=list, max_length=64)
    """Config file keys set before every start."""
    install: InstallStep | None = None
    """Script that installs the server files into the volume."""
    file_denylist: list[str] = Field(default_factory=list, max_length=256)
    """Glob patterns of files users may not read or change through the file manager or SFTP."""
    read_only_root_filesystem: bool = False
    """Run with a read-only root filesystem (only the data volume and a scratch /tmp writable)."""
    source: EggSource | None = None
    """Egg this blueprint was imported from."""

    @model_validator(mode="after")
    def _consistent(self) -> BlueprintSpec:
        problems = blueprint_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def variable(self, env: str) -> Variable | None:
        """The variable named `env`, if the blueprint has one."""
        return next((var for var in self.variables if var.env == env), None)

    def primary_port(self) -> BlueprintPort | None:
        """The port marked primary, else the first; None when the blueprint declares none."""
        return next((port for port in self.ports if port.primary), None) or next(
            iter(self.ports), None
        )

    def default_ports(self) -> list[BlueprintPort]:
        """The declared ports in the order a GameServer lists them: the primary one first."""
        primary = self.primary_port()
        return [port for port in self.ports if port is primary] + [
            port for port in self.ports if port is not primary
        ]

    def default_game_ports(self) -> list[GamePort]:
        """The declared ports as a GameServer's `spec.ports`, primary first (so that
        `SERVER_PORT` is the primary port's number)."""
        return [
            GamePort(name=port.name, port=port.port, protocol=port.protocol)
            for port in self.default_ports()
        ]

    def port_variables(self, ports: list[GamePort]) -> dict[str, str]:
        """Values for the blueprint variables that carry port numbers, from the GameServer
        ports of the same name (`SERVER_PORT` needs none: the runtime sets it)."""
        by_name = {port.name: port for port in ports}
        return {
            declared.variable: str(by_name[declared.name].port)
            for declared in self.ports
            if declared.variable not in (None, PRIMARY_PORT_VARIABLE) and declared.name in by_name
        }


def blueprint_problems(spec: BlueprintSpec) -> list[str]:
    """Cross-field problems: duplicate names, placeholders that name nothing, bad defaults."""
    problems: list[str] = []
    known = {var.env for var in spec.variables} | set(BUILTIN_VARIABLES)
    seen: set[str] = set()
    for index, var in enumerate(spec.variables):
        if var.env in seen:
            problems.append(f"variables[{index}].env: {var.env} is defined twice")
        seen.add(var.env)
    for field, names in (
        ("images", [image.name for image in spec.images]),
        ("startupCommands", [command.name for command in spec.startup_commands]),
    ):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"{field}: names must be unique ({', '.join(duplicates)})")
    for index, command in enumerate(spec.startup_commands):
        for placeholder in PLACEHOLDER.findall(command.command):
            if placeholder not in known:
                problems.append(
                    f"startupCommands[{index}].command: placeholder {{{{{placeholder}}}}} "
                    "names no variable"
                )
    for file_index, config in enumerate(spec.config_files):
        for edit_index, edit in enumerate(config.edits):
            texts = [edit.value or ""] + [r.value for r in edit.replacements]
            for placeholder in {p for text in texts for p in PLACEHOLDER.findall(text)}:
                if placeholder not in known:
                    problems.append(
                        f"configFiles[{file_index}].edits[{edit_index}]: placeholder "
                        f"{{{{{placeholder}}}}} names no variable"
                    )
    problems.extend(port_problems(spec))
    return problems


def port_problems(spec: BlueprintSpec) -> list[str]:
    """Problems of the declared ports, each naming its field: names and numbers used twice,
    more than one primary port, and variables that cannot carry the port."""
    problems: list[str] = []
    names: dict[str, int] = {}
    numbers: dict[tuple[str, int], str] = {}
    carried: dict[str, int] = {}
    primaries = [index for index, port in enumerate(spec.ports) if port.primary]
    for index in primaries[1:]:
        problems.append(
            f"ports[{index}].primary: only one port can be primary (ports[{primaries[0]}] is)"
        )
    primary = spec.primary_port()
    for index, port in enumerate(spec.ports):
        if port.name in names:
            problems.append(
                f"ports[{index}].name: {port.name} is used twice (also ports[{names[port.name]}])"
            )
        names.setdefault(port.name, index)
        for protocol in port.protocol.expand():
            used_by = numbers.setdefault((protocol, port.port), port.name)
            if used_by != port.name:
                problems.append(
                    f"ports[{index}].port: {protocol} {port.port} is already used by port {used_by}"
                )
        if port.variable is None:
            continue
        where = f"ports[{index}].variable"
        if port.variable in carried:
            problems.append(
                f"{where}: {port.variable} already carries ports[{carried[port.variable]}]"
            )
        carried.setdefault(port.variable, index)
        if port.variable == PRIMARY_PORT_VARIABLE:
            if port is not primary:
                problems.append(
                    f"{where}: {PRIMARY_PORT_VARIABLE} always holds the primary port's number; "
                    "mark this port primary or name one of the blueprint's variables"
                )
            continue
        if port.variable in BUILTIN_VARIABLES:
            problems.append(f"{where}: {port.variable} is set by StellarStack itself")
            continue
        variable = spec.variable(port.variable)
        if variable is None:
            problems.append(f"{where}: the blueprint has no variable {port.variable}")
            continue
        for problem in variable.rules.problems(str(port.port)):
            problems.append(f"{where}: {port.variable} refuses {port.port}: it {problem}")
    probe = spec.readiness.probe
    named = probe is not None and isinstance(probe.port, str) and not probe.port.isdigit()
    if named and spec.ports and probe is not None and probe.port not in names:
        problems.append(
            f"readiness.probe.port: names no port of the blueprint's ports ({', '.join(names)})"
        )
    return problems


class BlueprintStatus(ApiModel):
    """What the operator last observed about a Blueprint."""

    phase: BlueprintPhase = BlueprintPhase.PENDING
    """Pending, Ready or Invalid."""
    problems: list[str] = Field(default_factory=list)
    """Every problem found, each naming the field."""
    conditions: list[Condition] = Field(default_factory=list)
    """Standard conditions (`Ready`)."""
    observed_generation: int | None = None
    """The generation the status describes."""


class Blueprint(Resource):
    """How to install, run, stop and watch one kind of game server (cluster-scoped)."""

    KIND: ClassVar[str] = "Blueprint"
    PLURAL: ClassVar[str] = "blueprints"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("bp",)
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["Blueprint"] = "Blueprint"
    spec: BlueprintSpec
    """What the blueprint defines."""
    status: BlueprintStatus | None = None
    """Set by the operator."""


def check_variable_values(
    spec: BlueprintSpec, values: Mapping[str, str], *, as_user: bool = False
) -> list[str]:
    """Problems with a GameServer's variable values under a blueprint, each naming the field.

    `as_user` applies the rules for server owners: only user-editable variables may be set.
    Values that are not set fall back to the blueprint default, which must satisfy the rules too.
    """
    problems: list[str] = []
    for env, value in values.items():
        var = spec.variable(env)
        if var is None:
            problems.append(f"spec.variables.{env}: the blueprint has no variable {env}")
        elif as_user and not var.user_editable:
            problems.append(f"spec.variables.{env}: not editable by users")
        elif len(value) > MAX_VALUE_LENGTH:
            problems.append(f"spec.variables.{env}: longer than {MAX_VALUE_LENGTH} characters")
    for var in spec.variables:
        value = values.get(var.env, var.default)
        problems.extend(f"spec.variables.{var.env}: {p}" for p in var.rules.problems(value))
    return problems
