"""restricted postmortems: the group a postmortem is restricted to, on the postmortem, its action
items and its search documents (lists filter in SQL), and the people on each restricted one

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_TABLES = ("postmortems", "action_items", "search_documents")


def upgrade() -> None:
    # A nullable column added in place (no batch copy): search_documents keeps SQLite's FTS5
    # triggers (storage/search.py). Existing rows are unrestricted, as their postmortems are.
    for table in _TABLES:
        op.add_column(table, sa.Column("restricted_to", sa.String(length=64), nullable=True))
        op.create_index(f"ix_{table}_restricted_to", table, ["restricted_to"])
    op.create_table(
        "postmortem_readers",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "person"),
    )
    op.create_index("ix_postmortem_readers_person", "postmortem_readers", ["person"])


def downgrade() -> None:
    op.drop_index("ix_postmortem_readers_person", table_name="postmortem_readers")
    op.drop_table("postmortem_readers")
    for table in reversed(_TABLES):
        op.drop_index(f"ix_{table}_restricted_to", table_name=table)
        # SQLite drops a column in place (3.35+); a batch copy would lose the FTS5 triggers.
        op.drop_column(table, "restricted_to")
