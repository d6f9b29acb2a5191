"""What reports count: the dossiers' facts, and the applicants' feedback.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Each dossier row gains the facts reports aggregate (onestop.rules.facts), folded from
its event log: the engine folds them for every dossier whose ``facts_version`` is older
than its own when it opens the store, so a database of the previous release is filled
in from its log. ``onestop_feedback`` lists the applicants' feedback and petitions.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

_FACTS = (
    ("applicant_id", sa.String(40), None),
    ("due_at", sa.BigInteger, None),
    ("resolved_at", sa.BigInteger, None),
    ("mark", sa.SmallInteger, None),
    ("worked", sa.Integer, None),
    ("pause_work", sa.Integer, "0"),
    ("apology", sa.SmallInteger, "0"),
    ("flags", sa.SmallInteger, "0"),
    ("rating", sa.SmallInteger, None),
    ("facts_version", sa.SmallInteger, "0"),
)


def upgrade() -> None:
    with op.batch_alter_table("onestop_dossiers") as table:
        for name, kind, default in _FACTS:
            table.add_column(sa.Column(name, kind, nullable=default is None,
                                       server_default=default))
    op.create_index("ix_onestop_dossiers_applicant", "onestop_dossiers", ["applicant_id"])
    op.create_index("ix_onestop_dossiers_received", "onestop_dossiers", ["received_at"])
    op.create_table(
        "onestop_feedback",
        sa.Column("dossier_id", _ID, sa.ForeignKey("onestop_dossiers.id"), primary_key=True),
        sa.Column("number", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("answered_at", sa.BigInteger, nullable=True),
        sa.Column("rating", sa.SmallInteger, nullable=True),
    )
    op.create_index("ix_onestop_feedback_received", "onestop_feedback", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_onestop_feedback_received", "onestop_feedback")
    op.drop_table("onestop_feedback")
    op.drop_index("ix_onestop_dossiers_received", "onestop_dossiers")
    op.drop_index("ix_onestop_dossiers_applicant", "onestop_dossiers")
    with op.batch_alter_table("onestop_dossiers") as table:
        for name, _kind, _default in reversed(_FACTS):
            table.drop_column(name)
