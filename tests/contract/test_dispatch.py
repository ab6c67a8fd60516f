"""The dispatch queue: due work by priority, leased to one owner, reclaimed when leases expire."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.domain.errors import AlreadyExists
from bharatsend_core.ports.storage import DispatchClaim, Storage

from .builders import at, new_id

LEASE = timedelta(seconds=30)


def enqueue(storage: Storage, *rows: tuple[str, float, int]) -> str:
    """Queue (message id, due second, priority) rows for a new tenant; return the tenant."""
    tenant_id = new_id("ten")
    with storage.unit_of_work() as uow:
        for message_id, due, priority in rows:
            uow.dispatch.enqueue(message_id, tenant_id, at(due), priority)
        uow.commit()
    return tenant_id


def claim(storage: Storage, owner: str, now: float, limit: int = 10) -> list[str]:
    with storage.unit_of_work() as uow:
        claims = uow.dispatch.claim(owner, at(now), LEASE, limit)
        uow.commit()
    return [c.message_id for c in claims]


def test_claims_take_due_rows_highest_priority_first_then_earliest_due(storage: Storage) -> None:
    enqueue(
        storage,
        ("low-early", 0, 0),
        ("high-late", 5, 9),
        ("high-early", 1, 9),
        ("mid", 2, 5),
        ("not-yet-due", 20, 99),
    )
    assert claim(storage, "w1", now=10, limit=3) == ["high-early", "high-late", "mid"]
    assert claim(storage, "w1", now=10) == ["low-early"]
    assert claim(storage, "w1", now=10) == []
    # Due exactly now counts; the rows above are still leased (until 40).
    assert claim(storage, "w2", now=20) == ["not-yet-due"]


def test_a_claim_reports_owner_lease_due_time_priority_and_tenant(storage: Storage) -> None:
    tenant_id = enqueue(storage, ("m1", 0, 3))
    with storage.unit_of_work() as uow:
        claims = uow.dispatch.claim("w1", at(10), LEASE, 5)
    assert claims == [DispatchClaim("m1", tenant_id, "w1", at(10) + LEASE, at(0), 3)]


def test_a_held_row_is_not_claimed_again_until_its_lease_runs_out(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    assert claim(storage, "w1", now=0) == ["m1"]
    assert claim(storage, "w2", now=29) == []
    assert claim(storage, "w2", now=30) == ["m1"]  # w1's lease ran out: w2 takes over
    with storage.unit_of_work() as uow:
        assert not uow.dispatch.ack("m1", "w1")  # w1 lost the lease
        assert uow.dispatch.ack("m1", "w2")
        uow.commit()
    assert claim(storage, "w3", now=1000) == []


def test_ack_release_and_extend_by_a_non_owner_return_false_and_change_nothing(
    storage: Storage,
) -> None:
    enqueue(storage, ("m1", 0, 0))
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        assert not uow.dispatch.ack("m1", "intruder")
        assert not uow.dispatch.release("m1", "intruder", at(0))
        assert not uow.dispatch.extend("m1", "intruder", at(10_000))
        assert not uow.dispatch.ack("unknown", "w1")
        uow.commit()
    assert claim(storage, "w2", now=29) == []
    assert claim(storage, "w2", now=30) == ["m1"]


def test_release_hands_the_row_back_due_at_the_given_time(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        assert uow.dispatch.release("m1", "w1", at(60))
        uow.commit()
    assert claim(storage, "w2", now=59) == []
    assert claim(storage, "w2", now=60) == ["m1"]  # anyone may take it, lease or not


def test_extend_keeps_the_row_held_past_the_first_lease(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        assert uow.dispatch.extend("m1", "w1", at(90))
        uow.commit()
    assert claim(storage, "w2", now=60) == []
    assert claim(storage, "w2", now=90) == ["m1"]


def test_ack_removes_the_row_for_good(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        assert uow.dispatch.ack("m1", "w1")
        assert not uow.dispatch.ack("m1", "w1")
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dispatch.depth(at(1_000)) == 0


def test_depth_counts_due_rows_held_or_not(storage: Storage) -> None:
    enqueue(storage, ("a", 0, 0), ("b", 5, 0), ("c", 50, 0))
    claim(storage, "w1", now=0, limit=1)
    with storage.unit_of_work() as uow:
        assert [uow.dispatch.depth(at(s)) for s in (-1, 0, 5, 49, 50)] == [0, 1, 2, 2, 3]


def test_a_message_is_queued_once(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m1", new_id("ten"), at(5), 1)
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dispatch.enqueue_many([("m2", "t", at(0), 0), ("m1", "t", at(0), 0)])
    with storage.unit_of_work() as uow:
        assert uow.dispatch.depth(at(100)) == 1


def test_enqueue_many_queues_every_row(storage: Storage) -> None:
    tenant_id = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue_many((f"m{i}", tenant_id, at(i), i % 3) for i in range(50))
        uow.dispatch.enqueue_many([])
        uow.commit()
    with storage.unit_of_work() as uow:
        claims = uow.dispatch.claim("w1", at(100), LEASE, 100)
    assert len(claims) == 50
    assert [(c.priority, c.due_at) for c in claims] == sorted(
        ((c.priority, c.due_at) for c in claims), key=lambda k: (-k[0], k[1])
    )


def test_an_uncommitted_claim_is_rolled_back(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    with storage.unit_of_work() as uow:
        assert [c.message_id for c in uow.dispatch.claim("w1", at(0), LEASE, 5)] == ["m1"]
    assert claim(storage, "w2", now=0) == ["m1"]


def test_a_zero_limit_claims_nothing(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    assert claim(storage, "w1", now=0, limit=0) == []


# --------------------------------------------------------------------------- races


def test_concurrent_claimers_never_receive_the_same_row(sql_storage: SqlStorage) -> None:
    enqueue(sql_storage, *((f"m{i:03d}", i % 7, i % 3) for i in range(200)))
    claimed: dict[str, list[str]] = {f"w{w}": [] for w in range(6)}
    barrier = threading.Barrier(len(claimed))

    def work(owner: str) -> None:
        barrier.wait()
        while True:
            got = claim(sql_storage, owner, now=10, limit=7)
            if not got:
                return
            claimed[owner].extend(got)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [m for got in claimed.values() for m in got]
    assert len(everything) == len(set(everything)) == 200


def test_postgres_claimers_skip_rows_another_open_transaction_holds(
    sql_storage: SqlStorage,
) -> None:
    """SKIP LOCKED: a second worker neither waits for nor sees the first one's uncommitted claim."""
    if sql_storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a second claimer waits for the first to finish")
    enqueue(sql_storage, *((f"m{i}", 0, 0) for i in range(10)))
    other: set[str] = set()

    def second_worker() -> None:
        with sql_storage.unit_of_work() as second:
            other.update(c.message_id for c in second.dispatch.claim("w2", at(1), LEASE, 10))
            second.commit()

    with sql_storage.unit_of_work() as first:
        taken = {c.message_id for c in first.dispatch.claim("w1", at(1), LEASE, 4)}
        worker = threading.Thread(target=second_worker)
        worker.start()
        worker.join(timeout=10)
        waited = worker.is_alive()  # blocked on our row locks instead of skipping them
        first.commit()
    worker.join()
    assert not waited
    assert len(taken) == 4
    assert other == {f"m{i}" for i in range(10)} - taken
