"""PostgreSQL keeps the statements psycopg prepared across units of work.

psycopg prepares a statement on a connection once it ran five times there,
and forgets every one on a rollback. The worker's idle reads (the next due
row, parked receipts, webhooks) end without a commit; when that meant a
rollback, each of them cleared its connection's statements, and the claims,
records and receipt batches that followed on that connection were parsed and
planned again. A unit of work that only read now ends with COMMIT, and the
pool hands out the connection used last, so its statements stay warm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.adapters.sqlalchemy.storage import SqlUnitOfWork
from bharatsend_core.domain.tenants import Tenant

from ..contract.builders import tenant


def prepared_here(uow: SqlUnitOfWork) -> int:
    """How many statements the unit's connection holds prepared on the server."""
    assert uow._db is not None
    cursor = uow._db.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    row = cursor.fetchone()
    cursor.close()
    return int(row[0])


def stored(storage: SqlStorage) -> Tenant:
    """A tenant committed to ``storage``."""
    added = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(added)
        uow.commit()
    return added


def warm(storage: SqlStorage, tenant_id: str) -> None:
    """Run one read often enough, commit by commit, for psycopg to prepare it."""
    for _ in range(8):
        with storage.unit_of_work() as uow:
            assert uow.tenants.get(tenant_id) is not None
            uow.commit()


def test_a_read_only_unit_of_work_keeps_the_prepared_statements(
    sql_storage_factory: Callable[[str], SqlStorage],
) -> None:
    storage = sql_storage_factory("postgres")
    added = stored(storage)
    warm(storage, added.id)
    for _ in range(3):
        with storage.unit_of_work() as uow:  # read, then leave without commit
            assert uow.tenants.get(added.id) == added
    with storage.unit_of_work() as uow:
        assert prepared_here(uow) >= 1


def test_a_unit_that_wrote_and_did_not_commit_still_rolls_back(
    sql_storage_factory: Callable[[str], SqlStorage],
) -> None:
    storage = sql_storage_factory("postgres")
    kept, dropped = stored(storage), tenant()
    warm(storage, kept.id)
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(kept.id) == kept
        uow.tenants.add(dropped)  # a write: the block's end must discard it
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(dropped.id) is None
        assert uow.tenants.get(kept.id) == kept


def test_a_read_that_raised_rolls_back_and_the_connection_serves_again(
    sql_storage_factory: Callable[[str], SqlStorage],
) -> None:
    storage = sql_storage_factory("postgres")
    added = stored(storage)

    class Boom(Exception):
        pass

    try:
        with storage.unit_of_work() as uow:
            uow.tenants.get(added.id)
            raise Boom
    except Boom:
        pass
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) == added


def test_prepare_threshold_none_in_the_url_prepares_nothing(
    sql_storage_factory: Callable[[str], SqlStorage], postgres_url: str
) -> None:
    # PgBouncer in transaction mode before 1.21 cannot carry prepared statements.
    base = sql_storage_factory("postgres")  # migrated, in its own schema
    storage = SqlStorage.from_url(f"{postgres_url}?prepare_threshold=none", schema=base.schema)
    try:
        added = stored(storage)
        warm(storage, added.id)
        with storage.unit_of_work() as uow:
            assert prepared_here(uow) == 0
            assert uow._db is not None
            driver: Any = uow._db.connection.connection.driver_connection
            assert driver.prepare_threshold is None
    finally:
        storage.close()
