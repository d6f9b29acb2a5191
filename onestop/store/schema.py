"""Tables of the onestop store (SQLAlchemy Core).

Every table is prefixed ``onestop_`` so the store can share a database with a portal's own
tables. Instants are stored as integer microseconds since the Unix epoch (UTC): compact,
ordered, and the same on SQLite and PostgreSQL. JSON is stored as UTF-8 text without
escaping, so Vietnamese reads as written in any SQL client.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_micros(value: datetime | None) -> int | None:
    """An aware instant as the integer the store keeps: microseconds since the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    """The UTC instant of a stored microsecond count."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


class Instant(TypeDecorator[datetime]):
    """A timezone-aware instant stored as microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        """The instant as stored: microseconds since the epoch."""
        return to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        """The stored microseconds as an aware UTC instant."""
        return from_micros(value)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonText(TypeDecorator[Any]):
    """JSON as readable UTF-8 text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """The value as compact UTF-8 JSON text."""
        if value is None:
            return None
        return _JSON(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """The stored JSON text, decoded."""
        return None if value is None else json.loads(value)


_ID = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()

specs = Table(
    "onestop_specs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("process_id", String(200), nullable=False),
    Column("file", String(500), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("loaded_at", Instant, nullable=False),
    # The preset dictionary the model's workflow states are compressed with (data: a
    # change to how it is derived must not make stored states unreadable).
    Column("dictionary", LargeBinary, nullable=True),
)

officers = Table(
    "onestop_officers", metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
)

officer_roles = Table(
    "onestop_officer_roles", metadata,
    Column("officer_id", String(100), ForeignKey("onestop_officers.id"), primary_key=True),
    Column("agency", String(100), primary_key=True),
    Column("role", String(100), primary_key=True),
)

counters = Table(
    "onestop_counters", metadata,
    Column("key", String(120), primary_key=True),
    Column("value", Integer, nullable=False),
)

dossiers = Table(
    "onestop_dossiers", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("code", String(120), nullable=False),
    Column("procedure", String(64), nullable=False),
    Column("spec_id", Integer, ForeignKey("onestop_specs.id"), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("channel", SmallInteger, nullable=False),
    Column("desk_agency", String(100), nullable=False),
    Column("resolving_agency", String(100), nullable=False),
    Column("received_at", Instant, nullable=False),
    Column("received_by", String(100), nullable=False),
    Column("finished_at", Instant, nullable=True),
    Column("regime", String(20), nullable=False),
    Column("appointment_at", Instant, nullable=True),
    # Set while the service-level clock is paused (supplement requested during resolution).
    Column("paused_at", Instant, nullable=True),
    Column("version", Integer, nullable=False),
    Column("info", JsonText, nullable=False),
    Column("state", LargeBinary, nullable=True),
    # What reports count, folded from the dossier's event log by the command that writes
    # the events (onestop.rules.facts): reports are aggregates over these columns.
    Column("applicant_id", String(40), nullable=True),
    Column("due_at", Instant, nullable=True),
    Column("resolved_at", Instant, nullable=True),
    Column("mark", SmallInteger, nullable=True),
    Column("worked", Integer, nullable=True),
    Column("pause_work", Integer, nullable=False, server_default="0"),
    Column("apology", SmallInteger, nullable=False, server_default="0"),
    Column("flags", SmallInteger, nullable=False, server_default="0"),
    Column("rating", SmallInteger, nullable=True),
    # The version of the fold that wrote them (0: not yet; refolded when the engine opens).
    Column("facts_version", SmallInteger, nullable=False, server_default="0"),
    UniqueConstraint("code", name="uq_onestop_dossiers_code"),
)
Index("ix_onestop_dossiers_applicant", dossiers.c.applicant_id)
Index("ix_onestop_dossiers_received", dossiers.c.received_at)

# Open tasks only: the runtime work queue behind officers' inboxes. A task's row is
# deleted when it completes or is cancelled; its history is in the event log.
tasks = Table(
    "onestop_tasks", metadata,
    Column("id", String(36), primary_key=True),
    Column("dossier_id", _ID, ForeignKey("onestop_dossiers.id"), nullable=False),
    Column("step", String(200), nullable=False),
    Column("role", String(100), nullable=False),
    Column("agency", String(100), nullable=False),
    Column("claimed_by", String(100), nullable=True),
    Column("ready_at", Instant, nullable=False),
    Column("due_at", Instant, nullable=True),
    # Keyed by the task id itself: one B-tree less to write on every command.
    sqlite_with_rowid=False,
)
Index("ix_onestop_tasks_inbox", tasks.c.agency, tasks.c.role)
Index("ix_onestop_tasks_dossier", tasks.c.dossier_id)

# Waiting timer events, keyed by their task id. A sweep reads the due ones through the
# index on due_at (NULL: not scheduled, e.g. while the service-level clock is paused), so
# its cost follows the number of due timers, not the number of open dossiers.
timers = Table(
    "onestop_timers", metadata,
    Column("id", String(36), primary_key=True),
    Column("dossier_id", _ID, ForeignKey("onestop_dossiers.id"), nullable=False),
    Column("step", String(200), nullable=False),
    Column("due_at", Instant, nullable=True),
    sqlite_with_rowid=False,
)
Index("ix_onestop_timers_due", timers.c.due_at)

events = Table(
    "onestop_events", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("dossier_id", _ID, ForeignKey("onestop_dossiers.id"), nullable=False),
    Column("at", Instant, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("step", String(200), nullable=True),
    Column("actor", String(100), nullable=True),
    Column("agency", String(100), nullable=True),
    Column("detail", JsonText, nullable=True),
    # The schema version of the payload in ``detail`` (see onestop.events).
    Column("version", SmallInteger, nullable=False, server_default="1"),
)
Index("ix_onestop_events_dossier", events.c.dossier_id)

# What the national portal must be told, written with the change it reports (see
# onestop.rules.sync); a worker reads the pending ones and marks them sent.
outbox = Table(
    "onestop_outbox", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("dossier_id", _ID, ForeignKey("onestop_dossiers.id"), nullable=False),
    # Idempotency key: the dossier's code, its version after the command, the message's
    # place among the command's.
    Column("key", String(160), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("at", Instant, nullable=False),
    Column("payload", JsonText, nullable=False),
    Column("sent_at", Instant, nullable=True),
)
Index("ix_onestop_outbox_pending", outbox.c.id, sqlite_where=outbox.c.sent_at.is_(None),
      postgresql_where=outbox.c.sent_at.is_(None))
Index("ix_onestop_events_at", events.c.at)

# Applicants' feedback and petitions (phản ánh, kiến nghị) on a dossier, numbered within
# it: when each came, its due instant, when it was answered and how the applicant rated
# the answer. The events say the same; this table lets the index count them by period.
feedback = Table(
    "onestop_feedback", metadata,
    Column("dossier_id", _ID, ForeignKey("onestop_dossiers.id"), primary_key=True),
    Column("number", SmallInteger, primary_key=True, autoincrement=False),
    Column("kind", String(20), nullable=False),
    Column("received_at", Instant, nullable=False),
    Column("due_at", Instant, nullable=False),
    Column("answered_at", Instant, nullable=True),
    Column("rating", SmallInteger, nullable=True),
)
Index("ix_onestop_feedback_received", feedback.c.received_at)
