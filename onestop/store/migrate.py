"""The schema of onestop's tables, versioned and migrated with Alembic.

Opening a store brings its database to the newest revision, in one transaction that
other engines opening the same database wait for (SQLite's write lock, PostgreSQL's
advisory lock):

* a new database gets the tables and is stamped at the newest revision;
* a database written by onestop 0.1 (tables, but no version table) is stamped at the
  baseline revision, then upgraded;
* a database at an older revision is upgraded; one at the newest is left alone (one
  query, so opening an engine stays cheap).

``onestop db upgrade DATABASE`` does the same from the command line. The revisions are in
``onestop/store/migrations/versions``; the version table is ``onestop_alembic_version``,
so a portal's own Alembic history in the same database is left alone.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from ..errors import StoreError
from . import schema

#: Alembic's version table for onestop's tables.
VERSION_TABLE = "onestop_alembic_version"
#: The revisions this release knows, oldest first; the newest, and the one a database
#: written before revisions existed (onestop 0.1) is at.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD, BASELINE = REVISIONS[-1], REVISIONS[0]
_LOCK_KEY = 0x6F6E6573746F70          # "onestop": PostgreSQL's advisory lock for the schema
_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def current(conn: Connection) -> str | None:
    """The revision the database is at: None for a database without onestop's tables,
    ``"0001"`` for one written before revisions existed."""
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE in tables:
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        if found is not None:
            return str(found)
    return BASELINE if "onestop_dossiers" in tables else None


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Bring the database behind ``conn`` (in a transaction) to :data:`HEAD`; returns
    the revisions before and after."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    before = current(conn)
    if before == HEAD:
        return before, HEAD
    if before is not None and before not in REVISIONS:
        raise StoreError(f"the database's schema is at revision {before}, which this "
                         f"release of onestop does not know (its newest is {HEAD}): it was "
                         f"written by a newer onestop; upgrade onestop to use it")
    if before is None:
        schema.metadata.create_all(conn)
        _alembic("stamp", conn, HEAD)
    else:
        if before == BASELINE and VERSION_TABLE not in inspect(conn).get_table_names():
            _alembic("stamp", conn, BASELINE)
        _alembic("upgrade", conn, HEAD)
    return before, HEAD


def _alembic(command_name: str, conn: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = conn
    getattr(command, command_name)(config, revision)
