"""The OpenAPI document the web UI's API client is generated from.

`make ui-client` writes it to `panel/ui/openapi.json` and runs openapi-typescript on it
(`panel/ui/src/api/schema.d.ts`); a test fails when either differs from what the panel's code
produces now. The document is made without a server, a database or the environment: fixed
reference settings (the document describes some limits from the settings), an SQLite engine
that is never connected, and a throwaway signing key.

    python -m stellarstack.panel.web.uiclient panel/ui/openapi.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from stellarstack.panel.settings import PanelSettings

REFERENCE_PUBLIC_URL = "http://localhost:8000"


class ReferenceSettings(PanelSettings):
    """The panel's defaults, whatever `STELLARSTACK_PANEL_*` variables this shell has."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def ui_openapi_document() -> dict[str, Any]:
    # Imported here: the app pulls in every route, which the module's users may not need.
    from stellarstack.panel.api.app import create_app
    from stellarstack.panel.context import build_context

    with tempfile.TemporaryDirectory(prefix="stellarstack-openapi-") as scratch:
        settings = ReferenceSettings(
            environment="development",
            database_url=f"sqlite:///{scratch}/never-opened.db",
            data_dir=Path(scratch),
            public_url=REFERENCE_PUBLIC_URL,
        )
        context = build_context(settings)
        try:
            document: dict[str, Any] = create_app(context, migrate=False).openapi()
        finally:
            context.engine.dispose()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stellarstack.panel.web.uiclient OUTPUT.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(ui_openapi_document()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
