"""The Alembic migrations build exactly ``tables.metadata``, and migrating again changes nothing.

Runs on SQLite always and on PostgreSQL when BHARATSEND_TEST_POSTGRES_URL is
set (each PostgreSQL test in a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.pool import NullPool

from bharatsend_core.adapters.sqlalchemy import SqlStorage, metadata
from bharatsend_core.adapters.sqlalchemy.storage import MIGRATIONS_DIR, VERSION_TABLE
from bharatsend_core.domain.ledger import REVENUE_ACCOUNT, TOPUPS_ACCOUNT


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStorage]:
    """A storage on an empty database (not migrated yet)."""
    if request.param == "sqlite":
        store = SqlStorage.from_url(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield store
        store.close()
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"bs_migrations_{uuid.uuid4().hex[:12]}"
    store = SqlStorage.from_url(url, schema=schema)
    try:
        yield store
    finally:
        store.close()
        admin = sa.create_engine(url, poolclass=NullPool)
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def schema_diff(store: SqlStorage) -> list[Any]:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, metadata))


def schema_snapshot(store: SqlStorage) -> list[Any]:
    """The database's own definition of every table, index and constraint."""
    if store.engine.dialect.name == "sqlite":
        query = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    else:
        query = """
            SELECT 'column', table_name || '.' || column_name, data_type || is_nullable
              FROM information_schema.columns WHERE table_schema = current_schema()
            UNION ALL
            SELECT 'index', indexname, indexdef FROM pg_indexes
             WHERE schemaname = current_schema()
            UNION ALL
            SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE connamespace = current_schema()::regnamespace
            ORDER BY 1, 2
        """
    with store.engine.connect() as connection:
        return list(connection.exec_driver_sql(query).all())


def test_migrated_schema_equals_the_tables_module(storage: SqlStorage) -> None:
    storage.migrate()
    assert schema_diff(storage) == []


def test_an_empty_database_differs_from_the_tables_module(storage: SqlStorage) -> None:
    """The comparison above can fail: without migrating, every table is missing."""
    added = {diff[1].name for diff in schema_diff(storage) if diff[0] == "add_table"}
    assert added == set(metadata.tables)


def test_migrating_twice_changes_nothing(storage: SqlStorage) -> None:
    storage.migrate()
    before = schema_snapshot(storage)
    with storage.engine.connect() as connection:
        accounts = connection.exec_driver_sql("SELECT * FROM ledger_accounts ORDER BY id").all()
        version = connection.exec_driver_sql(f"SELECT * FROM {VERSION_TABLE}").all()
    storage.migrate()
    assert schema_snapshot(storage) == before
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT * FROM ledger_accounts ORDER BY id").all() == (
            accounts
        )
        assert connection.exec_driver_sql(f"SELECT * FROM {VERSION_TABLE}").all() == version
    assert version == [("0005",)]


def test_migrate_creates_the_system_ledger_accounts(storage: SqlStorage) -> None:
    storage.migrate()
    with storage.unit_of_work() as uow:
        ids = [balance.account_id for balance in uow.ledger.balances()]
    assert ids == sorted([REVENUE_ACCOUNT, TOPUPS_ACCOUNT])


def test_the_version_table_is_ours_and_lives_in_our_schema(storage: SqlStorage) -> None:
    """A host application's own ``alembic_version`` is never touched."""
    storage.migrate()
    names = set(sa.inspect(storage.engine).get_table_names())
    assert VERSION_TABLE in names
    assert "alembic_version" not in names


def test_downgrade_to_base_removes_every_table(storage: SqlStorage) -> None:
    storage.migrate()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(version_table=VERSION_TABLE, schema=None)
    with storage.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(sa.inspect(storage.engine).get_table_names()) == {VERSION_TABLE}


def test_sqlite_keeps_text_keyed_tables_without_rowid(tmp_path: Path) -> None:
    """Fewer B-trees per commit: only the ledger's transfers keep a rowid (their sequence)."""
    store = SqlStorage.from_url(f"sqlite:///{tmp_path / 'rowid.db'}")
    store.migrate()
    with store.engine.connect() as connection:
        ddl = dict(
            connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            ).all()
        )
    store.close()
    with_rowid = {name for name in metadata.tables if "WITHOUT ROWID" not in ddl[name]}
    assert with_rowid == {"ledger_transfers"}


def test_concurrent_postgres_migrations_serialise(postgres_url: str) -> None:
    """Two processes starting at once both succeed: the advisory lock queues the second."""
    import threading

    schema = f"bs_migrations_{uuid.uuid4().hex[:12]}"
    stores = [SqlStorage.from_url(postgres_url, schema=schema) for _ in range(2)]
    errors: list[BaseException] = []

    def run(store: SqlStorage) -> None:
        try:
            store.migrate()
        except BaseException as e:  # pragma: no cover - the failure is the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert schema_diff(stores[0]) == []
    finally:
        for store in stores:
            store.close()
        admin = sa.create_engine(postgres_url, poolclass=NullPool)
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def test_migrated_indexes_and_constraints_match_create_all_to_the_letter(
    storage: SqlStorage, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What ``compare_metadata`` does not look at: partial-index predicates, index
    column order and direction, and the database's own spelling of each definition."""
    storage.migrate()
    if storage.engine.dialect.name == "sqlite":
        twin = SqlStorage.from_url(f"sqlite:///{tmp_path / 'create_all.db'}")
    else:
        schema = f"bs_create_all_{uuid.uuid4().hex[:12]}"
        twin = SqlStorage.from_url(request.getfixturevalue("postgres_url"), schema=schema)
        with twin.engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        with twin.engine.begin() as connection:
            metadata.create_all(connection)
        ours = [row for row in schema_snapshot(storage) if VERSION_TABLE not in str(row)]
        theirs = schema_snapshot(twin)
        if storage.engine.dialect.name == "sqlite":
            # SQLite keeps each CREATE as typed; compare indexes (one-line DDL) and
            # the tables' shape through PRAGMAs instead of their whitespace.
            ours = [row for row in ours if row[0] == "index"]
            theirs = [row for row in theirs if row[0] == "index"]
        else:
            ours = [tuple(str(v).replace(str(storage._schema), "S") for v in r) for r in ours]
            theirs = [tuple(str(v).replace(str(twin._schema), "S") for v in r) for r in theirs]
        assert ours == theirs
    finally:
        if twin.engine.dialect.name == "postgresql":
            with twin.engine.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA "{twin._schema}" CASCADE')
        twin.close()
