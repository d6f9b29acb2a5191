"""Alembic's entry point for onestop's own tables: migrations run on the connection the
store hands over (see :mod:`onestop.store.migrate`), never from a configuration file."""

from alembic import context

from onestop.store.migrate import VERSION_TABLE
from onestop.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
