"""The agent's desired state: the resources the panel sent, in one local SQLite file.

The file is the agent's memory across restarts: after a crash or reboot it reads what it should
run from here and re-adopts its containers by name and label. Writes are transactions, so a
resource is either stored whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Resource
from stellarstack.api.gameserver import GameServer
from stellarstack.api.schedule import Schedule

KINDS: dict[str, type[Resource]] = {
    "GameServer": GameServer,
    "Blueprint": Blueprint,
    "Backup": Backup,
    "Schedule": Schedule,
}
R = TypeVar("R", bound=Resource)
# Blueprints are cluster-scoped; the store keys them under an empty namespace.
CLUSTER = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    spec TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT,
    deleting INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, namespace, name)
);
"""


class Store:
    """Resources by kind, namespace and name; thread-safe, one connection per store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database file."""
        self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def put(self, resource: R) -> R:
        """Store the resource's metadata and spec; the status is kept. Bumps `generation` when
        the spec changed, as the Kubernetes API server does, and returns the stored resource."""
        kind = resource.KIND
        namespace = _namespace_of(resource)
        name = resource.metadata.name or ""
        spec = json.dumps(_spec_of(resource), sort_keys=True)
        with self._transaction() as db:
            row = db.execute(
                "SELECT generation, spec FROM resources WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            ).fetchone()
            generation = 1 if row is None else row[0] + (0 if row[1] == spec else 1)
            metadata = resource.metadata.model_copy(update={"generation": generation})
            db.execute(
                "INSERT INTO resources (kind, namespace, name, generation, spec, metadata, status)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (kind, namespace, name) DO UPDATE"
                " SET generation=excluded.generation, spec=excluded.spec,"
                " metadata=excluded.metadata, deleting=0",
                (
                    kind,
                    namespace,
                    name,
                    generation,
                    spec,
                    json.dumps(metadata.model_dump(mode="json", by_alias=True, exclude_none=True)),
                ),
            )
        stored = self.get(type(resource), namespace, name)
        assert stored is not None
        return stored

    def get(self, model: type[R], namespace: str, name: str) -> R | None:
        """The stored resource, with its status, or None."""
        row = self._connection.execute(
            "SELECT metadata, spec, status FROM resources WHERE kind=? AND namespace=? AND name=?",
            (model.KIND, namespace, name),
        ).fetchone()
        return None if row is None else _load(model, row)

    def of_kind(self, model: type[R], namespace: str | None = None) -> list[R]:
        """All stored resources of a kind, optionally of one namespace, by namespace and name."""
        query = "SELECT metadata, spec, status FROM resources WHERE kind=?"
        params: tuple[Any, ...] = (model.KIND,)
        if namespace is not None:
            query += " AND namespace=?"
            params += (namespace,)
        rows = self._connection.execute(query + " ORDER BY namespace, name", params).fetchall()
        return [_load(model, row) for row in rows]

    def set_status(self, resource: Resource, status: Any) -> None:
        """Replace the status (a model or None). Does nothing if the resource is gone."""
        document = (
            None
            if status is None
            else json.dumps(status.model_dump(mode="json", by_alias=True, exclude_none=True))
        )
        with self._transaction() as db:
            db.execute(
                "UPDATE resources SET status=? WHERE kind=? AND namespace=? AND name=?",
                (document, resource.KIND, _namespace_of(resource), resource.metadata.name),
            )

    def mark_deleting(self, model: type[Resource], namespace: str, name: str) -> bool:
        """Flag a resource for deletion (the agent cleans up, then `forget`s it)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE resources SET deleting=1 WHERE kind=? AND namespace=? AND name=?",
                (model.KIND, namespace, name),
            )
            return cursor.rowcount > 0

    def deleting(self, model: type[R]) -> list[R]:
        """Resources flagged for deletion."""
        rows = self._connection.execute(
            "SELECT metadata, spec, status FROM resources WHERE kind=? AND deleting=1",
            (model.KIND,),
        ).fetchall()
        return [_load(model, row) for row in rows]

    def forget(self, model: type[Resource], namespace: str, name: str) -> None:
        """Remove a resource's row for good."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM resources WHERE kind=? AND namespace=? AND name=?",
                (model.KIND, namespace, name),
            )


def _namespace_of(resource: Resource) -> str:
    return (resource.metadata.namespace or "default") if resource.NAMESPACED else CLUSTER


def _spec_of(resource: Resource) -> Any:
    # Every kind has a spec; the Resource base does not declare it, so read it from the dump.
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)["spec"]


def _load(model: type[R], row: tuple[str, str, str | None]) -> R:
    metadata, spec, status = row
    document: dict[str, Any] = {
        "kind": model.KIND,
        "metadata": json.loads(metadata),
        "spec": json.loads(spec),
    }
    if status is not None:
        document["status"] = json.loads(status)
    return model.model_validate(document)
