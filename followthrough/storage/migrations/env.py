"""Alembic environment: runs online against the URL the caller configured."""

from alembic import context

from followthrough.storage.database import make_engine
from followthrough.storage.tables import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by followthrough.storage.migrate"
engine = make_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
