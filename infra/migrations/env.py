"""Alembic environment: runs migrations on the engine ``infra.migrate`` hands
over through ``config.attributes``."""

from alembic import context

from infra.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
