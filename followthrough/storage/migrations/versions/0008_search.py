"""search: documents for full-text search over postmortems, action items and factors

PostgreSQL: a weighted tsvector column (title A, body B, 'english') with a GIN index; '<' is read
as a blank, so text like "<script>" is indexed as words, not skipped as an HTML tag (as on SQLite).
SQLite: an FTS5 index ('porter unicode61') with search_documents as its external content, kept in
step by triggers (a rewrite deletes by rowid, never by scanning the index).
Existing postmortems and action items get their documents from their stored snapshots.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:30:00
"""

import sqlalchemy as sa
from alembic import op

from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.storage.search import (
    SearchDocument,
    action_item_document,
    postmortem_documents,
    write_documents,
)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_POSTGRES = (
    """
    ALTER TABLE search_documents ADD COLUMN document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', replace(title, '<', ' ')), 'A') ||
        setweight(to_tsvector('english', replace(body, '<', ' ')), 'B')
    ) STORED
    """,
    "CREATE INDEX ix_search_documents_document ON search_documents USING GIN (document)",
)

_SQLITE = (
    """
    CREATE VIRTUAL TABLE search_fts USING fts5(
        title, body, content='search_documents', content_rowid='id',
        tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN
        INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
    """
    CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    END
    """,
    """
    CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        # Exactly INTEGER: on SQLite the rowid itself, which FTS5 keys its entries by.
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref_id", sa.String(length=240), nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("source_seq", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref_id", name="uq_search_documents_kind_ref_id"),
    )
    op.create_index("ix_search_documents_postmortem_id", "search_documents", ["postmortem_id"])
    statements = _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)
    _fill_from_snapshots()


def _fill_from_snapshots() -> None:
    connection = op.get_bind()
    postmortems = sa.table("postmortems", sa.column("id", sa.String), sa.column("data", sa.JSON))
    items = sa.table("action_items", sa.column("id", sa.String), sa.column("data", sa.JSON))
    batch: list[SearchDocument] = []
    for data in connection.scalars(sa.select(postmortems.c.data).order_by(postmortems.c.id)):
        batch += postmortem_documents(Postmortem.model_validate(data))
        batch = _flushed(connection, batch)
    for data in connection.scalars(sa.select(items.c.data).order_by(items.c.id)):
        batch.append(action_item_document(ActionItem.model_validate(data)))
        batch = _flushed(connection, batch)
    write_documents(connection, batch)


def _flushed(connection: sa.Connection, batch: list[SearchDocument]) -> list[SearchDocument]:
    if len(batch) < 1000:
        return batch
    write_documents(connection, batch)
    return []


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("search_documents_ai", "search_documents_ad", "search_documents_au"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE search_fts")
    else:
        op.drop_index("ix_search_documents_document", table_name="search_documents")
    op.drop_index("ix_search_documents_postmortem_id", table_name="search_documents")
    op.drop_table("search_documents")
