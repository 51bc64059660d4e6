"""The editable install resolves every stellarstack portion and leaves stdlib `operator` alone."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTIONS = {"api": "crds", "operator": "operator", "nodeproxy": "nodeproxy", "panel": "panel"}


def test_stdlib_operator_module_is_intact() -> None:
    # Run in a fresh interpreter from a neutral directory so nothing but the install decides.
    code = "import operator, sys; print(operator.__file__); print(operator.itemgetter(1)([0, 7]))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True
    ).stdout.split()
    assert "site-packages" not in out[0]
    assert Path(out[0]).name == "operator.py"
    assert out[1] == "7"


def test_every_portion_resolves_to_its_folder() -> None:
    for package, folder in PORTIONS.items():
        module = importlib.import_module(f"stellarstack.{package}")
        location = Path(next(iter(module.__path__))).resolve()
        assert location == ROOT / folder / "stellarstack" / package


def test_stellarstack_is_a_namespace_package() -> None:
    import stellarstack

    assert getattr(stellarstack, "__file__", None) is None
    for folder in PORTIONS.values():
        assert not (ROOT / folder / "stellarstack" / "__init__.py").exists()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "stellarstack"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("validate", "blueprint", "crds"):
        assert command in result.stdout
