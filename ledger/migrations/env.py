"""Alembic environment for the ledger's tables, versioned apart from the control store's."""

from alembic import context

from ledger.store import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
