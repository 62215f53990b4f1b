"""The queryable record: SQLAlchemy 2 over SQLite (embedded default) or PostgreSQL."""

from followthrough.storage.store import Store

__all__ = ["Store"]
