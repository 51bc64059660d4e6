"""Alembic, driven from code: the panel upgrades its database on start and `stellarstack panel
migrate` does it on demand. Migrations live beside the models (`migrations/versions`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py takes the engine from here, so the URL (and its password) never passes through
    # Alembic's ini interpolation.
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (the latest by default); does nothing when it is there."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def check(engine: Engine) -> None:
    """Raise when the models differ from what the migrations create."""
    command.check(alembic_config(engine))


def new_revision(message: str) -> None:
    """Write the next migration: what the models add to the schema the migrations make.
    Compared against a scratch SQLite database brought to head first."""
    import tempfile

    from stellarstack.panel.db.engine import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/schema.db")
        upgrade(engine)
        existing = sorted(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
        number = int(existing[-1].split("_", 1)[0]) + 1 if existing else 1
        command.revision(
            alembic_config(engine), message=message, autogenerate=True, rev_id=f"{number:04d}"
        )
        engine.dispose()


if __name__ == "__main__":
    import sys

    new_revision(" ".join(sys.argv[1:]) or "schema change")
