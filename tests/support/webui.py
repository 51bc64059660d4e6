"""The panel's web UI in tests: its sources (`panel/ui`), the Node.js tools they are built and
checked with, and the build the panel serves (`make ui`). Each is skipped where missing, and
fails instead where `.ci/run` requires it (`STELLARSTACK_REQUIRE_NODE`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from stellarstack.panel.web.spa import build_dir
from support.required import NODE, unavailable

REPO = Path(__file__).resolve().parents[2]
UI_DIR = REPO / "panel" / "ui"


def node_tool(name: str) -> list[str]:
    """The command that runs one of the UI's locked npm tools (`vitest`, `openapi-typescript`)."""
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js is not installed (Debian: nodejs npm)", NODE)
    tool = UI_DIR / "node_modules" / ".bin" / name
    if not tool.exists():
        unavailable(f"{name} is not installed in panel/ui (make ui runs npm ci)", NODE)
    return [node, str(tool.resolve())]


def built_ui() -> Path:
    """The directory of the built UI the panel serves."""
    index = build_dir() / "index.html"
    if not index.exists():
        unavailable("the web UI is not built (make ui; needs Node.js and npm)", NODE)
    return index.parent
