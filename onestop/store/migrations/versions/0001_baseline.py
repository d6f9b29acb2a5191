"""The tables as onestop 0.1 created them, before the schema was versioned.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

A database written by that release has these tables and no version table: opening it
stamps it at this revision, then the later migrations run.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "onestop_specs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("process_id", sa.String(200), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("loaded_at", sa.BigInteger, nullable=False))
    op.create_table(
        "onestop_officers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False))
    op.create_table(
        "onestop_officer_roles",
        sa.Column("officer_id", sa.String(100), sa.ForeignKey("onestop_officers.id"),
                  primary_key=True),
        sa.Column("agency", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(100), primary_key=True))
    op.create_table(
        "onestop_counters",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False))
    op.create_table(
        "onestop_dossiers",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(120), nullable=False),
        sa.Column("procedure", sa.String(64), nullable=False),
        sa.Column("spec_id", sa.Integer, sa.ForeignKey("onestop_specs.id"), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("channel", sa.SmallInteger, nullable=False),
        sa.Column("desk_agency", sa.String(100), nullable=False),
        sa.Column("resolving_agency", sa.String(100), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("received_by", sa.String(100), nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("regime", sa.String(20), nullable=False),
        sa.Column("appointment_at", sa.BigInteger, nullable=True),
        sa.Column("paused_at", sa.BigInteger, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint("code", name="uq_onestop_dossiers_code"))
    op.create_index("ix_onestop_dossiers_status", "onestop_dossiers", ["status"])
    op.create_table(
        "onestop_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dossier_id", _ID, sa.ForeignKey("onestop_dossiers.id"), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("agency", sa.String(100), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("ready_at", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False)
    op.create_index("ix_onestop_tasks_inbox", "onestop_tasks", ["agency", "role"])
    op.create_index("ix_onestop_tasks_dossier", "onestop_tasks", ["dossier_id"])
    op.create_table(
        "onestop_timers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dossier_id", _ID, sa.ForeignKey("onestop_dossiers.id"), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False)
    op.create_index("ix_onestop_timers_due", "onestop_timers", ["due_at"])
    op.create_table(
        "onestop_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dossier_id", _ID, sa.ForeignKey("onestop_dossiers.id"), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("step", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(100), nullable=True),
        sa.Column("agency", sa.String(100), nullable=True),
        sa.Column("detail", sa.Text, nullable=True))
    op.create_index("ix_onestop_events_dossier", "onestop_events", ["dossier_id"])


def downgrade() -> None:
    for table in ("onestop_events", "onestop_timers", "onestop_tasks", "onestop_dossiers",
                  "onestop_counters", "onestop_officer_roles", "onestop_officers",
                  "onestop_specs"):
        op.drop_table(table)
