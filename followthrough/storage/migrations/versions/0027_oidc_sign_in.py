"""signing in through an identity provider (OpenID Connect): sign-ins under way (state, nonce,
PKCE verifier), sessions opened without an API token (their ID token kept for the provider's
logout), and the roles each person's provider groups granted at their last sign-in

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-03 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_sign_ins",
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("browser_hash"),
    )
    op.create_index("ix_oidc_sign_ins_expires_at", "oidc_sign_ins", ["expires_at"])
    op.create_table(
        "sign_in_roles",
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("reviewer", sa.Boolean(), nullable=False),
        sa.Column("council", sa.Boolean(), nullable=False),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person"),
    )
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column("id_token", sa.Text(), nullable=True))


def downgrade() -> None:
    # Sessions opened through the provider have no token to fall back on: they end.
    op.execute("DELETE FROM dashboard_sessions WHERE token_hash IS NULL")
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.drop_column("id_token")
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=False)
    op.drop_table("sign_in_roles")
    op.drop_index("ix_oidc_sign_ins_expires_at", table_name="oidc_sign_ins")
    op.drop_table("oidc_sign_ins")
