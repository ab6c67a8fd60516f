"""``UnitOfWork.after_commit``: callbacks run once the work committed, never on rollback."""

from __future__ import annotations

import logging

import pytest

from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports.storage import Storage

from .builders import at, new_id


def tenant(name: str) -> Tenant:
    return Tenant(id=new_id("ten"), name=name, status="active", created_at=at(0))


def test_callbacks_run_after_commit_in_order_and_may_use_storage(storage: Storage) -> None:
    seen: list[str] = []
    first = tenant("A")

    def write_more() -> None:
        # The connection is released: a new unit of work (even a writer) can run.
        with storage.unit_of_work() as uow:
            uow.tenants.add(tenant("B"))
            uow.commit()
        seen.append("wrote")

    with storage.unit_of_work() as uow:
        uow.tenants.add(first)
        uow.after_commit(lambda: seen.append("one"))
        uow.after_commit(write_more)
        uow.commit()
        assert seen == []  # not while the unit of work is open
    assert seen == ["one", "wrote"]
    with storage.unit_of_work() as uow:
        assert {t.name for t in uow.tenants.list()} == {"A", "B"}


def test_no_callback_on_rollback_or_without_commit(storage: Storage) -> None:
    seen: list[str] = []
    with storage.unit_of_work() as uow:
        uow.tenants.add(tenant("A"))
        uow.after_commit(lambda: seen.append("rolled back"))
        uow.rollback()
    with storage.unit_of_work() as uow:
        uow.after_commit(lambda: seen.append("never committed"))

    def failing_work() -> None:
        with storage.unit_of_work() as uow:
            uow.after_commit(lambda: seen.append("raised"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_work()
    assert seen == []


def test_a_failing_callback_is_logged_and_the_next_still_runs(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def fail() -> None:
        raise ValueError("listener bug")

    with caplog.at_level(logging.ERROR), storage.unit_of_work() as uow:
        uow.tenants.add(tenant("A"))
        uow.after_commit(fail)
        uow.after_commit(lambda: seen.append("after"))
        uow.commit()
    assert seen == ["after"]
    assert "after-commit callback failed" in caplog.text
