"""The engine and session factory for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from stellarstack.panel.db.gate import pool_capacity

READ_ONLY_OPTION = "stellarstack_read_only"
DEFAULT_ADMISSIONS = 10


def make_engine(url: str, *, admissions: int = DEFAULT_ADMISSIONS, **kwargs: Any) -> Engine:
    """An engine for `url` whose pool serves a `DatabaseGate` of `admissions` without ever
    making one wait (see `pool_capacity`). On SQLite every transaction takes the write lock up
    front (`BEGIN IMMEDIATE`) so that check-then-write sequences — limits, one-time codes —
    cannot interleave; PostgreSQL gets the same guarantee from row locks taken by the
    services."""
    pool_size, max_overflow = pool_capacity(admissions)
    kwargs = {"pool_size": pool_size, "max_overflow": max_overflow, **kwargs}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            # The driver's own transaction handling would issue a deferred BEGIN; we issue ours.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            if connection.get_execution_options().get(READ_ONLY_OPTION):
                # WAL lets readers run beside the writer; they need no lock at all.
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; `read_only` ones begin without the SQLite write lock and run in
    autocommit on PostgreSQL (a write in them still works, but may fail under contention on
    SQLite and is not atomic on PostgreSQL: use them only for reads)."""
    if read_only:
        options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if engine.dialect.name == "postgresql":
            # Each statement its own transaction: no BEGIN and COMMIT round trips, and ending
            # the session sends nothing (a read's statements see committed data either way,
            # as in a READ COMMITTED transaction).
            options["isolation_level"] = "AUTOCOMMIT"
        return sessionmaker(engine.execution_options(**options), expire_on_commit=False)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back when it raises."""
    with factory() as session, session.begin():
        yield session
