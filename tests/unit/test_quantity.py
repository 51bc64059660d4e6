from fractions import Fraction

import pytest

from stellarstack.api.quantity import (
    QuantityError,
    byte_count,
    cpu_millicores,
    format_bytes,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Fraction(1)),
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("2k", Fraction(2000)),
        ("1Ki", Fraction(1024)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("100n", Fraction(1, 10**7)),
        (" 2Gi ", Fraction(2 * 2**30)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "1 Gi", "one", "1.2.3", "--1", "1e99", "0x10"])
def test_parse_quantity_refuses(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_booleans_are_not_quantities() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)


@pytest.mark.parametrize(
    ("text", "millis"), [("1", 1000), ("250m", 250), ("0.0001", 1), ("1.5", 1500)]
)
def test_cpu_millicores_round_up(text: str, millis: int) -> None:
    assert cpu_millicores(text) == millis


@pytest.mark.parametrize(
    ("count", "text"), [(512 * 2**20, "512Mi"), (3 * 2**30, "3Gi"), (1000, "1000"), (0, "0")]
)
def test_format_bytes_round_trips(count: int, text: str) -> None:
    assert format_bytes(count) == text
    assert byte_count(text) == count
