"""No index on the dossiers' status.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Nothing reads dossiers by status (reports read the event log), and every command
rewrote the index's page: one page less per commit.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_onestop_dossiers_status", "onestop_dossiers")


def downgrade() -> None:
    op.create_index("ix_onestop_dossiers_status", "onestop_dossiers", ["status"])
