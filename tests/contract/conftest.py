"""One storage contract, every adapter: memory, SQLite (a migrated file) and PostgreSQL.

PostgreSQL runs when BHARATSEND_TEST_POSTGRES_URL is set: each test gets a
schema of its own, migrated, and dropped (CASCADE) afterwards, so the suite
can run again and again on the same server.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bharatsend_core.adapters.memory import MemoryStorage
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.ports.storage import Storage

BACKENDS = ["memory", "sqlite", "postgres"]
SQL_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated once; each test copies it (migrating costs ~70 ms, a copy ~1)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    storage = SqlStorage.from_url(f"sqlite:///{path}")
    storage.migrate()
    storage.close()  # the last connection to close folds the WAL into the file
    return path


def open_storage(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, migrated storage of ``kind``, closed (and for PostgreSQL dropped) afterwards."""
    if kind == "memory":
        memory = MemoryStorage()
        yield memory
        memory.close()
    elif kind == "sqlite":
        path = tmp_path / "contract.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        sqlite = SqlStorage.from_url(f"sqlite:///{path}")
        sqlite.migrate()  # already at head: proves re-running is harmless, costs ~3 ms
        yield sqlite
        sqlite.close()
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema = f"bs_contract_{uuid.uuid4().hex[:16]}"
        postgres = SqlStorage.from_url(url, schema=schema)
        try:
            postgres.migrate()
            yield postgres
        finally:
            postgres.close()
            admin = sa.create_engine(url, poolclass=NullPool)
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.dispose()


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """Every adapter in turn."""
    yield from open_storage(request.param, request, tmp_path)


@pytest.fixture(params=SQL_BACKENDS)
def sql_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStorage]:
    """The database adapters, for races between connections and database failures."""
    for opened in open_storage(request.param, request, tmp_path):
        assert isinstance(opened, SqlStorage)
        yield opened
