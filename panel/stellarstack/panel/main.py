"""`stellarstack panel`: serve the panel, migrate its database, create the first admin."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any


def register(commands: Any) -> None:
    """Add the `panel` sub-command to the `stellarstack` CLI (an entry point)."""
    parser = commands.add_parser(
        "panel",
        help="run the web panel",
        description="Run the panel (FastAPI). Settings come from STELLARSTACK_PANEL_* "
        "environment variables (see the README); the database is migrated on start.",
    )
    actions = parser.add_subparsers(dest="panel_command", metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the panel (the default)")
    serve.set_defaults(handler=_serve)
    migrate = actions.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate)
    admin = actions.add_parser(
        "create-admin",
        help="create the first admin account (refused once any account exists)",
        description="Create the first admin. The password is read from "
        "STELLARSTACK_PANEL_ADMIN_PASSWORD, else asked for on the terminal.",
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Admin")
    admin.set_defaults(handler=_create_admin)
    parser.set_defaults(handler=_serve)


def _settings() -> Any:
    from pydantic import ValidationError

    from stellarstack.panel.settings import PanelSettings

    try:
        return PanelSettings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"stellarstack panel: {where}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from exc


def _serve(_: argparse.Namespace) -> int:
    import uvicorn

    from stellarstack.panel.api.app import create_app
    from stellarstack.panel.context import build_context
    from stellarstack.panel.workers import default_background_tasks

    settings = _settings()
    context = build_context(settings)
    app = create_app(context, background=default_background_tasks())
    uvicorn.run(app, host=settings.host, port=settings.port, proxy_headers=False)
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from stellarstack.panel.db.engine import make_engine
    from stellarstack.panel.db.migrate import upgrade

    settings = _settings()
    upgrade(make_engine(settings.database_url))
    print("stellarstack panel: database schema is up to date")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from stellarstack.panel.api.errors import ApiError
    from stellarstack.panel.db.engine import make_engine, make_session_factory, transaction
    from stellarstack.panel.db.migrate import upgrade
    from stellarstack.panel.services.accounts import create_first_admin

    settings = _settings()
    password = os.environ.get("STELLARSTACK_PANEL_ADMIN_PASSWORD") or getpass.getpass(
        "Password for the admin: "
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with transaction(make_session_factory(engine)) as db:
            user = create_first_admin(db, email=args.email, name=args.name, password=password)
            print(f"stellarstack panel: created admin {user.email}")
    except ApiError as exc:
        where = f"{exc.field}: " if exc.field else ""
        print(f"stellarstack panel: {where}{exc.message}", file=sys.stderr)
        return 1
    return 0
