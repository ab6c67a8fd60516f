"""Dispatch wake-ups between processes on one SQLite file (adapters/sqlalchemy/doorbell.py).

Two storages on one file stand for two processes: each has its own token and
its own in-process signal, so only the doorbell can carry a wake-up from one
to the other. The last test runs ``bharatsend worker`` in a real child
process that polls every 60 s, and an OTP sent here still reaches the SMSC.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.smpp import SmscSimulator
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.adapters.sqlalchemy.doorbell import doorbell_path

from ..contract.builders import new_id
from ..unit.service.world import OTP_TEMPLATE, OTP_TEXT, PEPPER, make_world

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def waiter(storage: SqlStorage, timeout: float) -> tuple[threading.Thread, list[bool]]:
    """``wait_for_dispatch`` on a thread, started once the storage is watching."""
    storage.wait_for_dispatch(0)  # starts the watcher; consumes any earlier wake-up
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(storage.wait_for_dispatch(timeout)))
    thread.start()
    return thread, result


def enqueue(storage: SqlStorage, *, commit: bool = True) -> None:
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue(new_id("msg"), new_id("ten"), NOW, 0)
        if commit:
            uow.commit()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[SqlStorage, SqlStorage]:
    url = f"sqlite:///{tmp_path / 'bell.db'}"
    app, worker = SqlStorage.from_url(url), SqlStorage.from_url(url)
    app.migrate()
    yield app, worker
    worker.close()
    app.close()


def test_a_commit_in_one_storage_wakes_a_waiter_on_another(
    pair: tuple[SqlStorage, SqlStorage],
) -> None:
    app, worker = pair
    thread, result = waiter(worker, timeout=30.0)
    enqueue(app)
    thread.join(35.0)
    assert result == [True]  # woken, not timed out
    assert Path(doorbell_path(str(app.engine.url.database))).exists()


def test_a_storage_is_not_woken_twice_by_its_own_ring(
    pair: tuple[SqlStorage, SqlStorage],
) -> None:
    app, _worker = pair
    app.wait_for_dispatch(0)  # its watcher runs
    enqueue(app)
    assert app.wait_for_dispatch(1.0) is True  # its own commit, in process
    assert app.wait_for_dispatch(0.3) is False  # and not once more through the file


def test_a_rolled_back_enqueue_rings_nothing(pair: tuple[SqlStorage, SqlStorage]) -> None:
    app, worker = pair
    thread, result = waiter(worker, timeout=0.5)
    enqueue(app, commit=False)
    thread.join(5.0)
    assert result == [False]


def test_a_doorbell_that_cannot_be_written_costs_only_the_wake_up(
    pair: tuple[SqlStorage, SqlStorage],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, worker = pair

    def refuse(*_args: object) -> int:
        raise PermissionError("read-only directory")

    monkeypatch.setattr(os, "pwrite", refuse)
    thread, result = waiter(worker, timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="bharatsend_core.adapters.sqlalchemy.doorbell"):
        enqueue(app)  # committed all the same
        enqueue(app)
    thread.join(5.0)
    assert result == [False]
    with app.unit_of_work() as uow:
        assert uow.dispatch.depth(NOW) == 2
    warnings = [r for r in caplog.records if "doorbell" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per commit
    assert "PermissionError" in warnings[0].getMessage()


def test_a_worker_process_polling_every_minute_submits_an_otp_at_once(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    url = f"sqlite:///{database}"
    settings = Settings.resolve({}, key_pepper=PEPPER, database_url=url)
    bs = BharatSend(storage=SqlStorage.from_url(url), settings=settings)
    bs.migrate()
    world = make_world(bs, None, credits=10_000)  # type: ignore[arg-type]
    sim = SmscSimulator(receipt_delay=0.01).start()
    env = {**os.environ, "BHARATSEND_KEY_PEPPER": PEPPER}
    proc = None
    try:
        bs.add_route("agg1", host="127.0.0.1", port=sim.port, system_id="bsend", password="secret",
                     categories=["transactional"])  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "bharatsend_core.cli", "worker", "--database-url", url,
             "--no-sandbox", "--poll-interval", "60"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not bs.worker_heartbeats():  # started: its first claim found nothing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # idle now, until the next poll a minute away
        sent = bs.send(world.tenant_id, phone_number="+919812345678", content=OTP_TEXT,
                       dlt_template_id=OTP_TEMPLATE)  # fmt: skip
        sim.submits.wait_for(1, 30.0)  # far sooner than the poll
        assert sim.submits[0].destination_addr == "919812345678"
        assert bs.get_message(world.tenant_id, sent.id).timeline[1].kind == "claimed"
    finally:
        if proc is not None:
            proc.terminate()
            proc.communicate(timeout=30)
        sim.stop()
        bs.close()
