"""The web UI's sources (`panel/ui`): the API client it is typed by is generated from the
panel's current OpenAPI document (`make ui-client`), its unit tests (vitest) pass, and the
wheel carries its build."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from stellarstack.panel.web.uiclient import render, ui_openapi_document
from support.webui import REPO, UI_DIR, built_ui, node_tool

STALE = "the web UI's API client is stale: run `make ui-client` and commit what it changes"


def test_the_committed_openapi_document_is_the_panels() -> None:
    committed = (UI_DIR / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(ui_openapi_document()), STALE


def test_the_generated_client_matches_the_document(tmp_path: Path) -> None:
    command = node_tool("openapi-typescript")
    generated = tmp_path / "schema.d.ts"
    subprocess.run(
        [*command, "openapi.json", "-o", str(generated)],
        cwd=UI_DIR,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = (UI_DIR / "src" / "api" / "schema.d.ts").read_text(encoding="utf-8")
    assert committed == generated.read_text(encoding="utf-8"), STALE


def test_the_ui_unit_tests_pass() -> None:
    command = node_tool("vitest")
    result = subprocess.run(
        [*command, "run", "--reporter=dot"],
        cwd=UI_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout, result.stdout[-2000:]


def test_the_wheel_carries_the_built_ui(tmp_path: Path) -> None:
    build = built_ui()
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip_wheel, "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("stellarstack-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    built = {
        "stellarstack/panel/web/ui/" + path.relative_to(build).as_posix()
        for path in build.rglob("*")
        if path.is_file()
    }
    assert "stellarstack/panel/web/ui/index.html" in built
    assert built <= packed, sorted(built - packed)
