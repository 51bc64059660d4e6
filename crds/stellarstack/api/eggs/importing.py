"""Egg (already parsed into plain data) to Blueprint."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from stellarstack.api.blueprint import (
    Blueprint,
    BlueprintImage,
    BlueprintSpec,
    ConfigEdit,
    ConfigFile,
    ConfigParser,
    EggSource,
    InstallStep,
    Readiness,
    StartupCommand,
    StopMethod,
    StopSignal,
    StopType,
    ValueReplacement,
    Variable,
    check_relative_path,
)
from stellarstack.api.common import ObjectMeta
from stellarstack.api.eggs.document import load_document, load_json
from stellarstack.api.eggs.errors import EGG_FORMATS, EggError, validation_reason
from stellarstack.api.eggs.placeholders import import_config_value, import_startup
from stellarstack.api.eggs.ports import egg_ports
from stellarstack.api.eggs.rules import parse_rules
from stellarstack.api.startup import BUILTIN_VARIABLES

DEFAULT_COMMAND_NAME: Final = "Default"
_PARSERS: Final = {parser.value: parser for parser in ConfigParser} | {"yml": ConfigParser.YAML}
_DONE_REGEX_PREFIX: Final = "regex:"


def import_egg(document: str | bytes, *, name: str | None = None) -> Blueprint:
    """Read a Pterodactyl/Pelican egg (JSON or YAML text) into a Blueprint.

    `name` becomes metadata.name; by default it is derived from the egg's name. Every problem is
    an `EggError` whose message names the egg field.
    """
    return blueprint_from_egg(load_document(document), name=name)


def blueprint_from_egg(egg: Any, *, name: str | None = None) -> Blueprint:
    """The Blueprint for an egg that is already plain data (as `json.loads` returns it)."""
    if not isinstance(egg, Mapping):
        raise EggError(f"document: the top level must be a mapping (an egg), not {_kind(egg)}")
    meta = _mapping(egg.get("meta"), "meta", required=True)
    version = meta.get("version")
    if version not in EGG_FORMATS:
        raise EggError(
            f"meta.version: unknown format {json.dumps(version)} (known: {', '.join(EGG_FORMATS)})"
        )
    display_name = _text(egg.get("name"), "name").strip()
    if not display_name:
        raise EggError("name: required")
    variables = _variables(egg.get("variables"))
    known = {variable.env for variable in variables}
    config = _mapping(egg.get("config"), "config")
    source = _source(egg, meta, version)
    fields: dict[str, Any] = {
        "display_name": display_name,
        "description": _text(egg.get("description"), "description"),
        "author": _text(egg.get("author"), "author"),
        "tags": _string_list(egg.get("tags"), "tags"),
        "features": _string_list(egg.get("features"), "features"),
        "images": _images(egg, version),
        "startup_commands": _startup_commands(egg, version, known),
        "variables": variables,
        "stop": _stop(config.get("stop")),
        "readiness": _readiness(_json_field(config.get("startup"), "config.startup")),
        "config_files": _config_files(_json_field(config.get("files"), "config.files"), known),
        "install": _install(egg.get("scripts")),
        "file_denylist": _string_list(egg.get("file_denylist"), "file_denylist"),
        "source": source,
    }
    # Eggs have no ports; the one they hand the game through SERVER_PORT becomes the default.
    fields["ports"] = egg_ports(
        fields["startup_commands"], fields["config_files"], fields["install"]
    )
    try:
        spec = BlueprintSpec(**fields)
    except ValidationError as exc:
        raise EggError(_spec_reason(exc)) from None
    metadata_name = name if name is not None else blueprint_name(display_name)
    try:
        return Blueprint(metadata=ObjectMeta(name=metadata_name), spec=spec)
    except ValidationError as exc:
        # The message already names metadata.name (the `name` argument, or the slug).
        raise EggError(validation_reason(exc)) from None


# Blueprint fields by the egg field they come from, so errors name what the egg author wrote.
_EGG_FIELDS: Final = {
    "display_name": "name",
    "description": "description",
    "author": "author",
    "tags": "tags",
    "features": "features",
    "images": "docker_images",
    "startup_commands": "startup",
    "variables": "variables",
    "stop": "config.stop",
    "readiness": "config.startup",
    "config_files": "config.files",
    "install": "scripts.installation",
    "file_denylist": "file_denylist",
    "source": "meta",
    "ports": "startup",
}


_CROSS_FIELD_PREFIXES: Final = (
    ("images:", "docker_images:"),
    ("startupCommands:", "startup_commands:"),
)


def _spec_reason(exc: ValidationError) -> str:
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if location and location[0] in _EGG_FIELDS:
            rest = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in location[1:])
            parts.append(f"{_EGG_FIELDS[location[0]]}{rest}: {message}")
        else:
            # Cross-field problems name the Blueprint field in their own messages; the parts
            # the importer can meet are renamed to the egg's fields.
            for ours, theirs in _CROSS_FIELD_PREFIXES:
                if message.startswith(ours):
                    message = theirs + message.removeprefix(ours)
                    break
            parts.append(message)
    return "; ".join(parts)


def blueprint_name(egg_name: str) -> str:
    """A DNS-1123 label (at most 63 characters) derived from an egg's display name."""
    ascii_name = unicodedata.normalize("NFKD", egg_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].rstrip("-") or "egg"


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _mapping(value: Any, field: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    # PHP's json_encode writes an empty array as `[]` where an object is meant.
    if isinstance(value, list) and not value:
        return {}
    if not isinstance(value, Mapping):
        raise EggError(f"{field}: must be a mapping, not {_kind(value)}")
    return value


def _text(value: Any, field: str, *, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise EggError(f"{field}: must be a string, not {_kind(value)}")
    return value


def _string_list(value: Any, field: str) -> list[str]:
    if value is None or value == "" or value == {}:
        return []
    items = list(value.values()) if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        raise EggError(f"{field}: must be a list, not {_kind(value)}")
    out: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise EggError(f"{field}[{index}]: must be a string, not {_kind(item)}")
        out.append(item)
    return out


def _json_field(value: Any, field: str) -> Mapping[str, Any]:
    # PTDL and most Pelican eggs store these as JSON text; PLCN_v3 may store objects.
    if isinstance(value, str):
        value = load_json(value, field) if value.strip() else {}
    return _mapping(value, field)


def _unix_text(text: str) -> str:
    return text.replace("\r\n", "\n")


def _source(egg: Mapping[str, Any], meta: Mapping[str, Any], version: str) -> EggSource:
    exported_at = egg.get("exported_at")
    if isinstance(exported_at, str) and not exported_at.strip():
        exported_at = None
    if exported_at is not None and not isinstance(exported_at, str | datetime):
        raise EggError(f"exported_at: must be a timestamp, not {_kind(exported_at)}")
    values = {
        "format": version,
        "uuid": _text(egg.get("uuid"), "uuid", default="") or None,
        "update_url": _text(meta.get("update_url"), "meta.update_url", default="") or None,
        "exported_at": exported_at,
        "image": _text(egg.get("image"), "image", default="") or None,
    }
    try:
        return EggSource.model_validate(values)
    except ValidationError as exc:
        raise EggError(validation_reason(exc)) from None


def _images(egg: Mapping[str, Any], version: str) -> list[BlueprintImage]:
    field = "images" if version == "PTDL_v1" else "docker_images"
    raw = egg.get(field)
    if raw in (None, [], {}):
        # A few PTDL_v2 eggs still carry the PTDL_v1 list, and the reverse never hurts.
        field = "docker_images" if field == "images" else "images"
        raw = egg.get(field)
    pairs: list[tuple[str, Any]]
    if isinstance(raw, Mapping):
        pairs = [(str(label), image) for label, image in raw.items()]
    elif isinstance(raw, list):
        pairs = [(image, image) if isinstance(image, str) else ("", image) for image in raw]
    else:
        raise EggError("docker_images: at least one image is required")
    images: list[BlueprintImage] = []
    for index, (label, image) in enumerate(pairs):
        where = f"{field}[{json.dumps(label)}]" if isinstance(raw, Mapping) else f"{field}[{index}]"
        if not isinstance(image, str) or not image.strip():
            raise EggError(f"{where}: must be an image reference")
        try:
            images.append(BlueprintImage(name=label.strip() or image, image=image.strip()))
        except ValidationError as exc:
            raise EggError(f"{where}: {validation_reason(exc)}") from None
    if not images:
        raise EggError(f"{field}: at least one image is required")
    return images


def _startup_commands(
    egg: Mapping[str, Any], version: str, known: set[str]
) -> list[StartupCommand]:
    raw: Any = egg.get("startup_commands") if version == "PLCN_v3" else None
    if raw is None:
        raw = {DEFAULT_COMMAND_NAME: egg.get("startup")}
        field = "startup"
    else:
        field = "startup_commands"
    commands: list[StartupCommand] = []
    for label, command in _mapping(raw, field).items():
        where = field if field == "startup" else f"{field}[{json.dumps(label)}]"
        text = _unix_text(_text(command, where)).strip()
        if not text:
            raise EggError(f"{where}: a startup command is required")
        try:
            commands.append(
                StartupCommand(name=str(label), command=import_startup(text, known, where))
            )
        except ValidationError as exc:
            raise EggError(f"{where}: {validation_reason(exc)}") from None
    if not commands:
        raise EggError(f"{field}: a startup command is required")
    return commands


def _variables(raw: Any) -> list[Variable]:
    if raw is None or raw == {}:
        return []
    if not isinstance(raw, list):
        raise EggError(f"variables: must be a list, not {_kind(raw)}")
    variables: list[Variable] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"variables[{index}]"
        entry = _mapping(item, where, required=True)
        env = _text(entry.get("env_variable"), f"{where}.env_variable").strip()
        if env in seen:
            raise EggError(
                f"{where}.env_variable: {env!r} is defined twice (also variables[{seen[env]}])"
            )
        if env in BUILTIN_VARIABLES:
            raise EggError(
                f"{where}.env_variable: {env} is set by StellarStack itself "
                "and cannot be a variable"
            )
        seen[env] = index
        sort = entry.get("sort")
        if isinstance(sort, str) and re.fullmatch(r"-?\d+", sort.strip()):
            sort = int(sort)
        if sort is not None and (isinstance(sort, bool) or not isinstance(sort, int)):
            raise EggError(f"{where}.sort: must be a whole number, not {sort!r}")
        values = {
            "env": env,
            "name": _text(entry.get("name"), f"{where}.name").strip() or env,
            "description": _unix_text(_text(entry.get("description"), f"{where}.description")),
            "default": _text(entry.get("default_value"), f"{where}.default_value"),
            "user_viewable": _flag(entry.get("user_viewable"), f"{where}.user_viewable", True),
            "user_editable": _flag(entry.get("user_editable"), f"{where}.user_editable", False),
            "rules": parse_rules(entry.get("rules"), f"{where}.rules"),
            "field_type": _text(entry.get("field_type"), f"{where}.field_type") or "text",
            "sort": sort,
        }
        try:
            variables.append(Variable(**values))
        except ValidationError as exc:
            raise EggError(f"{where}: {validation_reason(exc)}") from None
    return variables


def _flag(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return value in (1, "1")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise EggError(f"{field}: must be true or false, not {value!r}")


def _stop(raw: Any) -> StopMethod:
    text = _text(raw, "config.stop").strip()
    if not text:
        return StopMethod()
    if text.startswith("^"):
        # `^C` is Ctrl-C. Some eggs write `^^C`, an escaped caret, meaning the same.
        name = text.lstrip("^").strip().upper()
        if name == "C":
            signal = StopSignal.SIGINT
        else:
            full = name if name.startswith("SIG") else "SIG" + name
            # The node daemon sends SIGKILL for any signal name it does not know.
            signal = StopSignal(full) if full in StopSignal.__members__ else StopSignal.SIGKILL
        return StopMethod(type=StopType.SIGNAL, signal=signal)
    try:
        return StopMethod(type=StopType.COMMAND, command=text)
    except ValidationError as exc:
        raise EggError(f"config.stop: {validation_reason(exc)}") from None


def _readiness(startup: Mapping[str, Any]) -> Readiness:
    done = startup.get("done")
    raw = done if isinstance(done, list) else [done]
    patterns: list[str] = []
    for index, item in enumerate(raw):
        where = "config.startup.done" + (f"[{index}]" if isinstance(done, list) else "")
        text = _text(item, where)
        if text:
            patterns.append(text)
    if any(pattern.startswith(_DONE_REGEX_PREFIX) for pattern in patterns):
        # The daemon treats `regex:`-prefixed entries as expressions and the rest as text.
        patterns = [
            pattern.removeprefix(_DONE_REGEX_PREFIX)
            if pattern.startswith(_DONE_REGEX_PREFIX)
            else re.escape(pattern)
            for pattern in patterns
        ]
        regex = True
    else:
        regex = False
    try:
        return Readiness(console_patterns=patterns, console_regex=regex)
    except ValidationError as exc:
        raise EggError(f"config.startup.done: {validation_reason(exc)}") from None


def _config_files(files: Mapping[str, Any], known: set[str]) -> list[ConfigFile]:
    out: list[ConfigFile] = []
    for path, spec in files.items():
        where = f"config.files[{json.dumps(path)}]"
        # The node daemon resolves a leading `/` against the server directory, so `/a/b` means
        # the same file as `a/b`; `..`, drive letters and backslash roots stay refused.
        relative = str(path).lstrip("/")
        try:
            relative = check_relative_path(relative)
        except ValueError as exc:
            raise EggError(
                f"{where}: path must be relative to the server directory and stay inside it ({exc})"
            ) from None
        entry = _mapping(spec, where, required=True)
        parser_name = _text(entry.get("parser"), f"{where}.parser").strip().lower()
        if parser_name not in _PARSERS:
            raise EggError(
                f"{where}.parser: unknown parser {json.dumps(parser_name)} "
                f"(known: {', '.join(sorted(_PARSERS))})"
            )
        edits = [
            edit
            for key, value in _mapping(entry.get("find"), f"{where}.find").items()
            if (edit := _config_edit(str(key), value, known, f"{where}.find[{json.dumps(key)}]"))
        ]
        if not edits:
            continue  # a file with nothing to set is a no-op in the egg as well
        try:
            out.append(ConfigFile(path=relative, parser=_PARSERS[parser_name], edits=edits))
        except ValidationError as exc:
            raise EggError(f"{where}: {validation_reason(exc)}") from None
    return out


def _scalar(value: Any, field: str) -> str:
    # The daemon writes "true"/"1" into typed files as booleans/numbers either way, so a JSON
    # true and the text "true" mean the same.
    if isinstance(value, list | Mapping):
        raise EggError(f"{field}: must be a text, number or boolean value")
    return _text(value, field)


def _config_edit(key: str, value: Any, known: set[str], where: str) -> ConfigEdit | None:
    try:
        if isinstance(value, Mapping):
            replacements = [
                ValueReplacement(
                    match=str(match),
                    value=import_config_value(_scalar(new, where), known, where),
                )
                for match, new in value.items()
            ]
            if not replacements:
                return None
            return ConfigEdit(key=key, replacements=replacements)
        text = import_config_value(_scalar(value, where), known, where)
        return ConfigEdit(key=key, value=text)
    except ValidationError as exc:
        raise EggError(f"{where}: {validation_reason(exc)}") from None


def _install(scripts: Any) -> InstallStep | None:
    installation = _mapping(
        _mapping(scripts, "scripts").get("installation"), "scripts.installation"
    )
    container = _text(installation.get("container"), "scripts.installation.container").strip()
    script = _unix_text(_text(installation.get("script"), "scripts.installation.script"))
    entrypoint = _text(installation.get("entrypoint"), "scripts.installation.entrypoint").strip()
    if not container or not script.strip():
        return None
    try:
        return InstallStep(image=container, entrypoint=entrypoint or "bash", script=script)
    except ValidationError as exc:
        raise EggError(f"scripts.installation: {validation_reason(exc)}") from None
