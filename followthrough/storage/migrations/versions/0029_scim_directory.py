"""the directory the identity provider provisions over SCIM: users, groups, the departures whose
open items are handed to their managers, and one version number the processes check

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("user_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("manager", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person"),
        sa.UniqueConstraint("user_name_key"),
    )
    op.create_index("ix_scim_users_external_id", "scim_users", ["external_id"])
    op.create_table(
        "scim_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("display_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("display_key"),
    )
    op.create_index("ix_scim_groups_external_id", "scim_groups", ["external_id"])
    op.create_table(
        "scim_departures",
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("manager", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("person"),
    )
    op.create_table(
        "scim_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("scim_state")
    op.drop_table("scim_departures")
    op.drop_index("ix_scim_groups_external_id", table_name="scim_groups")
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_external_id", table_name="scim_users")
    op.drop_table("scim_users")
