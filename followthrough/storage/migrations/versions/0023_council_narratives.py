"""council narratives: the council's own words on a quarter, written in the browser, in its report

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 13:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "council_narratives",
        sa.Column("quarter", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("written_by", sa.String(length=128), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("quarter"),
    )


def downgrade() -> None:
    op.drop_table("council_narratives")
