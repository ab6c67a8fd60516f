"""Alembic environment, run in-process by ``SqlStorage.migrate()`` (no alembic.ini).

``migrate()`` opens the transaction, takes the migration lock, and hands its
connection over in ``config.attributes``; this script only points Alembic at
our metadata, our version table and, on PostgreSQL, our schema.
"""

from __future__ import annotations

from alembic import context

from bharatsend_core.adapters.sqlalchemy.tables import metadata
from bharatsend_core.domain.errors import ConfigurationError


def run_migrations() -> None:
    """Upgrade on the connection ``SqlStorage.migrate()`` passed in."""
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is None:
        raise ConfigurationError(
            "bharatsend-core migrations run through SqlStorage.migrate()"
            " (or `bharatsend db upgrade`), which supplies the database connection"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=attributes["version_table"],
        # With a schema, search_path already points there; naming it makes
        # Alembic create its version table there too, explicitly.
        version_table_schema=attributes.get("schema"),
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
