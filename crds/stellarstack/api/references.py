"""Checks that span documents: what one manifest says about another.

`stellarstack validate` runs these after each document passed on its own: a GameServer must name
a Blueprint, its image and startup command must exist there and its variable values must pass
that Blueprint's rules. A reference to a resource that is not among the files is not an error
(it may already be in the cluster); a reference that resolves and is wrong is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import WorkloadError, build_workload

Document = tuple[Path, int, Mapping[str, Any]]


def where(path: Path, index: int, document: Mapping[str, Any]) -> str:
    """How errors name a document: `file#index Kind/name`."""
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{path}#{index} {document.get('kind', '?')}/{name or '?'}"


def check_references(documents: Iterable[Document]) -> list[str]:
    """Problems between valid documents; documents that do not parse on their own are skipped."""
    listed = list(documents)
    blueprints: dict[str, Blueprint] = {}
    for _, _, document in listed:
        if document.get("kind") == "Blueprint":
            try:
                blueprint = Blueprint.model_validate(document)
            except ValidationError:
                continue
            blueprints[blueprint.metadata.name or ""] = blueprint
    problems: list[str] = []
    for path, index, document in listed:
        if document.get("kind") != "GameServer":
            continue
        try:
            gameserver = GameServer.model_validate(document)
        except ValidationError:
            continue
        referenced = blueprints.get(gameserver.spec.blueprint)
        if referenced is None:
            continue
        try:
            build_workload(gameserver, referenced)
        except WorkloadError as exc:
            problems.extend(f"{where(path, index, document)}: {p}" for p in exc.problems)
    return problems
