"""Config-file edits: set keys in a server's config files before each start. Pure text in, out.

One function per format, all with the same contract: the file's text and the planned edits go
in, the new text comes out, and everything the edits do not touch stays as it was (comments,
order, formatting where the format allows). A key that is missing is added, except for the
`file` parser, whose keys are line prefixes that only ever replace existing lines (as eggs
expect). A `replacements` edit changes a value only when the current value matches.
"""

from __future__ import annotations

import configparser
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import yaml

from stellarstack.api.blueprint import ConfigParser, check_relative_path
from stellarstack.api.workload import ConfigEditPlan, ConfigFilePlan

MAX_CONFIG_BYTES = 4 * 1024 * 1024
PLANS_ENV = "STELLARSTACK_CONFIG_FILES"
"""The environment variable that carries `plans_to_json`'s document to the process applying
the edits on Kubernetes (`stellarstack configfiles apply` in the game Pod's init container)."""
PLANS_FORMAT_VERSION = 1
"""Version of `plans_to_json`'s document: the operator and the image that applies the edits
may be of different releases, so a reader refuses a version it does not know."""


class ConfigEditError(ValueError):
    """A config file that cannot be parsed in its declared format."""


def apply_config_file(text: str, plan: ConfigFilePlan) -> str:
    """The file's text after the plan's edits."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigEditError(f"{plan.path}: larger than {MAX_CONFIG_BYTES} bytes")
    editor = _EDITORS[plan.parser]
    try:
        return editor(text, plan.edits)
    except ConfigEditError:
        raise
    except (ValueError, yaml.YAMLError, ET.ParseError, configparser.Error) as exc:
        raise ConfigEditError(f"{plan.path}: not valid {plan.parser.value}: {exc}") from exc


def creates_missing_file(parser: ConfigParser) -> bool:
    """Whether an absent file is created (structured formats) or left alone (`file`, `xml`)."""
    return parser not in {ConfigParser.FILE, ConfigParser.XML}


def new_value(edit: ConfigEditPlan, current: str | None) -> str | None:
    """What `edit` sets given the current value; None leaves the key as it is."""
    if edit.value is not None:
        return edit.value
    for match, value in edit.replacements:
        if match.startswith("regex:"):
            if current is not None and re.search(match[len("regex:") :], current):
                return value
        elif current == match:
            return value
    return None


# -- the rendered plans as a document (how they reach the process that applies them) ---------


def plans_to_json(plans: tuple[ConfigFilePlan, ...] | list[ConfigFilePlan]) -> str:
    """The rendered edits as compact JSON (placeholders already replaced)."""
    files = [
        {
            "path": plan.path,
            "parser": plan.parser.value,
            "edits": [
                {
                    "key": edit.key,
                    "value": edit.value,
                    "replacements": [[match, value] for match, value in edit.replacements],
                }
                for edit in plan.edits
            ],
        }
        for plan in plans
    ]
    document = {"version": PLANS_FORMAT_VERSION, "files": files}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def plans_from_json(text: str) -> tuple[ConfigFilePlan, ...]:
    """Read `plans_to_json`'s document back; `ConfigEditError` names the field that is wrong."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigEditError(f"config-file plans: not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigEditError("config-file plans: expected an object with version and files")
    if document.get("version") != PLANS_FORMAT_VERSION:
        raise ConfigEditError(
            f"version: {document.get('version')!r} is not supported (expected "
            f"{PLANS_FORMAT_VERSION})"
        )
    files = document.get("files")
    if not isinstance(files, list):
        raise ConfigEditError("files: expected a list")
    return tuple(_plan_from_json(entry, f"files[{index}]") for index, entry in enumerate(files))


def _plan_from_json(entry: Any, where: str) -> ConfigFilePlan:
    if not isinstance(entry, dict):
        raise ConfigEditError(f"{where}: expected an object")
    path = _string(entry.get("path"), f"{where}.path")
    try:
        path = check_relative_path(path)
    except ValueError as exc:
        raise ConfigEditError(f"{where}.path: {exc}") from exc
    parser_name = _string(entry.get("parser"), f"{where}.parser")
    try:
        parser = ConfigParser(parser_name)
    except ValueError:
        known = ", ".join(p.value for p in ConfigParser)
        raise ConfigEditError(f"{where}.parser: {parser_name!r} is not one of {known}") from None
    edits = entry.get("edits")
    if not isinstance(edits, list):
        raise ConfigEditError(f"{where}.edits: expected a list")
    return ConfigFilePlan(
        path=path,
        parser=parser,
        edits=tuple(
            _edit_from_json(edit, f"{where}.edits[{index}]") for index, edit in enumerate(edits)
        ),
    )


def _edit_from_json(entry: Any, where: str) -> ConfigEditPlan:
    if not isinstance(entry, dict):
        raise ConfigEditError(f"{where}: expected an object")
    value = entry.get("value")
    replacements = entry.get("replacements", [])
    if not isinstance(replacements, list):
        raise ConfigEditError(f"{where}.replacements: expected a list")
    pairs: list[tuple[str, str]] = []
    for index, pair in enumerate(replacements):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ConfigEditError(f"{where}.replacements[{index}]: expected [match, value]")
        pairs.append(
            (
                _string(pair[0], f"{where}.replacements[{index}][0]"),
                _string(pair[1], f"{where}.replacements[{index}][1]"),
            )
        )
    return ConfigEditPlan(
        key=_string(entry.get("key"), f"{where}.key"),
        value=None if value is None else _string(value, f"{where}.value"),
        replacements=tuple(pairs),
    )


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigEditError(f"{where}: expected a string, not {type(value).__name__}")
    return value


# -- properties ------------------------------------------------------------------------------

_PROPERTY = re.compile(r"^(\s*)([^#!\s=:][^=:]*?)(\s*[=:]\s*)(.*)$")


def _properties(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    lines = text.splitlines()
    for edit in edits:
        found = False
        for index, line in enumerate(lines):
            match = _PROPERTY.match(line)
            if match and match.group(2) == edit.key:
                found = True
                value = new_value(edit, match.group(4))
                if value is not None:
                    lines[index] = f"{match.group(1)}{edit.key}{match.group(3)}{value}"
        if not found:
            value = new_value(edit, None)
            if value is not None:
                lines.append(f"{edit.key}={value}")
    return "\n".join(lines) + "\n"


# -- ini -------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_INI_KEY = re.compile(r"^(\s*)([^;#\s=][^=]*?)(\s*=\s*)(.*)$")


def _ini(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    lines = text.splitlines()
    for edit in edits:
        # "section.key" (split at the first dot, as eggs write it); a key without a dot is
        # above the first section. A missing section is created.
        section, _, key = edit.key.partition(".")
        if not key:
            section, key = "", section
        current_section = ""
        # Where a missing key of this section goes: after its last non-blank line.
        end_of_section: int | None = 0 if not section else None
        found = False
        for index, line in enumerate(lines):
            header = _SECTION.match(line)
            if header:
                current_section = header.group(1).strip()
                if current_section == section:
                    end_of_section = index + 1
                continue
            if current_section != section:
                continue
            if line.strip():
                end_of_section = index + 1
            match = _INI_KEY.match(line)
            if match and match.group(2) == key:
                found = True
                value = new_value(edit, match.group(4))
                if value is not None:
                    lines[index] = f"{match.group(1)}{key}{match.group(3)}{value}"
        if found:
            continue
        value = new_value(edit, None)
        if value is None:
            continue
        if section and end_of_section is None:
            lines += ["", f"[{section}]", f"{key}={value}"]
        elif section:
            assert end_of_section is not None
            lines.insert(end_of_section, f"{key}={value}")
        else:
            first_header = next(
                (i for i, text in enumerate(lines) if _SECTION.match(text)), len(lines)
            )
            lines.insert(first_header, f"{key}={value}")
    return "\n".join(lines) + "\n"


# -- json and yaml ---------------------------------------------------------------------------


def _set_path(document: Any, edit: ConfigEditPlan) -> Any:
    if not isinstance(document, dict):
        document = {}
    node: dict[str, Any] = document
    parts = edit.key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    leaf = parts[-1]
    current = node.get(leaf)
    value = new_value(edit, None if current is None else _text(current))
    if value is not None:
        node[leaf] = _typed_like(current, value)
    return document


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _typed_like(current: Any, value: str) -> Any:
    """Keep the type a key had: a port that was a number stays a number."""
    if isinstance(current, bool) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if isinstance(current, int) and not isinstance(current, bool) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if isinstance(current, float) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    return value


def _json(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    document: Any = json.loads(text) if text.strip() else {}
    for edit in edits:
        document = _set_path(document, edit)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _yaml(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    document: Any = yaml.safe_load(text) if text.strip() else {}
    for edit in edits:
        document = _set_path(document, edit)
    dumped: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return dumped


# -- xml -------------------------------------------------------------------------------------


def _xml(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        # Entity definitions are how XML bombs and external entity reads work; configs need none.
        raise ConfigEditError("XML with a DOCTYPE or entities is refused")
    root = ET.fromstring(text)
    for edit in edits:
        parts = edit.key.split(".")
        if parts and parts[0] == root.tag:
            parts = parts[1:]
        node = root
        for part in parts:
            child = node.find(part)
            if child is None:
                child = ET.SubElement(node, part)
            node = child
        value = new_value(edit, node.text)
        if value is not None:
            node.text = value
    output = io.StringIO()
    ET.ElementTree(root).write(output, encoding="unicode", xml_declaration=True)
    return output.getvalue() + "\n"


# -- file (line prefixes) --------------------------------------------------------------------


def _file(text: str, edits: tuple[ConfigEditPlan, ...]) -> str:
    lines = text.splitlines()
    for edit in edits:
        for index, line in enumerate(lines):
            if line.startswith(edit.key):
                value = new_value(edit, line)
                if value is not None:
                    lines[index] = value
    return "\n".join(lines) + ("\n" if lines else "")


_EDITORS: dict[ConfigParser, Callable[[str, tuple[ConfigEditPlan, ...]], str]] = {
    ConfigParser.PROPERTIES: _properties,
    ConfigParser.INI: _ini,
    ConfigParser.JSON: _json,
    ConfigParser.YAML: _yaml,
    ConfigParser.XML: _xml,
    ConfigParser.FILE: _file,
}
