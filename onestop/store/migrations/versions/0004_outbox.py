"""The outbox: what the national portal must be told.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Each receipt, status change and appointment change writes a message here in the same
transaction (onestop.rules.sync); a worker reads the pending ones and marks them sent.
Dossiers of an earlier release get no backlog: their history is in the event log.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "onestop_outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dossier_id", _ID, sa.ForeignKey("onestop_dossiers.id"), nullable=False),
        sa.Column("key", sa.String(160), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_onestop_outbox_pending", "onestop_outbox", ["id"],
                    sqlite_where=sa.text("sent_at IS NULL"),
                    postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_onestop_outbox_pending", "onestop_outbox")
    op.drop_table("onestop_outbox")
