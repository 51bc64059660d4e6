"""Blueprint to egg, in any of the formats the importer reads."""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

import yaml

from stellarstack.api.blueprint import (
    Blueprint,
    ConfigEdit,
    ConfigFile,
    Readiness,
    StopMethod,
    StopSignal,
    StopType,
    Variable,
)
from stellarstack.api.eggs.errors import DEFAULT_EXPORT_FORMAT, EGG_FORMATS, EggError
from stellarstack.api.eggs.placeholders import export_config_value, export_startup
from stellarstack.api.eggs.rules import format_rules, join_rules

EXPORT_COMMENT: Final = "Exported by StellarStack from a Blueprint."


def export_egg(blueprint: Blueprint, *, format: str | None = None) -> dict[str, Any]:
    """The blueprint as an egg document (plain, JSON-serialisable data).

    `format` defaults to the format the blueprint was imported from, else PLCN_v3.
    """
    spec = blueprint.spec
    if format is None:
        format = spec.source.format if spec.source is not None else DEFAULT_EXPORT_FORMAT
    if format not in EGG_FORMATS:
        raise EggError(f"format: unknown egg format {format!r} (known: {', '.join(EGG_FORMATS)})")
    pelican = format.startswith("PLCN")
    # Every format but PLCN_v3 stores these three config fields as JSON text.
    as_text = format != "PLCN_v3"
    source = spec.source
    egg: dict[str, Any] = {
        "_comment": EXPORT_COMMENT,
        "meta": {
            "version": format,
            "update_url": source.update_url if source is not None else None,
        },
    }
    if source is not None and source.exported_at is not None:
        egg["exported_at"] = source.exported_at.isoformat()
    egg["name"] = spec.display_name
    egg["author"] = spec.author
    uuid = source.uuid if source is not None else None
    if pelican or uuid is not None:
        egg["uuid"] = uuid
    egg["description"] = spec.description
    image = source.image if source is not None else None
    if format == "PLCN_v3" or image is not None:
        egg["image"] = image
    if pelican or spec.tags:
        egg["tags"] = list(spec.tags)
    egg["features"] = list(spec.features) if (pelican or spec.features) else None
    if format == "PTDL_v1":
        egg["images"] = [image.image for image in spec.images]
    else:
        egg["docker_images"] = {image.name: image.image for image in spec.images}
    egg["file_denylist"] = list(spec.file_denylist)
    if format == "PLCN_v3":
        egg["startup_commands"] = {
            command.name: export_startup(command.command) for command in spec.startup_commands
        }
    else:
        egg["startup"] = export_startup(spec.startup_commands[0].command)
    config: dict[str, Any] = {
        "files": _files(spec.config_files, pelican),
        "startup": _startup(spec.readiness),
        "logs": {},
        "stop": _stop(spec.stop),
    }
    if as_text:
        config = {
            key: value if key == "stop" else json.dumps(value, indent=4, ensure_ascii=False)
            for key, value in config.items()
        }
    egg["config"] = config
    install = spec.install
    egg["scripts"] = {
        "installation": {
            "script": install.script if install is not None else None,
            "container": install.image if install is not None else "",
            "entrypoint": install.entrypoint if install is not None else "bash",
        }
    }
    egg["variables"] = [_variable(variable, format) for variable in spec.variables]
    return egg


def _files(files: list[ConfigFile], pelican: bool) -> dict[str, Any]:
    return {
        config.path: {
            "parser": config.parser.value,
            "find": {edit.key: _find_value(edit, pelican) for edit in config.edits},
        }
        for config in files
    }


def _find_value(edit: ConfigEdit, pelican: bool) -> str | dict[str, str]:
    if edit.replacements:
        # Eggs have no unconditional fallback beside conditional replacements; `value` is
        # then dropped (StellarStack-only blueprints are the only source of both).
        return {
            replacement.match: export_config_value(replacement.value, pelican)
            for replacement in edit.replacements
        }
    return export_config_value(edit.value or "", pelican)


def _startup(readiness: Readiness) -> dict[str, Any]:
    patterns = readiness.console_patterns
    if readiness.console_regex:
        patterns = ["regex:" + pattern for pattern in patterns]
    if not patterns:
        return {"done": ""}
    return {"done": patterns[0] if len(patterns) == 1 else list(patterns)}


def _stop(stop: StopMethod) -> str:
    if stop.type is StopType.COMMAND and stop.command:
        return stop.command
    if stop.signal is StopSignal.SIGINT:
        return "^C"
    return "^" + stop.signal.value


def _variable(variable: Variable, format: str) -> dict[str, Any]:
    rules = format_rules(variable.rules)
    out: dict[str, Any] = {
        "name": variable.name,
        "description": variable.description,
        "env_variable": variable.env,
        "default_value": variable.default,
        "user_viewable": variable.user_viewable,
        "user_editable": variable.user_editable,
        "rules": list(rules) if format.startswith("PLCN") else join_rules(rules),
    }
    if variable.sort is not None:
        out["sort"] = variable.sort
    # Only PTDL_v2 always writes the field; the others have it only where it is not plain text.
    if format == "PTDL_v2" or variable.field_type != "text":
        out["field_type"] = variable.field_type
    return out


def dump_egg(document: dict[str, Any], fmt: Literal["json", "yaml"] = "json") -> str:
    """The egg document as text: indented JSON (as the panels export) or block-style YAML."""
    if fmt == "json":
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(
            document,
            Dumper=_EggDumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=100,
        )
    raise EggError(f"fmt: unknown output format {fmt!r} (json or yaml)")


class _EggDumper(yaml.SafeDumper):
    """Safe YAML dumper that writes multi-line strings (scripts) as literal blocks."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # Literal blocks cannot hold trailing spaces on a line or some control characters.
    if "\n" in text and not re.search(r"[ \t]\n|[\x00-\x08\x0b-\x1f\x7f]", text):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_EggDumper.add_representer(str, _represent_text)
