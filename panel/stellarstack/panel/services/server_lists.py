"""Pages of servers, read the way lists are read often: statements built once per shape (not per
request), plain rows instead of ORM objects, one query for every allocation of the page, and
no COUNT when the page itself tells the total (a page that is not full is the last one)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from stellarstack.panel.db.models import Allocation, Server, Subuser


class Visibility(Enum):
    """Which servers a list may show."""

    ALL = "all"
    """Every server (admins)."""
    OWNED_BY = "owned_by"
    """One owner's servers (`who`; admins filtering)."""
    SEEN_BY = "seen_by"
    """Those `who` owns or is a subuser of."""
    UNASSIGNED = "unassigned"
    """Those nobody owns yet (found at a backend)."""


@dataclass(frozen=True)
class ServerPage:
    rows: Sequence[RowMapping]
    """The servers' columns (`SERVER_COLUMNS`), in list order."""
    allocations: dict[str, list[RowMapping]]
    """Server id → its allocations (`ALLOCATION_COLUMNS`), by address and port."""
    total: int


SERVER_COLUMNS = tuple(column for column in Server.__table__.c if column.name != "updated_at")
ALLOCATION_COLUMNS = (Allocation.id, Allocation.ip, Allocation.port, Allocation.alias)

_ALLOCATIONS = (
    select(Allocation.server_id, *ALLOCATION_COLUMNS)
    .where(Allocation.server_id.in_(bindparam("server_ids", expanding=True)))
    .order_by(Allocation.ip, Allocation.port)
)


@functools.cache
def _statements(
    visibility: Visibility, by_name: bool, by_state: bool
) -> tuple[Select[Any], Select[Any]]:
    """(page, count) for one shape of list; values come as bound parameters."""
    conditions: list[ColumnElement[bool]] = []
    if visibility is Visibility.SEEN_BY:
        shared = select(Subuser.server_id).where(Subuser.user_id == bindparam("who"))
        conditions.append(or_(Server.owner_id == bindparam("who"), Server.id.in_(shared)))
    elif visibility is Visibility.OWNED_BY:
        conditions.append(Server.owner_id == bindparam("who"))
    elif visibility is Visibility.UNASSIGNED:
        conditions.append(Server.owner_id.is_(None))
    if by_name:
        conditions.append(func.lower(Server.name).like(bindparam("name_pattern")))
    if by_state:
        conditions.append(Server.state == bindparam("state"))
    page = (
        select(*SERVER_COLUMNS)
        .where(*conditions)
        .order_by(Server.created_at, Server.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(Server).where(*conditions)
    return page, count


def page_total(page: int, per_page: int, found: int) -> int | None:
    """The total a page tells by itself: a page with rows that is not full is the last one
    (as is an empty first page); None when only a count can tell."""
    if found < per_page and (found > 0 or page == 1):
        return (page - 1) * per_page + found
    return None


def server_page(
    db: Session,
    visibility: Visibility,
    *,
    who: str | None = None,
    name: str | None = None,
    state: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> ServerPage:
    """One page of servers ordered by creation; `name` matches part of the name, any case."""
    rows_query, count_query = _statements(visibility, bool(name), bool(state))
    values: dict[str, Any] = {"who": who, "state": state}
    if name:
        values["name_pattern"] = f"%{name.lower()}%"
    connection = db.connection()
    rows = (
        connection.execute(
            rows_query, {**values, "limit": per_page, "offset": (page - 1) * per_page}
        )
        .mappings()
        .all()
    )
    total = page_total(page, per_page, len(rows))
    if total is None:
        total = connection.execute(count_query, values).scalar_one()
    allocations: dict[str, list[RowMapping]] = {row["id"]: [] for row in rows}
    if allocations:
        for allocation in connection.execute(_ALLOCATIONS, {"server_ids": list(allocations)}):
            allocations[allocation.server_id].append(allocation._mapping)
    return ServerPage(rows=rows, allocations=allocations, total=total)
