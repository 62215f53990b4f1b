"""publications: where each postmortem is published (its Confluence page), or why it was refused

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 13:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("space", sa.String(length=255), nullable=True),
        sa.Column("page_id", sa.String(length=50), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id"),
    )


def downgrade() -> None:
    op.drop_table("publications")
