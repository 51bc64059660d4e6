"""requirements.lock agrees with pyproject.toml, and `make install` installed exactly the lock.

The lock is the only source of packages (Makefile `install`, `.ci/run`, `make image`); it changes
only through `make lock`. These checks read files and the installed distributions' metadata, so
they need no package index.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PINNED_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]*))?"
)


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]


def parse_lock(text: str) -> dict[str, LockedPackage]:
    """Each `name==version [; marker]` entry with the `--hash` lines that follow it."""
    packages: dict[str, LockedPackage] = {}
    current: tuple[str, Version, Marker | None] | None = None
    hashes: list[str] = []

    def flush() -> None:
        if current is not None:
            name, version, marker = current
            packages[name] = LockedPackage(name, version, marker, tuple(hashes))

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("--hash="):
            hashes.append(stripped.removeprefix("--hash=").rstrip(" \\"))
            continue
        match = PINNED_LINE.match(stripped)
        assert match, f"requirements.lock: a line that is not a pinned requirement: {line!r}"
        flush()
        marker_text = (match["marker"] or "").strip()
        current = (
            canonicalize_name(match["name"]),
            Version(match["version"]),
            Marker(marker_text) if marker_text else None,
        )
        hashes = []
    flush()
    return packages


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = list(project["project"]["dependencies"])
    declared += project["dependency-groups"]["dev"]
    declared += project["build-system"]["requires"]
    return [Requirement(text) for text in declared]


@pytest.fixture(scope="module")
def locked() -> dict[str, LockedPackage]:
    return parse_lock(LOCK.read_text())


def test_every_locked_package_is_pinned_with_hashes(locked: dict[str, LockedPackage]) -> None:
    assert len(locked) > 50
    unhashed = [name for name, package in locked.items() if not package.hashes]
    assert unhashed == []
    for package in locked.values():
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in package.hashes)


def test_every_declared_dependency_is_locked_at_a_version_it_allows(
    locked: dict[str, LockedPackage],
) -> None:
    problems = []
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement}: not in requirements.lock (run `make lock`)")
            continue
        version = locked[name].version
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: the lock has {version} (run `make lock`)")
    assert problems == []


def test_the_lock_needs_no_package_a_declared_one_does_not_bring(
    locked: dict[str, LockedPackage],
) -> None:
    """Nothing stale: every locked package is declared or required by a locked package."""
    wanted = {canonicalize_name(requirement.name) for requirement in declared_requirements()}
    reachable: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in reachable or name not in locked:
            continue
        reachable.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed on this platform (a marker excludes it here)
        todo += [canonicalize_name(Requirement(text).name) for text in requires]
    installed_here = {
        name
        for name, package in locked.items()
        if package.marker is None or package.marker.evaluate()
    }
    assert installed_here - reachable == set()


def test_the_environment_is_exactly_the_lock(locked: dict[str, LockedPackage]) -> None:
    """`make install` ran `uv pip sync`: every package for this platform at its locked version."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("not running from the project's .venv (make install)")
    installed = {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version)
        for dist in importlib.metadata.distributions()
    }
    wrong = {
        name: (str(installed.get(name)), str(package.version))
        for name, package in locked.items()
        if (package.marker is None or package.marker.evaluate())
        and installed.get(name) != package.version
    }
    assert wrong == {}
    extra = set(installed) - set(locked) - {"stellarstack"}
    assert extra == set()
