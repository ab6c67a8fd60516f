"""Messages: every field, part and timeline entry round-trips; the timeline is append-only."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.domain.errors import AlreadyExists, ConcurrentUpdate, MessageNotFound
from bharatsend_core.domain.message import (
    Claim,
    Expire,
    Message,
    PartReceipt,
    PartStatus,
    PartSubmitted,
    ReceiptOutcome,
    Status,
    SubmitFailed,
)
from bharatsend_core.ports.storage import (
    DuplicateClientMessageId,
    MessageQuery,
    MessageSummary,
    Storage,
    UnitOfWork,
)

from .builders import at, message, messages, new_id

EXAMPLES = settings(
    max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
FINGERPRINT = "9f" * 32


def add(storage: Storage, *stored: Message, fingerprint: str | None = FINGERPRINT) -> None:
    with storage.unit_of_work() as uow:
        for m in stored:
            uow.messages.add(m, fingerprint=fingerprint)
        uow.commit()


def get(storage: Storage, tenant_id: str, message_id: str) -> Message | None:
    with storage.unit_of_work() as uow:
        return uow.messages.get(tenant_id, message_id)


# --------------------------------------------------------------------------- round trips


@EXAMPLES
@given(data=st.data())
def test_every_message_field_part_and_timeline_entry_round_trips(
    storage: Storage, data: st.DataObject
) -> None:
    drawn = data.draw(messages(new_id("ten")))
    fingerprint = data.draw(st.none() | st.just(FINGERPRINT))
    add(storage, drawn, fingerprint=fingerprint)
    assert get(storage, drawn.tenant_id, drawn.id) == drawn
    if drawn.client_message_id is not None:
        with storage.unit_of_work() as uow:
            assert uow.messages.find_by_client_id(drawn.tenant_id, drawn.client_message_id) == (
                drawn,
                fingerprint,
            )


@EXAMPLES
@given(data=st.data())
def test_a_batch_round_trips_like_single_adds(storage: Storage, data: st.DataObject) -> None:
    tenant_id = new_id("ten")
    batch = data.draw(st.lists(messages(tenant_id), min_size=1, max_size=5))
    with storage.unit_of_work() as uow:
        uow.messages.add_many([(m, f"{i:064x}") for i, m in enumerate(batch)])
        uow.commit()
    with storage.unit_of_work() as uow:
        assert [uow.messages.get(tenant_id, m.id) for m in batch] == batch


@EXAMPLES
@given(data=st.data())
def test_update_stores_any_new_state_and_appends_only_the_new_timeline_entries(
    storage: Storage, data: st.DataObject
) -> None:
    """What ``apply`` can change is stored; what was accepted and stored entries stay put."""
    tenant_id = new_id("ten")
    before = data.draw(messages(tenant_id))
    add(storage, before)
    after = data.draw(messages(tenant_id))
    stored_count = len(before.timeline)
    # A stale copy may disagree about stored entries: they are never rewritten.
    later = tuple(e for e in after.timeline if e.sequence >= stored_count)
    changed = evolve(
        after,
        id=before.id,
        client_message_id=before.client_message_id,
        segments=before.segments,
        parts=tuple(evolve(p, index=i) for i, p in enumerate(data.draw(_parts(before)))),
        timeline=after.timeline,
    )
    with storage.unit_of_work() as uow:
        uow.messages.update(changed)
        uow.commit()
    assert get(storage, tenant_id, before.id) == evolve(
        before,
        status=changed.status,
        attempts=changed.attempts,
        next_attempt_at=changed.next_attempt_at,
        updated_at=changed.updated_at,
        route=changed.route,
        possible_duplicate=changed.possible_duplicate,
        error=changed.error,
        parts=changed.parts,
        timeline=before.timeline + later,
    )


def _parts(m: Message) -> st.SearchStrategy[tuple[object, ...]]:
    from .builders import parts

    return st.tuples(*(parts(i) for i in range(m.segments)))


def test_update_after_each_transition_keeps_the_full_timeline(storage: Storage) -> None:
    tenant_id = new_id("ten")
    current = message(tenant_id, segments=2)
    add(storage, current)
    for event in (
        Claim(at(1), "route-a"),
        SubmitFailed(at(2), "carrier_busy", "0x58", retry_at=at(30)),
        Claim(at(30), "route-b"),
        PartSubmitted(at(31), 0, "c-0"),
        PartSubmitted(at(31), 1, "c-1"),
        PartReceipt(at(40), 0, ReceiptOutcome.DELIVERED),
        PartReceipt(at(41), 1, ReceiptOutcome.DELIVERED),
        PartReceipt(at(42), 1, ReceiptOutcome.DELIVERED),  # a duplicate: recorded, no change
    ):
        current = current.apply(event)
        with storage.unit_of_work() as uow:
            uow.messages.update(current)
            uow.commit()
        assert get(storage, tenant_id, current.id) == current
    assert current.status is Status.DELIVERED
    assert len(current.timeline) > 8


def test_update_never_rewrites_a_stored_timeline_entry(storage: Storage) -> None:
    tenant_id = new_id("ten")
    accepted = message(tenant_id)
    add(storage, accepted)
    claimed = accepted.apply(Claim(at(1), "route-a"))
    forged = evolve(
        claimed,
        timeline=(evolve(claimed.timeline[0], kind="tampered"), *claimed.timeline[1:]),
    )
    with storage.unit_of_work() as uow:
        uow.messages.update(forged)
        uow.commit()
    assert get(storage, tenant_id, accepted.id) == claimed


def test_updating_a_missing_or_foreign_message_raises_message_not_found(storage: Storage) -> None:
    stored = message(new_id("ten"))
    add(storage, stored)
    with pytest.raises(MessageNotFound), storage.unit_of_work() as uow:
        uow.messages.update(message(new_id("ten")))
    with pytest.raises(MessageNotFound), storage.unit_of_work() as uow:
        uow.messages.update(evolve(stored, tenant_id=new_id("ten"), attempts=3))
    assert get(storage, stored.tenant_id, stored.id) == stored


# --------------------------------------------------------------------------- identity


def test_another_tenants_message_is_none(storage: Storage) -> None:
    stored = message(new_id("ten"), client_message_id="order-1")
    add(storage, stored)
    other = new_id("ten")
    assert get(storage, other, stored.id) is None
    with storage.unit_of_work() as uow:
        assert uow.messages.find_by_client_id(other, "order-1") is None
        assert uow.messages.find_by_client_id(stored.tenant_id, "order-2") is None
        assert uow.messages.summaries(other) == []


def test_a_reused_client_message_id_raises_duplicate_client_message_id(storage: Storage) -> None:
    tenant_id = new_id("ten")
    first = message(tenant_id, client_message_id="order-1")
    add(storage, first)
    with pytest.raises(DuplicateClientMessageId), storage.unit_of_work() as uow:
        uow.messages.add(message(tenant_id, client_message_id="order-1"), fingerprint=None)
    with storage.unit_of_work() as uow:
        assert uow.messages.find_by_client_id(tenant_id, "order-1") == (first, FINGERPRINT)


def test_the_same_client_message_id_in_two_tenants_is_two_messages(storage: Storage) -> None:
    a = message(new_id("ten"), client_message_id="order-1")
    b = message(new_id("ten"), client_message_id="order-1")
    add(storage, a, b)
    assert get(storage, a.tenant_id, a.id) == a
    assert get(storage, b.tenant_id, b.id) == b


def test_messages_without_a_client_message_id_never_collide(storage: Storage) -> None:
    tenant_id = new_id("ten")
    add(storage, message(tenant_id), message(tenant_id))
    with storage.unit_of_work() as uow:
        assert len(uow.messages.summaries(tenant_id)) == 2


def test_a_taken_message_id_raises_already_exists(storage: Storage) -> None:
    stored = message(new_id("ten"))
    add(storage, stored)
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.messages.add(evolve(stored, content="different"), fingerprint=None)
    assert get(storage, stored.tenant_id, stored.id) == stored


def test_a_duplicate_inside_a_batch_raises_and_the_rollback_keeps_nothing(
    storage: Storage,
) -> None:
    tenant_id = new_id("ten")
    batch = [
        message(tenant_id, client_message_id="a"),
        message(tenant_id, client_message_id="b"),
        message(tenant_id, client_message_id="a"),
    ]
    with pytest.raises(DuplicateClientMessageId), storage.unit_of_work() as uow:
        uow.messages.add_many([(m, None) for m in batch])
    with storage.unit_of_work() as uow:
        assert uow.messages.summaries(tenant_id) == []


def test_a_batch_reusing_a_stored_message_id_raises_already_exists(storage: Storage) -> None:
    tenant_id = new_id("ten")
    stored = message(tenant_id)
    add(storage, stored)
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.messages.add_many([(message(tenant_id), None), (stored, None)])
    with storage.unit_of_work() as uow:
        assert [s.id for s in uow.messages.summaries(tenant_id)] == [stored.id]


def test_after_a_duplicate_the_next_unit_of_work_works(storage: Storage) -> None:
    tenant_id = new_id("ten")
    add(storage, message(tenant_id, client_message_id="x"))
    with pytest.raises(DuplicateClientMessageId), storage.unit_of_work() as uow:
        uow.messages.add(message(tenant_id, client_message_id="x"), fingerprint=None)
    fresh = message(tenant_id, client_message_id="y")
    add(storage, fresh)
    assert get(storage, tenant_id, fresh.id) == fresh


def test_summaries_give_status_price_and_sandbox_of_the_tenants_messages(storage: Storage) -> None:
    tenant_id = new_id("ten")
    paid = message(tenant_id, price_paise=50)
    free = message(tenant_id, sandbox=True, accepted=5)
    failed = (
        message(tenant_id, price_paise=25, accepted=10)
        .apply(Claim(at(11), "route-a"))
        .apply(SubmitFailed(at(12), "carrier_rejected", "0x45", retry_at=None))
    )
    add(storage, paid, free, failed, message(new_id("ten")))
    with storage.unit_of_work() as uow:
        summaries = sorted(uow.messages.summaries(tenant_id), key=lambda s: s.id)
    assert summaries == sorted(
        [
            MessageSummary(paid.id, Status.ACCEPTED, 50, False),
            MessageSummary(free.id, Status.ACCEPTED, 0, True),
            MessageSummary(failed.id, Status.FAILED, 25, False),
        ],
        key=lambda s: s.id,
    )


# --------------------------------------------------------------------------- races


def test_concurrent_adds_of_one_client_message_id_store_exactly_one(
    sql_storage: SqlStorage,
) -> None:
    tenant_id = new_id("ten")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            with sql_storage.unit_of_work() as uow:
                uow.messages.add(message(tenant_id, client_message_id="once"), fingerprint=None)
                uow.commit()
            outcomes.append("stored")
        except DuplicateClientMessageId:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 7 + ["stored"]
    with sql_storage.unit_of_work() as uow:
        assert len(uow.messages.summaries(tenant_id)) == 1


def test_find_by_client_ids_returns_the_tenants_hits_only(storage: Storage) -> None:
    tenant_id, other = new_id("ten"), new_id("ten")
    a = message(tenant_id, client_message_id="order-1")
    b = message(tenant_id, client_message_id="order-2")
    c = message(other, client_message_id="order-3")
    add(storage, a, b, c)
    with storage.unit_of_work() as uow:
        found = uow.messages.find_by_client_ids(
            tenant_id, ["order-1", "order-3", "order-9", "order-1"]
        )
        assert dict(found) == {"order-1": (a, FINGERPRINT)}
        assert uow.messages.find_by_client_ids(tenant_id, []) == {}
        many = [f"order-{n}" for n in range(1200)]  # more than one chunk of ids
        assert set(uow.messages.find_by_client_ids(tenant_id, many)) == {"order-1", "order-2"}


# --------------------------------------------------------------------------- batches


def submitted(m: Message, route: str, *carrier_ids: str, claimed: float = 1) -> Message:
    """``m`` claimed on ``route`` with its parts acknowledged under ``carrier_ids``."""
    m = m.apply(Claim(at(claimed), route))
    for index, carrier_id in enumerate(carrier_ids):
        m = m.apply(PartSubmitted(at(claimed + 1), index, carrier_id))
    return m


def test_get_many_loads_a_batch_by_tenant_and_id(storage: Storage) -> None:
    tenant_a, tenant_b = new_id("ten"), new_id("ten")
    one = submitted(message(tenant_a, segments=3), "r1", "x1", "x2", "x3")
    two = message(tenant_a)
    three = message(tenant_b, segments=2)
    add(storage, one, two, three)
    with storage.unit_of_work() as uow:
        found = uow.messages.get_many(
            [
                (tenant_a, one.id),
                (tenant_a, two.id),
                (tenant_a, three.id),  # another tenant's: absent
                (tenant_b, three.id),
                (tenant_a, "missing"),
            ]
        )
        assert uow.messages.get_many([]) == {}
        assert uow.messages.get_many([(tenant_b, one.id)]) == {}
    assert found == {one.id: one, two.id: two, three.id: three}


def test_get_many_handles_more_ids_than_one_in_list_holds(storage: Storage) -> None:
    tenant_id = new_id("ten")
    batch = [message(tenant_id) for _ in range(620)]
    with storage.unit_of_work() as uow:
        uow.messages.add_many([(m, None) for m in batch])
        uow.commit()
    with storage.unit_of_work() as uow:
        found = uow.messages.get_many([(tenant_id, m.id) for m in batch])
    assert found == {m.id: m for m in batch}


def test_update_many_equals_updating_each(storage: Storage) -> None:
    tenant_id = new_id("ten")
    first, second, third = (message(tenant_id, segments=2) for _ in range(3))
    add(storage, first, second, third)
    changed = [
        submitted(first, "r1", "a-0", "a-1"),
        first.apply(Claim(at(1), "r2")).apply(
            SubmitFailed(at(2), "carrier_busy", "0x58", retry_at=at(30))
        ),
        third,  # unchanged
    ]
    changed[1] = evolve(changed[1], id=second.id, client_message_id=second.client_message_id)
    with storage.unit_of_work() as uow:
        uow.messages.update_many(changed)
        uow.messages.update_many([])
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.messages.get_many([(tenant_id, m.id) for m in changed]) == {
            m.id: m for m in changed
        }
    # The timeline stays append-only: a later batch with tampered old entries appends only.
    later = changed[0].apply(PartReceipt(at(40), 0, ReceiptOutcome.DELIVERED))
    forged = evolve(
        later, timeline=(evolve(later.timeline[0], kind="tampered"), *later.timeline[1:])
    )
    with storage.unit_of_work() as uow:
        uow.messages.update_many([forged])
        uow.commit()
    assert get(storage, tenant_id, later.id) == later


def test_updates_of_messages_read_in_the_same_unit_of_work_store_every_part_change(
    storage: Storage,
) -> None:
    """Adapters may skip parts that did not change since they read them; nothing is lost."""
    tenant_id = new_id("ten")
    stored = message(tenant_id, segments=3)
    add(storage, stored)
    with storage.unit_of_work() as uow:
        read = uow.messages.get_many([(tenant_id, stored.id)])[stored.id]
        claimed = read.apply(Claim(at(1), "r1"))  # parts unchanged
        uow.messages.update_many([claimed])
        one = claimed.apply(PartSubmitted(at(2), 1, "c-1"))
        uow.messages.update(one)  # part 1 changed
        two = one.apply(PartSubmitted(at(3), 0, "c-0"))
        uow.messages.update_many([two])  # part 0 changed; part 1 as just written
        # A part equal in value but rebuilt (not the object read) is written too.
        rebuilt = evolve(two, parts=tuple(evolve(p) for p in two.parts))
        uow.messages.update_many([rebuilt])
        uow.commit()
    assert get(storage, tenant_id, stored.id) == two
    assert [p.carrier_message_id for p in two.parts] == ["c-0", "c-1", None]


def test_update_many_refuses_a_message_changed_since_it_was_read(storage: Storage) -> None:
    stored = message(new_id("ten"))
    add(storage, stored)
    read = len(stored.timeline)
    # Another transaction moves the message on after we read it.
    theirs = stored.apply(Claim(at(1), "r1"))
    with storage.unit_of_work() as uow:
        uow.messages.update_many([theirs], expected_events={stored.id: read})
        uow.commit()
    ours = stored.apply(Expire(stored.expires_at))
    with pytest.raises(ConcurrentUpdate), storage.unit_of_work() as uow:
        uow.messages.update_many([ours], expected_events={stored.id: read})
    assert get(storage, stored.tenant_id, stored.id) == theirs
    # Read again, and the retry goes through.
    again = theirs.apply(SubmitFailed(at(2), "carrier_busy", "0x58", retry_at=at(30)))
    with storage.unit_of_work() as uow:
        uow.messages.update_many([again], expected_events={again.id: len(theirs.timeline)})
        uow.commit()
    assert get(storage, stored.tenant_id, stored.id) == again


def test_update_many_with_a_missing_or_foreign_message_raises(storage: Storage) -> None:
    stored = message(new_id("ten"))
    add(storage, stored)
    claimed = stored.apply(Claim(at(1), "r1"))
    for stranger in (message(new_id("ten")), evolve(stored, tenant_id=new_id("ten"))):
        with pytest.raises(MessageNotFound), storage.unit_of_work() as uow:
            uow.messages.update_many([claimed, stranger])
    assert get(storage, stored.tenant_id, stored.id) == stored


def test_find_by_carrier_ids_matches_parts_on_route_and_carrier_id(storage: Storage) -> None:
    tenant_a, tenant_b = new_id("ten"), new_id("ten")
    long = submitted(message(tenant_a, segments=2), "r1", "c-1", "c-2")
    other_tenant = submitted(message(tenant_b), "r1", "c-3")
    other_route = submitted(message(tenant_a), "r2", "c-4")
    same_id_elsewhere = submitted(message(tenant_b), "r2", "c-1")
    pending = message(tenant_a)
    add(storage, long, other_tenant, other_route, same_id_elsewhere, pending)
    with storage.unit_of_work() as uow:
        found = uow.messages.find_by_carrier_ids("r1", ["c-1", "c-2", "c-3", "c-4", "nope"])
        assert uow.messages.find_by_carrier_ids("r2", ["c-1"]) == {"c-1": (same_id_elsewhere, 0)}
        assert uow.messages.find_by_carrier_ids("r3", ["c-1"]) == {}
        assert uow.messages.find_by_carrier_ids("r1", []) == {}
    assert found == {"c-1": (long, 0), "c-2": (long, 1), "c-3": (other_tenant, 0)}


def test_awaiting_receipts_lists_sent_messages_oldest_first(storage: Storage) -> None:
    tenant_id = new_id("ten")
    old = submitted(message(tenant_id), "r1", "w-1", claimed=1)
    new = submitted(message(tenant_id), "r1", "w-2", claimed=5)
    pending = message(tenant_id)
    add(storage, old, new, pending)
    assert old.status is Status.SENT
    with storage.unit_of_work() as uow:
        cutoff = max(old.updated_at, new.updated_at) + timedelta(seconds=1)
        found = uow.messages.awaiting_receipts(cutoff, 10)
        assert [m.id for m in found if m.tenant_id == tenant_id] == [
            m.id for m in sorted((old, new), key=lambda m: (m.updated_at, m.id))
        ]
        assert found[0] == get_in(uow, found[0])
        assert uow.messages.awaiting_receipts(min(old.updated_at, new.updated_at), 10) == []
        assert len(uow.messages.awaiting_receipts(cutoff, 1)) == 1


def get_in(uow: object, m: Message) -> Message | None:
    return uow.messages.get(m.tenant_id, m.id)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- torn reads


def _read_for(loader: str, uow: UnitOfWork, m: Message, others: list[Message]) -> Message:
    if loader == "get":
        read = uow.messages.get(m.tenant_id, m.id)
        assert read is not None
        return read
    if loader == "get_many":
        ids = [(x.tenant_id, x.id) for x in (m, *others)]
        return uow.messages.get_many(ids)[m.id]
    if loader == "list":
        page = uow.messages.list(m.tenant_id, MessageQuery(limit=50))
        return next(x for x in page.messages if x.id == m.id)
    return uow.messages.find_by_carrier_ids("r1", ["c-1"])["c-1"][0]


@pytest.mark.parametrize("after", [1, 2, 3, 4])
@pytest.mark.parametrize("loader", ["get", "get_many", "find_by_carrier_ids", "list"])
def test_a_message_read_while_another_transaction_commits_is_never_written_torn(
    sql_storage: SqlStorage, loader: str, after: int
) -> None:
    # PostgreSQL's READ COMMITTED gives each statement a fresh snapshot, so a
    # message read in several statements can mix two versions. Here the
    # receipt inbox of another worker delivers the message right after our
    # `after`-th statement; whatever we then write must not regress it to `sent`.
    if sql_storage.engine.dialect.name == "sqlite":
        pytest.skip("a SQLite transaction reads one snapshot (one writer holds the file)")
    tenant_id = new_id("ten")
    sent = submitted(message(tenant_id), "r1", "c-1")
    others = [message(tenant_id) for _ in range(5)]  # get_many past its one-by-one path
    add(sql_storage, sent, *others)
    delivered = sent.apply(PartReceipt(at(5), 0, ReceiptOutcome.DELIVERED))
    with sql_storage.unit_of_work() as uow:
        repository: Any = uow.messages
        real = repository._db
        fired: list[bool] = []
        statements: list[bool] = []

        class Interleaved:
            """The repository's session, committing the other transaction after one statement."""

            def __getattr__(self, name: str) -> Any:
                attribute = getattr(real, name)
                if name not in ("one", "all", "scalar") or fired:
                    return attribute

                def call(*args: Any, **kw: Any) -> Any:
                    result = attribute(*args, **kw)
                    statements.append(True)
                    if len(statements) == after:
                        fired.append(True)
                        with sql_storage.unit_of_work() as theirs:
                            read = {sent.id: len(sent.timeline)}
                            theirs.messages.update_many([delivered], expected_events=read)
                            theirs.commit()
                    return result

                return call

        repository._db = Interleaved()
        ours = _read_for(loader, uow, sent, others)
        repository._db = real
        assert fired
        # What was read is one version or the other, never a mix of both.
        delivered_read = ours.status is Status.DELIVERED
        assert (ours.timeline[-1].kind == "delivered") == delivered_read
        assert (ours.parts[0].status is PartStatus.DELIVERED) == delivered_read
        late = ours.apply(PartReceipt(at(6), 0, ReceiptOutcome.DELIVERED))
        try:
            uow.messages.update_many([late], expected_events={ours.id: len(ours.timeline)})
            uow.commit()
        except ConcurrentUpdate:
            pass  # the torn read was caught; the inbox reads again and retries
    stored = get(sql_storage, tenant_id, sent.id)
    assert stored is not None
    assert stored.status is Status.DELIVERED
    assert stored.timeline[-1].status is Status.DELIVERED
