"""A unit of work is one transaction: explicit commit, rollback by default, our errors only."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.adapters.sqlalchemy.storage import DEFAULT_POOL_SIZE, _prepare_threshold
from bharatsend_core.domain.errors import ConfigurationError, StorageUnavailable
from bharatsend_core.domain.ledger import REVENUE_ACCOUNT, TOPUPS_ACCOUNT
from bharatsend_core.ports.storage import Storage

from .builders import new_id, tenant


def test_uncommitted_work_is_rolled_back_when_the_block_ends(storage: Storage) -> None:
    added = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(added)
        assert uow.tenants.get(added.id) == added  # a unit of work sees its own writes
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) is None


def test_committed_work_is_visible_to_the_next_unit_of_work(storage: Storage) -> None:
    added = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(added)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) == added


def test_an_exception_in_the_block_rolls_back_and_propagates(storage: Storage) -> None:
    added = tenant()

    class Boom(Exception):
        pass

    def fail() -> None:
        with storage.unit_of_work() as uow:
            uow.tenants.add(added)
            raise Boom

    with pytest.raises(Boom):
        fail()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) is None


def test_rollback_discards_writes_and_the_unit_of_work_goes_on(storage: Storage) -> None:
    discarded, kept = tenant(), tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(discarded)
        uow.rollback()
        uow.tenants.add(kept)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(discarded.id) is None
        assert uow.tenants.get(kept.id) == kept


def test_work_after_a_commit_needs_its_own_commit(storage: Storage) -> None:
    first, second = tenant(), tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(first)
        uow.commit()
        uow.tenants.add(second)
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(first.id) == first
        assert uow.tenants.get(second.id) is None


def test_migrate_is_idempotent_and_keeps_data(storage: Storage) -> None:
    added = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(added)
        uow.commit()
    storage.migrate()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) == added
        accounts = {b.account_id for b in uow.ledger.balances()}
    assert {TOPUPS_ACCOUNT, REVENUE_ACCOUNT} <= accounts


def test_units_of_work_in_many_threads_each_commit_their_own_writes(storage: Storage) -> None:
    ids = [new_id("ten") for _ in range(16)]

    def add(tenant_id: str) -> None:
        with storage.unit_of_work() as uow:
            uow.tenants.add(tenant(tenant_id))
            uow.commit()

    threads = [threading.Thread(target=add, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with storage.unit_of_work() as uow:
        assert {t.id for t in uow.tenants.list()} >= set(ids)


# --------------------------------------------------------------------------- database failures


def unreachable(sql_storage: SqlStorage, tmp_path: Path) -> SqlStorage:
    """A storage like ``sql_storage`` whose database cannot be reached."""
    if sql_storage.engine.dialect.name == "sqlite":
        return SqlStorage.from_url(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    url = sql_storage.engine.url.set(host="127.0.0.1", port=1, query={"connect_timeout": "2"})
    return SqlStorage.from_url(url.render_as_string(hide_password=False))


def test_an_unreachable_database_raises_storage_unavailable_from_the_driver_error(
    sql_storage: SqlStorage, tmp_path: Path
) -> None:
    down = unreachable(sql_storage, tmp_path)
    with pytest.raises(StorageUnavailable) as caught, down.unit_of_work() as uow:
        uow.tenants.get("ten_1")
    assert caught.value.code == "storage_unavailable"
    assert isinstance(caught.value.__cause__, DBAPIError)
    with pytest.raises(StorageUnavailable):
        down.migrate()
    down.close()


def test_a_database_never_migrated_says_to_migrate(sql_storage: SqlStorage) -> None:
    url = sql_storage.engine.url
    if url.get_backend_name() == "sqlite":
        fresh = SqlStorage.from_url(f"sqlite:///{url.database}-fresh.db")
    else:
        fresh = SqlStorage.from_url(
            url.render_as_string(hide_password=False), schema=f"bs_empty_{new_id('s')[2:14]}"
        )
    with pytest.raises(ConfigurationError, match="migrate"), fresh.unit_of_work() as uow:
        uow.tenants.get("ten_1")
    fresh.close()


def test_a_connection_killed_mid_transaction_raises_storage_unavailable_and_the_next_works(
    sql_storage: SqlStorage,
) -> None:
    if sql_storage.engine.dialect.name != "postgresql":
        pytest.skip("a SQLite connection cannot be killed from outside")
    added = tenant()
    with sql_storage.unit_of_work() as uow:
        uow.tenants.add(added)
        pid = _backend_pid(uow)
        admin = sa.create_engine(sql_storage.engine.url)
        with admin.begin() as connection:
            connection.execute(sa.select(sa.func.pg_terminate_backend(pid)))
        admin.dispose()
        with pytest.raises(StorageUnavailable) as caught:
            uow.tenants.get(added.id)
    assert isinstance(caught.value.__cause__, DBAPIError)
    assert caught.value.__cause__.connection_invalidated
    with sql_storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) is None  # nothing was committed
        uow.tenants.add(added)
        uow.commit()


def _backend_pid(uow: object) -> int:
    connection = uow._connection  # type: ignore[attr-defined]
    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    assert isinstance(pid, int)
    return pid


def test_sqlite_connections_use_wal_normal_sync_foreign_keys_and_a_busy_timeout(
    tmp_path: Path,
) -> None:
    storage = SqlStorage.from_url(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with storage.engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    storage.close()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


def test_an_in_memory_sqlite_database_serves_one_unit_of_work_at_a_time() -> None:
    storage = SqlStorage.from_url("sqlite://")
    storage.migrate()
    added = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(added)
        uow.commit()
        with pytest.raises(ConfigurationError, match="single connection"):
            storage.unit_of_work().__enter__()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(added.id) == added
    storage.close()


def test_units_of_work_on_one_sqlite_file_take_turns_in_arrival_order(tmp_path: Path) -> None:
    """In one process they queue on a lock (not in SQLite's busy handler), first come first
    served, shared by every storage on the file; a nested one in the same thread passes."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    first, second = SqlStorage.from_url(url), SqlStorage.from_url(url)
    first.migrate()
    order: list[int] = []
    queued: list[threading.Event] = []
    threads: list[threading.Thread] = []

    def work(n: int, storage: SqlStorage) -> None:
        queued[n].set()
        with storage.unit_of_work() as uow:
            uow.tenants.add(tenant())
            order.append(n)
            uow.commit()

    with first.unit_of_work() as outer:
        outer.tenants.add(tenant())
        for n in range(4):
            queued.append(threading.Event())
            thread = threading.Thread(target=work, args=(n, second if n % 2 else first))
            thread.start()
            threads.append(thread)
            assert queued[n].wait(5)
            while thread.is_alive() and len(first._turns._waiters) <= n:  # type: ignore[union-attr]
                threading.Event().wait(0.001)  # until it is queued behind the others
        with first.unit_of_work() as inner:  # the same thread: let through, not deadlocked
            assert inner is not outer
        outer.commit()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3]
    with second.unit_of_work() as uow:
        assert len(uow.tenants.list()) == 5
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/db", "unsupported storage URL"),
        ("postgresql+psycopg2://u@h/db", "unsupported storage URL"),
        ("not a url", "not a database URL"),
    ],
)
def test_an_unsupported_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SqlStorage.from_url(url)


def test_the_pool_keeps_pool_size_connections_and_bursts_to_three_times_that(
    sql_storage: SqlStorage,
) -> None:
    url = sql_storage.engine.url.render_as_string(hide_password=False)
    sized = SqlStorage.from_url(url, pool_size=3)  # no connection is opened here
    try:
        pool: Any = sized.engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 6)
        # The default leaves room for request threads and a worker's own six.
        default: Any = sql_storage.engine.pool
        assert (default.size(), default._max_overflow) == (DEFAULT_POOL_SIZE, 20)
    finally:
        sized.close()


def test_the_database_pool_size_setting_reaches_the_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    environ = {"BHARATSEND_DATABASE_POOL_SIZE": "7"}
    bs = BharatSend.from_url(url, environ=environ, key_pepper="p" * 16)
    try:
        assert bs.settings.database_pool_size == 7
        assert bs.storage.engine.pool.size() == 7  # type: ignore[attr-defined]
    finally:
        bs.close()
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve({}, database_pool_size=0)
    assert caught.value.field == "database_pool_size"


@pytest.mark.parametrize("size", [0, -1, 1001, True, 2.5, "10"])
def test_a_pool_size_outside_1_to_1000_is_a_configuration_error(size: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SqlStorage.from_url("sqlite:///never.db", pool_size=size)  # type: ignore[arg-type]
    assert caught.value.field == "pool_size"


def test_a_schema_must_be_a_plain_identifier_and_is_postgresql_only() -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        SqlStorage.from_url("postgresql+psycopg://u@h/db", schema='x"; DROP TABLE t; --')
    with pytest.raises(ConfigurationError, match="PostgreSQL only"):
        SqlStorage.from_url("sqlite://", schema="tenant_a")


def test_postgresql_without_psycopg_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r'pip install "bharatsend-core\[postgres\]"'):
        SqlStorage.from_url("postgresql+psycopg://u@h/db")


def test_importing_the_adapter_creates_no_engine_or_connection() -> None:
    import subprocess
    import sys

    code = (
        "import sqlalchemy, sqlalchemy.engine.create as c\n"
        "made = []\n"
        "real = c.create_engine\n"
        "c.create_engine = lambda *a, **k: made.append(a) or real(*a, **k)\n"
        "import bharatsend_core.adapters.sqlalchemy\n"
        "print(len(made))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("value", ["x", "-1", "5.0", "²", "99999999"])
def test_a_bad_prepare_threshold_in_a_postgresql_url_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="prepare_threshold") as caught:
        SqlStorage.from_url(f"postgresql+psycopg://u@h/db?prepare_threshold={value}")
    assert caught.value.field == "database_url"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 5), ("?prepare_threshold=none", None), ("?prepare_threshold=OFF", None),
     ("?prepare_threshold=0", 0), ("?prepare_threshold=12&sslmode=disable", 12)],
)  # fmt: skip
def test_prepare_threshold_is_read_from_the_url_and_taken_out_of_it(
    query: str, expected: int | None
) -> None:
    url, threshold = _prepare_threshold(make_url(f"postgresql+psycopg://u@h/db{query}"))
    assert threshold == expected
    assert "prepare_threshold" not in url.query
    assert url.query.get("sslmode") == ("disable" if "sslmode" in query else None)
