"""Kubernetes resource quantities ("500m", "1.5Gi", "2e3") parsed exactly, without I/O.

The API server accepts a quantity either as a string or as a number, so the CRD schema types
these fields `x-kubernetes-int-or-string`; the models normalise them to the canonical string
the user wrote and offer exact `Fraction` values for arithmetic.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# The grammar from k8s.io/apimachinery/pkg/api/resource: a signed decimal number followed by a
# binary suffix, a decimal suffix, or a decimal exponent.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Fraction:
    """Return the exact value of a Kubernetes quantity (cores for CPU, bytes for memory)."""
    if isinstance(value, bool):
        raise QuantityError("a quantity must be a number or a string such as '500m' or '2Gi'")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    text = value.strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(
            f"{value!r} is not a Kubernetes quantity (examples: '500m', '1.5', '512Mi', '10Gi')"
        )
    try:
        number = Fraction(Decimal(match["number"]))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{value!r} has an unreadable number") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return number * _DECIMAL_SUFFIXES[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > 30:
        raise QuantityError(f"{value!r} has an exponent beyond ±30")
    return number * Fraction(10) ** exponent


def _normalise(value: Any) -> Any:
    """Keep the user's spelling (as a string) once it is known to parse."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        parse_quantity(value)
        return str(value).strip()
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_normalise),
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]
"""A Kubernetes quantity field: accepts `2`, `"500m"`, `"1Gi"`; stored as the canonical string."""


def cpu_millicores(value: str) -> int:
    """CPU quantity in whole millicores, rounded up (Kubernetes' own precision limit)."""
    millis = parse_quantity(value) * 1000
    return -(-millis.numerator // millis.denominator)


def byte_count(value: str) -> int:
    """Memory or disk quantity in whole bytes, rounded up."""
    exact = parse_quantity(value)
    return -(-exact.numerator // exact.denominator)


def format_bytes(count: int) -> str:
    """The shortest exact binary-suffixed spelling of a byte count ('512Mi', '3Gi', '1000')."""
    for suffix, factor in sorted(_BINARY_SUFFIXES.items(), key=lambda item: -item[1]):
        if count and count % factor == 0:
            return f"{count // factor}{suffix}"
    return str(count)
