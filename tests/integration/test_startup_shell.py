"""Rendered shell startups run under a real /bin/sh: hostile values arrive as plain data."""

from __future__ import annotations

import os
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from stellarstack.api.startup import render_startup

# Anything a user could type into a variable, except NUL (which no environment can carry).
VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=60,
)
TEMPLATES = [
    "printf '%s' {{V}} && true",
    "printf '%s' \"{{V}}\" ; true",
    "printf '%s' '{{V}}' | cat",
    "printf '%s' x{{V}}y && true",
]


def run(template: str, value: str) -> str:
    rendered = render_startup(template, {"V": value})
    assert rendered.uses_shell
    result = subprocess.run(
        rendered.argv,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "V": value},
        capture_output=True,
        check=True,
        timeout=10,
    )
    return result.stdout.decode("utf-8", "surrogateescape")


@settings(max_examples=60, deadline=None)
@given(value=VALUES, index=st.integers(min_value=0, max_value=len(TEMPLATES) - 1))
def test_values_reach_the_program_unchanged(value: str, index: int) -> None:
    template = TEMPLATES[index]
    expected = value if "x{{V}}y" not in template else f"x{value}y"
    assert run(template, value) == expected


def test_classic_injections_stay_inert(tmp_path: os.PathLike[str]) -> None:
    marker = os.path.join(tmp_path, "pwned")
    for value in [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}",
        f"' ; touch {marker} ; '",
        f'" ; touch {marker} ; "',
        f"\n touch {marker}",
    ]:
        for template in TEMPLATES:
            run(template, value)
    assert not os.path.exists(marker)
