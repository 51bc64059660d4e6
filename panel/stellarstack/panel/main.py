"""`stellarstack panel`: serve the panel, migrate its database, create the first admin."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
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
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving the API (default: STELLARSTACK_PANEL_WORKERS, else 1); the "
        "background tasks run in one of them at a time",
    )
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
    local = actions.add_parser(
        "local",
        help="the panel with SQLite and, where Docker answers, a local node (`make run`)",
        description="Run the panel on http://localhost:8000 with an SQLite database in the "
        "state directory and, when a Docker engine answers, a node agent registered as the "
        "node 'local' with allocations on 127.0.0.1 and the example blueprints loaded.",
    )
    local.add_argument("--state", type=Path, default=Path(".stellarstack"))
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8000)
    local.add_argument(
        "--node-port",
        type=int,
        default=None,
        help="port of the local node API (default: 8443 when free, else any free port; a port "
        "given here must be free)",
    )
    local.add_argument("--examples", type=Path, default=Path("examples"))
    local.set_defaults(handler=_local)
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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from stellarstack.panel.db.engine import make_engine
    from stellarstack.panel.db.migrate import upgrade

    settings = _settings()
    workers = getattr(args, "workers", None) or settings.workers
    if workers < 1:
        print("stellarstack panel: --workers: must be at least 1", file=sys.stderr)
        return 2
    # Once, here: workers starting side by side must not race to migrate.
    engine = make_engine(settings.database_url, admissions=1)
    upgrade(engine)
    engine.dispose()
    uvicorn.run(
        "stellarstack.panel.main:served_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=False,
    )
    return 0


def served_app() -> Any:
    """The application one `serve` worker runs (uvicorn calls this in each worker process):
    its own context and pool; the background tasks only while it holds their lease."""
    from stellarstack.panel.api.app import create_app
    from stellarstack.panel.context import build_context
    from stellarstack.panel.workers import default_background_tasks, under_lease

    context = build_context(_settings())
    return create_app(context, migrate=False, background=[under_lease(default_background_tasks())])


def _local(args: argparse.Namespace) -> int:
    from stellarstack.panel.local import run_local

    return run_local(
        args.state,
        host=args.host,
        port=args.port,
        node_port=args.node_port,
        examples=args.examples,
    )


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
