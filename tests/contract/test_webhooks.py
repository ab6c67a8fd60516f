"""Webhooks: endpoints, the event outbox (leased like dispatch rows) and the attempt log."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import attrs
import pytest

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.domain.errors import AlreadyExists, WebhookEndpointNotFound
from bharatsend_core.domain.webhooks import EndpointSecret, WebhookEndpoint
from bharatsend_core.ports.storage import DeliveryAttempt, OutboxEntry, Storage

from .builders import IST, at, new_id

LEASE = timedelta(seconds=30)


def endpoint(tenant_id: str, *, created: float = 0, **changes: Any) -> WebhookEndpoint:
    fields: dict[str, Any] = {
        "id": new_id("whe"),
        "tenant_id": tenant_id,
        "url": "https://hooks.example.com/sms",
        "events": ("sms.delivered", "sms.failed"),
        "secrets": (EndpointSecret("whsec_" + "a" * 32, at(created)),),
        "created_at": at(created),
    }
    fields.update(changes)
    return WebhookEndpoint(**fields)


def entry(
    tenant_id: str,
    event_id: str | None = None,
    endpoint_id: str = "whe_1",
    *,
    created: float = 0,
    due: float | None = 0,
    **changes: Any,
) -> OutboxEntry:
    return OutboxEntry(
        event_id=event_id or new_id("evt"),
        endpoint_id=endpoint_id,
        tenant_id=tenant_id,
        event_type=changes.pop("event_type", "sms.delivered"),
        payload=changes.pop(
            "payload",
            {"type": "sms.delivered", "timestamp": at(created).isoformat(), "data": {"id": "m"}},
        ),
        created_at=at(created),
        next_attempt_at=None if due is None else at(due),
        **changes,
    )


def enqueue(storage: Storage, *entries: OutboxEntry) -> int:
    with storage.unit_of_work() as uow:
        added = uow.webhooks.enqueue(entries)
        uow.commit()
    return added


def claim(storage: Storage, owner: str, now: float, limit: int = 10) -> list[str]:
    with storage.unit_of_work() as uow:
        claimed = uow.webhooks.claim(owner, at(now), LEASE, limit)
        uow.commit()
    return [e.event_id for e in claimed]


def attempt(e: OutboxEntry, number: int, when: float, status: int | None = 500) -> DeliveryAttempt:
    return DeliveryAttempt(
        event_id=e.event_id,
        endpoint_id=e.endpoint_id,
        number=number,
        at=at(when),
        status=status,
        latency_ms=42,
        error=None if status is not None else "timeout",
        response_snippet=None if status is None else '{"ok":false}',
    )


def finish(storage: Storage, e: OutboxEntry, a: DeliveryAttempt, owner: str) -> bool:
    with storage.unit_of_work() as uow:
        done = uow.webhooks.finish(e, a, owner)
        uow.commit()
    return done


# --------------------------------------------------------------------------- endpoints


def test_an_endpoint_round_trips_with_every_field(storage: Storage) -> None:
    tenant_id = new_id("ten")
    stored = endpoint(tenant_id, created=5)
    rotated = stored.rotated("whsec_" + "b" * 32, at(60).astimezone(IST), timedelta(hours=24))
    updated = attrs.evolve(
        rotated,
        url="https://hooks.example.com/v2",
        events=("sms.*",),
        enabled=False,
        disabled_reason="failing",
        failing_since=at(30),
    )
    with storage.unit_of_work() as uow:
        uow.webhooks.add_endpoint(stored)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get_endpoint(tenant_id, stored.id) == stored
        assert uow.webhooks.get_endpoint(new_id("ten"), stored.id) is None
        assert uow.webhooks.get_endpoint(tenant_id, "whe_missing") is None
        uow.webhooks.update_endpoint(updated)
        uow.commit()
    with storage.unit_of_work() as uow:
        got = uow.webhooks.get_endpoint(tenant_id, stored.id)
    assert got == updated
    assert got is not None
    assert got.secrets[1].retires_at == at(60) + timedelta(hours=24)
    assert got.signing_secrets(at(61)) == ("whsec_" + "b" * 32, "whsec_" + "a" * 32)


def test_endpoints_list_oldest_first_per_tenant(storage: Storage) -> None:
    tenant_id = new_id("ten")
    late = endpoint(tenant_id, created=20)
    early = endpoint(tenant_id, created=10, enabled=False, disabled_reason="gone")
    other = endpoint(new_id("ten"), created=0)
    with storage.unit_of_work() as uow:
        for e in (late, early, other):
            uow.webhooks.add_endpoint(e)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.webhooks.list_endpoints(tenant_id) == [early, late]
        assert uow.webhooks.list_endpoints(new_id("ten")) == []


def test_an_endpoint_id_is_taken_once(storage: Storage) -> None:
    first = endpoint(new_id("ten"))
    with storage.unit_of_work() as uow:
        uow.webhooks.add_endpoint(first)
        uow.commit()
    with storage.unit_of_work() as uow, pytest.raises(AlreadyExists):
        uow.webhooks.add_endpoint(attrs.evolve(first, url="https://other.example.com/"))
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get_endpoint(first.tenant_id, first.id) == first


def test_updating_a_missing_endpoint_raises(storage: Storage) -> None:
    stored = endpoint(new_id("ten"))
    with storage.unit_of_work() as uow:
        with pytest.raises(WebhookEndpointNotFound):
            uow.webhooks.update_endpoint(stored)
        uow.webhooks.add_endpoint(stored)
        uow.commit()
    with storage.unit_of_work() as uow, pytest.raises(WebhookEndpointNotFound):
        # Another tenant's endpoint is as good as missing.
        uow.webhooks.update_endpoint(attrs.evolve(stored, tenant_id=new_id("ten")))


# --------------------------------------------------------------------------- outbox


def test_enqueue_is_idempotent_per_event_and_endpoint(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e1 = entry(tenant_id, endpoint_id="whe_a")
    e2 = attrs.evolve(e1, endpoint_id="whe_b")
    assert enqueue(storage, e1, e2) == 2
    assert enqueue(storage, attrs.evolve(e1, payload={"changed": True})) == 0
    assert enqueue(storage, e1, entry(tenant_id)) == 1
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(e1.event_id, "whe_a") == e1  # the first payload stays
        assert uow.webhooks.get(e1.event_id, "whe_b") == e2
        assert uow.webhooks.get(e1.event_id, "whe_c") is None
        assert uow.webhooks.enqueue([]) == 0


def test_a_rolled_back_enqueue_leaves_nothing(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id)
    with storage.unit_of_work() as uow:
        assert uow.webhooks.enqueue([e]) == 1
        uow.rollback()
    with storage.unit_of_work() as uow:
        assert uow.webhooks.enqueue([e]) == 1
        # Leaving without commit rolls back too.
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(e.event_id, e.endpoint_id) is None
        assert uow.webhooks.list(tenant_id) == []
    assert claim(storage, "w1", now=100) == []


def test_claims_take_due_pending_entries_earliest_first_up_to_the_limit(
    storage: Storage,
) -> None:
    tenant_id = new_id("ten")
    enqueue(
        storage,
        entry(tenant_id, "late", due=5),
        entry(tenant_id, "early", due=1),
        entry(tenant_id, "mid", due=3),
        entry(tenant_id, "not-yet-due", due=20),
        entry(tenant_id, "delivered", due=None, state="delivered", finished_at=at(0)),
        entry(tenant_id, "dead", due=None, state="dead", finished_at=at(0)),
    )
    assert claim(storage, "w1", now=10, limit=2) == ["early", "mid"]
    assert claim(storage, "w1", now=10) == ["late"]
    assert claim(storage, "w1", now=10) == []
    assert claim(storage, "w2", now=20) == ["not-yet-due"]  # due exactly now counts
    with storage.unit_of_work() as uow:
        assert uow.webhooks.claim("w3", at(1000), LEASE, 0) == []


def test_a_claim_returns_the_entries_as_stored(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id, due=2, attempts=1, last_status=503, last_error="unavailable")
    enqueue(storage, e)
    with storage.unit_of_work() as uow:
        assert uow.webhooks.claim("w1", at(10), LEASE, 5) == [e]


def test_a_leased_entry_is_not_claimed_again_until_the_lease_runs_out(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id, due=0)
    enqueue(storage, e)
    assert claim(storage, "w1", now=0) == [e.event_id]
    assert claim(storage, "w2", now=29) == []
    assert claim(storage, "w2", now=30) == [e.event_id]  # w1's lease ran out
    retry = attrs.evolve(e, attempts=1, next_attempt_at=at(100))
    assert not finish(storage, retry, attempt(e, 1, 31), "w1")  # w1 lost the lease
    assert finish(storage, retry, attempt(e, 1, 31), "w2")
    with storage.unit_of_work() as uow:
        assert [a.number for a in uow.webhooks.attempts(e.event_id, e.endpoint_id)] == [1]


def test_an_uncommitted_claim_is_rolled_back(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id)
    enqueue(storage, e)
    with storage.unit_of_work() as uow:
        assert len(uow.webhooks.claim("w1", at(1), LEASE, 10)) == 1
    assert claim(storage, "w2", now=1) == [e.event_id]


def test_finish_logs_attempts_and_moves_the_entry_through_its_states(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id, due=0)
    enqueue(storage, e)

    # A failed attempt: pending again, due later, the lease released.
    assert claim(storage, "w1", now=0) == [e.event_id]
    retry = attrs.evolve(
        e, attempts=1, next_attempt_at=at(5), last_status=500, last_error="HTTP 500"
    )
    first = attempt(e, 1, 0.5, status=500)
    assert finish(storage, retry, first, "w1")
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(e.event_id, e.endpoint_id) == retry
    assert claim(storage, "w2", now=4) == []
    assert claim(storage, "w2", now=5) == [e.event_id]

    # A second failure that spends the retries: dead.
    dead = attrs.evolve(
        retry,
        state="dead",
        attempts=2,
        next_attempt_at=None,
        last_status=None,
        last_error="timeout",
        finished_at=at(6),
    )
    second = attempt(e, 2, 6, status=None)
    assert finish(storage, dead, second, "w2")
    assert not finish(storage, dead, attempt(e, 3, 7), "w2")  # no lease any more
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(e.event_id, e.endpoint_id) == dead
        assert uow.webhooks.attempts(e.event_id, e.endpoint_id) == [first, second]
        assert uow.webhooks.attempts(e.event_id, "whe_other") == []
    assert claim(storage, "w3", now=10_000) == []

    # Delivered.
    other = entry(tenant_id, due=0)
    enqueue(storage, other)
    assert claim(storage, "w1", now=0) == [other.event_id]
    delivered = attrs.evolve(
        other,
        state="delivered",
        attempts=1,
        next_attempt_at=None,
        last_status=200,
        finished_at=at(1),
    )
    ok = attempt(other, 1, 1, status=200)
    assert finish(storage, delivered, ok, "w1")
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(other.event_id, other.endpoint_id) == delivered
        assert uow.webhooks.attempts(other.event_id, other.endpoint_id) == [ok]
    assert claim(storage, "w1", now=10_000) == []


def test_finish_by_a_non_owner_returns_false_and_writes_nothing(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id)
    enqueue(storage, e)
    changed = attrs.evolve(e, state="delivered", attempts=1, next_attempt_at=None)
    assert not finish(storage, changed, attempt(e, 1, 0), "w1")  # nobody holds it
    claim(storage, "w1", now=0)
    assert not finish(storage, changed, attempt(e, 1, 0), "intruder")
    with storage.unit_of_work() as uow:
        assert uow.webhooks.get(e.event_id, e.endpoint_id) == e
        assert uow.webhooks.attempts(e.event_id, e.endpoint_id) == []
    assert claim(storage, "w2", now=29) == []  # w1 still holds it


def test_list_is_newest_first_filtered_and_limited(storage: Storage) -> None:
    tenant_id = new_id("ten")
    old = entry(tenant_id, "evt_a", "whe_1", created=1)
    new_b = entry(tenant_id, "evt_b", "whe_1", created=5, state="dead", due=None)
    new_c = entry(tenant_id, "evt_b", "whe_2", created=5)
    mid = entry(tenant_id, "evt_c", "whe_2", created=3, state="delivered", due=None)
    foreign = entry(new_id("ten"), "evt_z", "whe_1", created=9)
    enqueue(storage, old, new_b, new_c, mid, foreign)
    with storage.unit_of_work() as uow:
        hooks = uow.webhooks
        assert hooks.list(tenant_id) == [new_b, new_c, mid, old]
        assert hooks.list(tenant_id, limit=2) == [new_b, new_c]
        assert hooks.list(tenant_id, limit=0) == []
        assert hooks.list(tenant_id, state="pending") == [new_c, old]
        assert hooks.list(tenant_id, endpoint_id="whe_2") == [new_c, mid]
        assert hooks.list(tenant_id, state="dead", endpoint_id="whe_1") == [new_b]
        assert hooks.list(tenant_id, state="delivered", endpoint_id="whe_1") == []
        assert hooks.list(new_id("ten")) == []


def test_replay_makes_a_dead_entry_claimable_now_and_keeps_its_log(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id, due=0)
    enqueue(storage, e)
    claim(storage, "w1", now=0)
    dead = attrs.evolve(
        e, state="dead", attempts=1, next_attempt_at=None, last_error="x", finished_at=at(1)
    )
    logged = attempt(e, 1, 1)
    assert finish(storage, dead, logged, "w1")
    assert claim(storage, "w1", now=1000) == []
    with storage.unit_of_work() as uow:
        assert uow.webhooks.replay(e.event_id, e.endpoint_id, at(2000))
        assert not uow.webhooks.replay(e.event_id, "whe_unknown", at(2000))
        assert not uow.webhooks.replay("evt_unknown", e.endpoint_id, at(2000))
        uow.commit()
    with storage.unit_of_work() as uow:
        replayed = uow.webhooks.get(e.event_id, e.endpoint_id)
        assert replayed == attrs.evolve(
            dead, state="pending", next_attempt_at=at(2000), finished_at=None
        )
        assert uow.webhooks.attempts(e.event_id, e.endpoint_id) == [logged]
    assert claim(storage, "w2", now=1999) == []
    assert claim(storage, "w2", now=2000) == [e.event_id]


def test_replay_of_a_leased_entry_releases_the_lease(storage: Storage) -> None:
    tenant_id = new_id("ten")
    e = entry(tenant_id)
    enqueue(storage, e)
    claim(storage, "w1", now=0)
    with storage.unit_of_work() as uow:
        assert uow.webhooks.replay(e.event_id, e.endpoint_id, at(1))
        uow.commit()
    assert claim(storage, "w2", now=1) == [e.event_id]
    assert not finish(storage, e, attempt(e, 1, 2), "w1")


# --------------------------------------------------------------------------- races


def test_concurrent_claimers_never_receive_the_same_entry(storage: Storage) -> None:
    if not isinstance(storage, SqlStorage) or storage.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL claims concurrently (SKIP LOCKED); others serialise")
    tenant_id = new_id("ten")
    enqueue(
        storage,
        *(entry(tenant_id, f"evt_{i:03d}", f"whe_{i % 3}", due=i % 7) for i in range(150)),
    )
    claimed: dict[str, list[str]] = {f"w{w}": [] for w in range(6)}
    barrier = threading.Barrier(len(claimed))

    def work(owner: str) -> None:
        barrier.wait()
        while True:
            with storage.unit_of_work() as uow:
                got = uow.webhooks.claim(owner, at(10), LEASE, 7)
                uow.commit()
            if not got:
                return
            claimed[owner].extend(f"{e.event_id}/{e.endpoint_id}" for e in got)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [k for got in claimed.values() for k in got]
    assert len(everything) == len(set(everything)) == 150


def test_postgres_claimers_skip_entries_another_open_transaction_holds(
    storage: Storage,
) -> None:
    if not isinstance(storage, SqlStorage) or storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer and memory one lock: a second claimer waits")
    tenant_id = new_id("ten")
    enqueue(storage, *(entry(tenant_id, f"evt_{i}") for i in range(10)))
    other: set[str] = set()

    def second_worker() -> None:
        with storage.unit_of_work() as second:
            other.update(e.event_id for e in second.webhooks.claim("w2", at(1), LEASE, 10))
            second.commit()

    with storage.unit_of_work() as first:
        taken = {e.event_id for e in first.webhooks.claim("w1", at(1), LEASE, 4)}
        worker = threading.Thread(target=second_worker)
        worker.start()
        worker.join(timeout=10)
        waited = worker.is_alive()
        first.commit()
    worker.join()
    assert not waited
    assert len(taken) == 4
    assert other == {f"evt_{i}" for i in range(10)} - taken
