"""The one exception egg import and export raise, and the formats they know."""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import ValidationError

EggFormat = Literal["PTDL_v1", "PTDL_v2", "PLCN_v1", "PLCN_v2", "PLCN_v3"]
EGG_FORMATS: Final[tuple[str, ...]] = get_args(EggFormat)
DEFAULT_EXPORT_FORMAT: Final = "PLCN_v3"


class EggError(ValueError):
    """An egg that cannot be imported or exported; the message names the egg field and why."""


def validation_reason(exc: ValidationError) -> str:
    """A pydantic error as one line: `loc: message` for each problem, without pydantic's noise."""
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)
