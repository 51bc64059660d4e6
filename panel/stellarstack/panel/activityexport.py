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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


def csv_line(cells: Sequence[str]) -> str:
    """One CSV line (quoted where needed, CRLF-terminated)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def csv_header() -> str:
    return csv_line(COLUMNS)


def csv_row(row: Mapping[str, Any]) -> str:
    """One row's line, `COLUMNS` order."""
    return csv_line([safe_cell(row.get(column)) for column in COLUMNS])


def csv_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A header line, then one line per row (`COLUMNS` order)."""
    yield csv_header()
    for row in rows:
        yield csv_row(row)


def json_element(row: Mapping[str, Any]) -> str:
    return json.dumps(dict(row), sort_keys=True, default=str)


JSON_OPEN, JSON_SEPARATOR, JSON_CLOSE = "[", ",\n", "]\n"


def json_chunks(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One JSON array, an element per chunk."""
    yield JSON_OPEN
    separator = ""
    for row in rows:
        yield separator + json_element(row)
        separator = JSON_SEPARATOR
    yield JSON_CLOSE
