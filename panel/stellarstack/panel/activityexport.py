"""Activity log exports (pure): CSV that spreadsheets cannot be tricked into executing, and
JSON lines in one array, both produced row by row so that exports stream.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and
LibreOffice (`=HYPERLINK(...)`, `@SUM(...)`), and user-controlled text (an email typed into the
login form, a server name) ends up in the log; such cells are prefixed with `'`, which the
spreadsheet shows as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

COLUMNS = (
    "id",
    "at",
    "event",
    "actor_id",
    "api_key_id",
    "session_id",
    "ip",
    "target_type",
    "target_id",
    "server_id",
    "properties",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The text of one CSV cell, defused when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A header line, then one line per row (`COLUMNS` order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(row.get(column)) for column in COLUMNS])
        yield buffer.getvalue()


def json_chunks(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One JSON array, an element per chunk."""
    yield "["
    separator = ""
    for row in rows:
        yield separator + json.dumps(dict(row), sort_keys=True, default=str)
        separator = ",\n"
    yield "]\n"
