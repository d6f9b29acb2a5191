"""Versioned event payloads, a self-sufficient receipt event, the state dictionary as data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

* ``onestop_events.version``: the schema version of each payload (1: as written before
  this revision; 2: the typed payloads of :mod:`onestop.events`), and an index on the
  instant, for reading events across dossiers by period.
* ``received`` events of earlier dossiers get what the receipt now records, from the
  dossier row: the applicant, the resolving agency, the agencies by slot, the regime and
  the model (``to_digitize``, ``missing`` and ``fee_due`` were not kept: null).
* ``onestop_specs.dictionary``: the preset dictionary each model's workflow states are
  compressed with, stored once so a later change to how it is derived cannot make old
  states unreadable. Filled here the way onestop 0.1 derived it.
"""

import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_events = sa.table("onestop_events", sa.column("id", sa.BigInteger),
                   sa.column("dossier_id", sa.BigInteger), sa.column("kind", sa.String),
                   sa.column("detail", sa.Text), sa.column("version", sa.SmallInteger))
_dossiers = sa.table("onestop_dossiers", sa.column("id", sa.BigInteger),
                     sa.column("spec_id", sa.Integer), sa.column("resolving_agency", sa.String),
                     sa.column("regime", sa.String), sa.column("info", sa.Text))
_specs = sa.table("onestop_specs", sa.column("id", sa.Integer), sa.column("hash", sa.String),
                  sa.column("body", sa.LargeBinary), sa.column("dictionary", sa.LargeBinary))

#: How onestop 0.1 compressed states: the task names of the model, then the skeleton every
#: state shares (frozen here: this is the data old states need).
_SKELETON = ('"format":3,"events":[],"subprocesses":{"root":0,"last":,"data":{},'
             '"success":true,"completed":false,"correlations":{},"tasks":[[')


def _dictionary(body: bytes) -> bytes:
    document = json.loads(zlib.decompress(body))
    names = set(document["spec"]["task_specs"])
    for sub in document["subprocess_specs"].values():
        names.update(sub["task_specs"])
    return ("".join(f'"{name}",' for name in sorted(names)) + _SKELETON).encode("utf-8")


def upgrade() -> None:
    with op.batch_alter_table("onestop_events") as batch:
        batch.add_column(sa.Column("version", sa.SmallInteger, nullable=False,
                                   server_default="1"))
    op.create_index("ix_onestop_events_at", "onestop_events", ["at"])
    with op.batch_alter_table("onestop_specs") as batch:
        batch.add_column(sa.Column("dictionary", sa.LargeBinary, nullable=True))
    bind = op.get_bind()
    for spec_id, body in bind.execute(sa.select(_specs.c.id, _specs.c.body)).all():
        bind.execute(_specs.update().where(_specs.c.id == spec_id)
                     .values(dictionary=_dictionary(bytes(body))))
    rows = bind.execute(
        sa.select(_events.c.id, _events.c.detail, _dossiers.c.resolving_agency,
                  _dossiers.c.regime, _dossiers.c.info, _specs.c.hash)
        .select_from(_events.join(_dossiers, _dossiers.c.id == _events.c.dossier_id)
                     .join(_specs, _specs.c.id == _dossiers.c.spec_id))
        .where(_events.c.kind == "received")).all()
    for event_id, detail, resolver, regime, info, spec_hash in rows:
        found = json.loads(detail) if detail else {}
        facts = json.loads(info) if info else {}
        found.update({"applicant": facts.get("applicant", {}), "resolving_agency": resolver,
                      "agencies": facts.get("agencies", {}), "regime": regime,
                      "model": spec_hash, "to_digitize": None, "missing": None,
                      "fee_due": None})
        bind.execute(_events.update().where(_events.c.id == event_id).values(
            detail=json.dumps(found, ensure_ascii=False, separators=(",", ":")), version=2))


def downgrade() -> None:
    with op.batch_alter_table("onestop_specs") as batch:
        batch.drop_column("dictionary")
    op.drop_index("ix_onestop_events_at", "onestop_events")
    with op.batch_alter_table("onestop_events") as batch:
        batch.drop_column("version")
