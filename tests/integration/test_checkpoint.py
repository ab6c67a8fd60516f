"""SQLite WAL checkpoints run on the storage's own thread, never inside a commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.adapters.sqlalchemy.checkpoint import SAFETY_PAGES, WalCheckpointer

PAGE = 4096


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqlStorage]:
    opened = SqlStorage.from_url(f"sqlite:///{tmp_path / 'wal.db'}")
    opened.migrate()
    with opened.engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE scratch (body BLOB)")
        connection.commit()
    yield opened
    opened.close()


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def write(storage: SqlStorage, commits: int) -> None:
    """``commits`` units of work, each committing a row of about one page."""
    for _ in range(commits):
        with storage.unit_of_work() as uow:
            uow._db.connection.exec_driver_sql(  # type: ignore[attr-defined]
                "INSERT INTO scratch VALUES (randomblob(3500))"
            )
            uow.commit()


def wal_frames(path: Path) -> int:
    """Frames in the log, read without checkpointing (from the WAL file's size)."""
    wal = Path(f"{path}-wal")
    return max(0, (wal.stat().st_size - 32) // (PAGE + 24)) if wal.exists() else 0


def database(storage: SqlStorage) -> Path:
    return Path(storage.engine.url.database or "")


def test_the_storage_connections_leave_checkpoints_to_the_thread(storage: SqlStorage) -> None:
    with storage.engine.connect() as connection:
        value = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert value == SAFETY_PAGES
    assert storage.checkpointer is not None


def test_commits_alone_never_checkpoint_below_the_safety_limit(tmp_path: Path) -> None:
    """2,000 pages committed: SQLite's default would have checkpointed at 1,000."""
    path = tmp_path / "raw.db"
    storage = SqlStorage.from_url(f"sqlite:///{path}")
    storage.migrate()
    try:
        with storage.engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE scratch (body BLOB)")
            connection.commit()
            for _ in range(2000):
                connection.exec_driver_sql("INSERT INTO scratch VALUES (randomblob(3500))")
                connection.commit()
        assert wal_frames(path) > 1500
    finally:
        storage.close()


def test_commits_are_checkpointed_by_the_background_thread(storage: SqlStorage) -> None:
    checkpointer = storage.checkpointer
    assert checkpointer is not None
    checkpointer.delay = 0.01
    write(storage, 20)
    until(lambda: checkpointer.checkpoints >= 1)
    # Everything committed before is now in the database file: a passive
    # checkpoint finds nothing left to copy.
    until(lambda: _backfilled(database(storage)))
    assert checkpointer.failures == 0


def _backfilled(path: Path) -> bool:
    connection = sqlite3.connect(path)
    try:
        _busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        connection.close()
    return bool(log == done)


def test_a_long_log_is_rewound_under_the_writer_gate(storage: SqlStorage) -> None:
    checkpointer = storage.checkpointer
    assert checkpointer is not None
    checkpointer.delay = 3600.0  # the test drives it
    checkpointer.restart_pages = 50
    path = database(storage)
    write(storage, 60)
    grown = wal_frames(path)
    assert grown >= 60
    checkpointer.checkpoint_now()
    assert checkpointer.restarts == 1
    write(storage, 5)
    # The next writers started the log from its beginning: nothing past the
    # frames they wrote is live (the file keeps its size, and is reused).
    with sqlite3.connect(path) as connection:
        _busy, log, _done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert log < 50


def test_a_short_log_is_only_copied_passively(storage: SqlStorage) -> None:
    checkpointer = storage.checkpointer
    assert checkpointer is not None
    checkpointer.delay = 3600.0
    write(storage, 3)
    checkpointer.checkpoint_now()
    assert (checkpointer.checkpoints, checkpointer.restarts) == (1, 0)


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bharatsend-wal-checkpoint"]


def test_the_thread_exits_when_idle_or_closed_and_a_commit_starts_it_again(
    storage: SqlStorage,
) -> None:
    checkpointer = storage.checkpointer
    assert checkpointer is not None
    checkpointer.delay = 0.01
    checkpointer.idle_exit = 0.05
    before = len(_checkpoint_threads())
    write(storage, 1)
    until(lambda: checkpointer.checkpoints >= 1)
    until(lambda: len(_checkpoint_threads()) == before)  # idle: gone
    write(storage, 1)
    until(lambda: checkpointer.checkpoints >= 2)
    checkpointer.idle_exit = 3600.0
    write(storage, 1)
    assert len(_checkpoint_threads()) == before + 1
    storage.close()
    assert len(_checkpoint_threads()) == before
    checkpointer.committed()  # after close: nothing starts
    assert len(_checkpoint_threads()) == before


def test_a_database_it_cannot_open_is_counted_and_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "missing" / "x.db"), nullcontext(), delay=0.0)
    checkpointer.committed()
    until(lambda: checkpointer.failures == 1)
    assert "WAL checkpointer" in caplog.text
    with pytest.raises(sqlite3.OperationalError):
        checkpointer.checkpoint_now()
    checkpointer.close()


def test_memory_and_postgres_storages_have_no_checkpointer() -> None:
    memory = SqlStorage.from_url("sqlite://")
    try:
        assert memory.checkpointer is None
    finally:
        memory.close()
