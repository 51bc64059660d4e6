"""The panel's own data: SQLAlchemy 2 models, the engine, and Alembic migrations."""
