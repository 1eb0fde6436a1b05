"""Storage: SQLAlchemy 2 async on SQLite (default) or PostgreSQL, with Alembic migrations. See docs/storage.md."""
