"""Alembic environment: the engine comes from the caller (see stellarstack.panel.db.migrate)."""

from __future__ import annotations

from alembic import context

import stellarstack.panel.db.models  # noqa: F401  (registers every table)
from stellarstack.panel.db.base import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
