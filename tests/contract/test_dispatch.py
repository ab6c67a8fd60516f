"""The dispatch queue: due work by priority, leased to one owner, reclaimed when leases expire."""

from __future__ import annotations

import threading
import time
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


def test_extend_many_extends_the_leases_the_owner_holds_and_counts_them(
    storage: Storage,
) -> None:
    enqueue(storage, ("m1", 0, 0), ("m2", 0, 0), ("m3", 0, 0))
    assert claim(storage, "w1", now=0, limit=2) == ["m1", "m2"]
    assert claim(storage, "w2", now=0) == ["m3"]
    with storage.unit_of_work() as uow:
        assert uow.dispatch.extend_many(["m1", "m2", "m3", "gone"], "w1", at(100)) == 2
        assert uow.dispatch.extend_many([], "w1", at(100)) == 0
        uow.commit()
    assert claim(storage, "w3", now=99) == ["m3"]  # w2's lease ran out at 30
    assert claim(storage, "w3", now=100) == ["m1", "m2"]


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


def test_a_row_queued_held_is_its_owners_until_the_lease_runs_out(storage: Storage) -> None:
    tenant_id = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m1", tenant_id, at(0), 2, owner="w1", lease_expires_at=at(30))
        uow.dispatch.enqueue_many(
            [("m2", tenant_id, at(0), 0), ("m3", tenant_id, at(0), 0)],
            owner="w1",
            lease_expires_at=at(30),
        )
        uow.commit()
    assert claim(storage, "w2", now=10) == []
    with storage.unit_of_work() as uow:
        assert uow.dispatch.depth(at(10)) == 3  # due, and held
        assert uow.dispatch.next_due() == at(30)
        assert uow.dispatch.extend("m2", "w1", at(60))
        assert uow.dispatch.ack("m3", "w1")
        uow.commit()
    assert claim(storage, "w2", now=30) == ["m1"]
    assert claim(storage, "w3", now=59) == []
    assert claim(storage, "w3", now=60) == ["m1", "m2"]  # w2's lease on m1 ended too


def test_a_held_row_is_still_queued_once(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m1", "t", at(0), 0, owner="w1", lease_expires_at=at(30))


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


# --------------------------------------------------------------------------- batches and timing


def test_ack_many_removes_the_rows_the_owner_holds_and_counts_them(storage: Storage) -> None:
    enqueue(storage, ("a", 0, 0), ("b", 0, 0), ("c", 0, 0))
    assert sorted(claim(storage, "w1", now=0, limit=2)) == ["a", "b"]
    with storage.unit_of_work() as uow:
        assert uow.dispatch.ack_many(["a", "b", "c", "unknown"], "w1") == 2
        assert uow.dispatch.ack_many([], "w1") == 0
        uow.commit()
    assert claim(storage, "w2", now=1000) == ["c"]


def test_release_many_gives_held_rows_back_due_at_their_times(storage: Storage) -> None:
    enqueue(storage, ("a", 0, 0), ("b", 0, 0), ("c", 0, 0))
    claim(storage, "w1", now=0, limit=2)
    with storage.unit_of_work() as uow:
        released = uow.dispatch.release_many([("a", at(10)), ("b", at(20)), ("c", at(5))], "w1")
        assert released == 2  # w1 never held c
        assert uow.dispatch.release_many([], "w1") == 0
        uow.commit()
    assert claim(storage, "w2", now=1) == ["c"]
    assert claim(storage, "w2", now=10) == ["a"]
    assert claim(storage, "w2", now=20) == ["b"]


def test_next_due_is_the_earliest_time_a_row_can_be_claimed(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() is None
    enqueue(storage, ("a", 5, 0), ("b", 10, 0))
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() == at(5)
    # a is held until 0 + 30: b, due at 10, comes first.
    assert claim(storage, "w1", now=5, limit=1) == ["a"]
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() == at(10)
    assert claim(storage, "w1", now=10, limit=1) == ["b"]
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() == at(5) + LEASE  # a's lease ends first
        uow.dispatch.extend("a", "w1", at(500))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() == at(10) + LEASE


def test_next_due_takes_the_later_of_due_time_and_lease_end(storage: Storage) -> None:
    enqueue(storage, ("a", 0, 0))
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        uow.dispatch.release("a", "w1", at(100))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dispatch.next_due() == at(100)


# --------------------------------------------------------------------------- wake-ups

QUICK = 5.0  # generous: a wake-up that works arrives in milliseconds


def _waiter(storage: Storage, timeout: float) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    ready = threading.Event()

    def wait() -> None:
        storage.wait_for_dispatch(0)  # consume wake-ups from before this test
        ready.set()
        result.append(storage.wait_for_dispatch(timeout))

    thread = threading.Thread(target=wait)
    thread.start()
    assert ready.wait(QUICK)
    return thread, result


def test_a_committed_enqueue_wakes_a_waiter_in_another_thread(storage: Storage) -> None:
    thread, result = _waiter(storage, timeout=30)
    started = time.monotonic()
    enqueue(storage, ("m1", 0, 0))
    thread.join(QUICK)
    assert result == [True]
    assert time.monotonic() - started < QUICK


def test_a_wait_without_work_times_out_false(storage: Storage) -> None:
    started = time.monotonic()
    assert not storage.wait_for_dispatch(0.2)
    assert time.monotonic() - started >= 0.15


def test_a_rolled_back_enqueue_wakes_nobody(storage: Storage) -> None:
    thread, result = _waiter(storage, timeout=0.5)
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m1", new_id("ten"), at(0), 0)
        uow.rollback()
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m2", new_id("ten"), at(0), 0)  # left without commit
    thread.join(QUICK)
    assert result == [False]


def test_a_held_enqueue_wakes_nobody(storage: Storage) -> None:
    """Its owner submits it itself; other workers could not claim it anyway."""
    thread, result = _waiter(storage, timeout=0.5)
    with storage.unit_of_work() as uow:
        uow.dispatch.enqueue("m1", new_id("ten"), at(0), 0, owner="w1", lease_expires_at=at(30))
        uow.dispatch.enqueue_many([("m2", "t", at(0), 0)], owner="w1", lease_expires_at=at(30))
        uow.commit()
    thread.join(QUICK)
    assert result == [False]


def test_a_wake_up_between_two_waits_is_not_lost(storage: Storage) -> None:
    storage.wait_for_dispatch(0)
    enqueue(storage, ("m1", 0, 0))
    assert storage.wait_for_dispatch(0.01)
    assert not storage.wait_for_dispatch(0.01)  # consumed


def test_a_committed_release_and_wake_dispatch_wake_waiters(storage: Storage) -> None:
    enqueue(storage, ("m1", 0, 0))
    claim(storage, "w1", now=0)
    storage.wait_for_dispatch(0)
    with storage.unit_of_work() as uow:
        assert uow.dispatch.release_many([("m1", at(1))], "w1") == 1
        uow.commit()
    assert storage.wait_for_dispatch(0.01)
    storage.wake_dispatch()
    assert storage.wait_for_dispatch(0.01)
    assert not storage.wait_for_dispatch(0.01)


def test_postgres_wakes_a_waiter_of_another_storage_on_the_same_schema(
    sql_storage: SqlStorage,
) -> None:
    """LISTEN/NOTIFY: the enqueue commits through one pool, a second process-like storage wakes."""
    if sql_storage.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL wakes other processes (SQLite waiters poll)")
    url = sql_storage.engine.url.render_as_string(hide_password=False)
    other = SqlStorage.from_url(url, schema=sql_storage._schema)
    try:
        thread, result = _waiter(other, timeout=30)
        started = time.monotonic()
        enqueue(sql_storage, ("m1", 0, 0))
        thread.join(QUICK)
        assert result == [True]
        assert time.monotonic() - started < QUICK
        # A rolled-back enqueue sends nothing.
        thread, result = _waiter(other, timeout=0.5)
        with sql_storage.unit_of_work() as uow:
            uow.dispatch.enqueue("m2", new_id("ten"), at(0), 0)
            uow.rollback()
        thread.join(QUICK)
        assert result == [False]
    finally:
        other.close()
