"""Reading manifests (YAML files as users write them) and checking each document on its own.

`stellarstack validate`, the examples' tests and anything else that takes YAML from people uses
these, so every tool reports a problem the same way: `field.path: message`, with the path in
the wire spelling (`spec.ports[0].port`, `spec.variables.SERVER_NAME`).

Checks that span documents (a GameServer against its Blueprint) live in `references`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Resource
from stellarstack.api.constants import API_VERSION
from stellarstack.api.gameserver import GameServer
from stellarstack.api.schedule import Schedule

KINDS: Final[Mapping[str, type[Resource]]] = {
    model.KIND: model for model in (GameServer, Blueprint, Backup, Schedule)
}
"""Model class of each kind, by `kind`."""

MANIFEST_SUFFIXES: Final = (".yaml", ".yml")

Manifest = tuple[Path, int, dict[str, Any]]
"""One document: the file it came from, its 0-based position in that file, the document."""


class ManifestError(ValueError):
    """A document that is not a valid resource; `problems` are `field.path: message` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_manifests(path: Path) -> list[Manifest]:
    """Every YAML document in a file, or in every `*.yaml`/`*.yml` file below a directory.

    Files are read in sorted order, so results and error reports are stable. Empty documents
    (a stray `---`) are skipped but still counted, so the index is the document's position as
    a reader counts separators. Raises `OSError` when a file cannot be read and `ValueError`
    (naming the file, and the line where known) for YAML that does not parse or a document
    that is not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    else:
        files = [path]
    manifests: list[Manifest] = []
    for file in files:
        manifests.extend(_load_file(file))
    return manifests


def _load_file(file: Path) -> list[Manifest]:
    text = file.read_text(encoding="utf-8")
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"{file}:{line} not valid YAML: {problem}") from exc
    loaded: list[Manifest] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ValueError(
                f"{file}: document {index} is a {type(document).__name__}, not a mapping"
            )
        loaded.append((file, index, document))
    return loaded


def model_for(document: Mapping[str, Any]) -> type[Resource] | None:
    """The model class for the document's `kind`, or None when it is not one of ours."""
    kind = document.get("kind")
    return KINDS.get(kind) if isinstance(kind, str) else None


def validate_document(document: Mapping[str, Any]) -> list[str]:
    """Every problem with one document, as `field.path: message`; empty when it is valid."""
    try:
        parse_document(document)
    except ManifestError as exc:
        return exc.problems
    return []


def parse_document(document: Mapping[str, Any]) -> Resource:
    """The document as its model, or `ManifestError` listing every problem."""
    api_version = document.get("apiVersion")
    if api_version != API_VERSION:
        raise ManifestError([f"apiVersion: must be {API_VERSION} (got {api_version!r})"])
    model = model_for(document)
    if model is None:
        known = ", ".join(sorted(KINDS))
        raise ManifestError([f"kind: must be one of {known} (got {document.get('kind')!r})"])
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(error_messages(exc)) from None


# A message that already starts with a field path, as the models' cross-field validators write
# them ("ports[1].port: UDP 7777 is already used"); the path is relative to the error's location.
_PATH_PREFIX: Final = re.compile(
    r"^(?P<path>[A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): "
)
# Union members and validator wrappers appear in pydantic locations but are not wire fields.
_NOT_A_FIELD: Final = re.compile(r"^(?:str|int|float|bool|none|[\w-]+\[.*\])$")
_FRIENDLIER: Final = {
    "missing": "required",
    "extra_forbidden": "unknown field (check its spelling and indentation)",
}


def error_messages(error: ValidationError) -> list[str]:
    """A pydantic error as `field.path: message` strings, in camelCase wire paths, deduplicated."""
    messages: list[str] = []
    for detail in error.errors(include_url=False):
        for message in _detail_messages(detail):
            if message not in messages:
                messages.append(message)
    return messages


def _detail_messages(detail: ErrorDetails) -> list[str]:
    base = format_path(detail["loc"])
    text = _FRIENDLIER.get(detail["type"], detail["msg"])
    if detail["type"] == "value_error":
        text = text.removeprefix("Value error, ")
    # Cross-field validators join several problems with "; " (Blueprint); report each apart.
    parts = text.split("; ")
    if len(parts) == 1 or not all(_PATH_PREFIX.match(part) for part in parts):
        parts = [text]
    out: list[str] = []
    for part in parts:
        match = _PATH_PREFIX.match(part)
        if match is None:
            out.append(f"{base or '(document)'}: {part}")
            continue
        inner = match["path"]
        # "metadata.name: ..." raised at the top of the document already names its field.
        path = _join(base, inner)
        out.append(f"{path}: {part[match.end() :]}")
    return out


def format_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a wire path: `("spec", "ports", 0)` -> `spec.ports[0]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _NOT_A_FIELD.match(part):
            continue
        else:
            path = f"{path}.{part}" if path else part
    return path


def _join(base: str, inner: str) -> str:
    if not base:
        return inner
    return base + inner if inner.startswith("[") else f"{base}.{inner}"
