"""The ledger: two-phase transfers, exact replays, one settlement each, never overdrawn."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.domain.errors import InsufficientCredits, TransferConflict
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    AccountBalance,
    Transfer,
    TransferKind,
    apply_effects,
    effects,
    message_transfer_id,
    recompute_balances,
    tenant_account,
)
from bharatsend_core.ports.storage import Storage, UnitOfWork

from .builders import at, funded_tenant, new_id, reserve, settle, top_up

POST, VOID, REFUND = TransferKind.POST, TransferKind.VOID, TransferKind.REFUND


def balance(storage: Storage, account_id: str) -> AccountBalance:
    with storage.unit_of_work() as uow:
        return uow.ledger.balance(account_id)


def record(storage: Storage, *transfers: Transfer) -> None:
    with storage.unit_of_work() as uow:
        for transfer in transfers:
            uow.ledger.record(transfer)
        uow.commit()


def new_tenant(storage: Storage, paise: int = 1_000) -> str:
    with storage.unit_of_work() as uow:
        tenant_id = funded_tenant(uow, paise)
        uow.commit()
    return tenant_id


# --------------------------------------------------------------------------- effects


def test_a_top_up_credits_the_tenant_and_debits_the_top_ups_account(storage: Storage) -> None:
    before = balance(storage, TOPUPS_ACCOUNT)
    tenant_id = new_tenant(storage, 0)
    record(storage, top_up(tenant_id, 1_000))
    assert balance(storage, tenant_account(tenant_id)) == AccountBalance(
        tenant_account(tenant_id), credits_posted=1_000
    )
    after = balance(storage, TOPUPS_ACCOUNT)
    assert after.debits_posted - before.debits_posted == 1_000


def test_a_reservation_holds_credits_until_it_is_posted(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    account = tenant_account(tenant_id)
    revenue = balance(storage, REVENUE_ACCOUNT)
    record(storage, reserve(tenant_id, "msg_1", 100))
    held = balance(storage, account)
    assert (held.debits_pending, held.available, held.posted) == (100, 900, 1_000)
    assert balance(storage, REVENUE_ACCOUNT).credits_pending - revenue.credits_pending == 100

    record(storage, settle(tenant_id, "msg_1", POST, 75))  # posted at the route's lower price
    posted = balance(storage, account)
    assert (posted.debits_pending, posted.debits_posted, posted.available) == (0, 75, 925)
    revenue_after = balance(storage, REVENUE_ACCOUNT)
    assert revenue_after.credits_pending == revenue.credits_pending
    assert revenue_after.credits_posted - revenue.credits_posted == 75


def test_a_void_releases_the_whole_reservation(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    record(storage, reserve(tenant_id, "msg_1", 100), settle(tenant_id, "msg_1", VOID, 100))
    assert balance(storage, tenant_account(tenant_id)) == AccountBalance(
        tenant_account(tenant_id), credits_posted=1_000
    )


def test_a_refund_gives_posted_credits_back(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    record(
        storage,
        reserve(tenant_id, "msg_1", 100),
        settle(tenant_id, "msg_1", POST, 100),
        settle(tenant_id, "msg_1", REFUND, 40),
    )
    refunded = balance(storage, tenant_account(tenant_id))
    assert (refunded.available, refunded.debits_posted, refunded.credits_posted) == (
        940,
        100,
        1_040,
    )


def test_balance_of_an_unknown_account_is_all_zero(storage: Storage) -> None:
    assert balance(storage, "tenant:nobody") == AccountBalance("tenant:nobody")


def test_ensure_account_is_idempotent_and_keeps_totals(storage: Storage) -> None:
    tenant_id = new_tenant(storage, 500)
    with storage.unit_of_work() as uow:
        uow.ledger.ensure_account(tenant_account(tenant_id), tenant_id)
        uow.commit()
    assert balance(storage, tenant_account(tenant_id)).available == 500


def test_a_transfer_round_trips_and_settlement_of_finds_the_post_or_void(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    held, post = reserve(tenant_id, "msg_1", 100), settle(tenant_id, "msg_1", POST, 100)
    voided = reserve(tenant_id, "msg_2", 30)
    void = settle(tenant_id, "msg_2", VOID, 30)
    record(storage, evolve(held, reference="order-7"), post, voided, void)
    with storage.unit_of_work() as uow:
        assert uow.ledger.get(held.id) == evolve(held, reference="order-7")
        assert uow.ledger.get("nope") is None
        assert uow.ledger.settlement_of(held.id) == post
        assert uow.ledger.settlement_of(voided.id) == void
        assert uow.ledger.settlement_of(post.id) is None  # a refund is not a settlement
        record_pending = reserve(tenant_id, "msg_3", 10)
        uow.ledger.record(record_pending)
        assert uow.ledger.settlement_of(record_pending.id) is None


# --------------------------------------------------------------------------- replays


def test_an_equal_replay_returns_the_stored_transfer_and_changes_nothing(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    original = reserve(tenant_id, "msg_1", 100)
    record(storage, original)
    before = balance(storage, tenant_account(tenant_id))
    with storage.unit_of_work() as uow:
        # The time of the retry differs; everything else is the same request.
        assert uow.ledger.record(evolve(original, created_at=at(300))) == original
        uow.commit()
    assert balance(storage, tenant_account(tenant_id)) == before


def test_a_replay_of_a_reservation_that_spent_everything_is_still_a_no_op(
    storage: Storage,
) -> None:
    tenant_id = new_tenant(storage, 100)
    original = reserve(tenant_id, "msg_1", 100)
    record(storage, original)
    record(storage, original)
    assert balance(storage, tenant_account(tenant_id)).available == 0


def test_a_replay_with_different_fields_raises_transfer_conflict(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    original = reserve(tenant_id, "msg_1", 100)
    record(storage, original)
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(evolve(original, amount=101))
    assert balance(storage, tenant_account(tenant_id)).debits_pending == 100


# --------------------------------------------------------------------------- refusals


def test_a_second_settlement_of_a_reservation_is_refused(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    record(storage, reserve(tenant_id, "msg_1", 100), settle(tenant_id, "msg_1", POST, 100))
    before = balance(storage, tenant_account(tenant_id))
    for late in (
        settle(tenant_id, "msg_1", VOID, 100),
        settle(tenant_id, "msg_1", POST, 100, phase="refund"),  # another id, same reservation
    ):
        with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
            uow.ledger.record(late)
    assert balance(storage, tenant_account(tenant_id)) == before


def test_a_second_refund_of_a_post_is_refused(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    refund = settle(tenant_id, "msg_1", REFUND, 40)
    record(storage, reserve(tenant_id, "msg_1", 100), settle(tenant_id, "msg_1", POST, 100), refund)
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(evolve(refund, id=new_id("refund")))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda t: settle(t, "msg_1", POST, 101), id="post-above-reserved"),
        pytest.param(lambda t: settle(t, "msg_404", POST, 1), id="settles-nothing"),
        pytest.param(lambda t: settle(t, "msg_1", REFUND, 1), id="refund-of-a-reservation"),
        pytest.param(
            lambda t: evolve(settle(t, "msg_1", POST, 50), credit_account=TOPUPS_ACCOUNT),
            id="post-to-other-accounts",
        ),
    ],
)
def test_a_settlement_that_does_not_fit_is_refused(storage: Storage, bad: object) -> None:
    tenant_id = new_tenant(storage)
    record(storage, reserve(tenant_id, "msg_1", 100))
    before = balance(storage, tenant_account(tenant_id))
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(bad(tenant_id))  # type: ignore[operator]
    assert balance(storage, tenant_account(tenant_id)) == before


def test_a_refund_above_the_posted_amount_is_refused(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    record(storage, reserve(tenant_id, "msg_1", 100), settle(tenant_id, "msg_1", POST, 60))
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(settle(tenant_id, "msg_1", REFUND, 61))


def test_an_unknown_account_is_a_transfer_conflict(storage: Storage) -> None:
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(top_up(new_id("ten"), 100))  # no tenant:… account yet
    tenant_id = new_tenant(storage)
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.record(evolve(reserve(tenant_id, "msg_1", 10), credit_account="system:nope"))
    assert balance(storage, tenant_account(tenant_id)).available == 1_000


def test_an_overdraw_is_refused_with_the_domains_insufficient_credits(storage: Storage) -> None:
    tenant_id = new_tenant(storage, 100)
    record(storage, reserve(tenant_id, "msg_1", 60))
    too_much = reserve(tenant_id, "msg_2", 41)
    before = balance(storage, tenant_account(tenant_id))
    with pytest.raises(InsufficientCredits) as expected:
        apply_effects({before.account_id: before}, effects(too_much))
    with pytest.raises(InsufficientCredits) as refused, storage.unit_of_work() as uow:
        uow.ledger.record(too_much)
    assert refused.value.code == "insufficient_credits"
    assert refused.value.message == expected.value.message
    assert dict(refused.value.detail) == {"available_paise": 40}


def test_a_refused_transfer_leaves_nothing_behind_in_its_unit_of_work(storage: Storage) -> None:
    """The service may go on after a refusal (a batch skips what it cannot afford)."""
    tenant_id = new_tenant(storage, 100)
    with storage.unit_of_work() as uow:
        uow.ledger.record(reserve(tenant_id, "msg_1", 60))
        with pytest.raises(InsufficientCredits):
            uow.ledger.record(reserve(tenant_id, "msg_2", 41))
        with pytest.raises(TransferConflict):
            uow.ledger.record(evolve(reserve(tenant_id, "msg_3", 1), credit_account="system:no"))
        uow.ledger.record(reserve(tenant_id, "msg_4", 40))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.ledger.get(reserve(tenant_id, "msg_2", 41).id) is None
        assert uow.ledger.get(reserve(tenant_id, "msg_3", 1).id) is None
        assert [t.message_id for _, t in uow.ledger.transfers(tenant_id=tenant_id)][1:] == [
            "msg_1",
            "msg_4",
        ]
    assert balance(storage, tenant_account(tenant_id)).available == 0


# --------------------------------------------------------------------------- reading


def test_transfers_come_in_recorded_order_and_page_by_their_cursor(storage: Storage) -> None:
    mine, theirs = new_tenant(storage), new_tenant(storage)
    record(
        storage,
        reserve(mine, "m1", 10),
        reserve(theirs, "t1", 10),
        reserve(mine, "m2", 10),
        settle(mine, "m1", POST, 10),
    )
    with storage.unit_of_work() as uow:
        listed = [t.message_id for _, t in uow.ledger.transfers(tenant_id=mine)]
        assert listed == [None, "m1", "m2", "m1"]  # the top-up, then in recorded order
        account = [t.id for _, t in uow.ledger.transfers(account_id=tenant_account(theirs))]
        assert len(account) == 2
        everything = uow.ledger.transfers(tenant_id=mine)
        cursors = [seq for seq, _ in everything]
        assert cursors == sorted(cursors)
        first_page = uow.ledger.transfers(tenant_id=mine, limit=2)
        second_page = uow.ledger.transfers(tenant_id=mine, after=first_page[-1][0], limit=2)
        assert [*first_page, *second_page] == list(everything)
        assert uow.ledger.transfers(tenant_id=mine, after=cursors[-1]) == []


def test_balances_lists_every_account(storage: Storage) -> None:
    tenant_id = new_tenant(storage)
    with storage.unit_of_work() as uow:
        ids = [b.account_id for b in uow.ledger.balances()]
    assert {TOPUPS_ACCOUNT, REVENUE_ACCOUNT, tenant_account(tenant_id)} <= set(ids)
    assert ids == sorted(ids)


# --------------------------------------------------------------------------- invariants


@dataclass
class Model:
    """What the test believes each message's charge is at (to pick meaningful next steps)."""

    reserved: dict[str, int] = field(default_factory=dict)
    posted: dict[str, int] = field(default_factory=dict)


def step(uow: UnitOfWork, tenant_id: str, model: Model, op: tuple[str, int, int]) -> None:
    kind, n, amount = op
    message_id = f"{tenant_id}.m{n}"
    try:
        if kind == "top_up":
            uow.ledger.record(top_up(tenant_id, amount))
        elif kind == "reserve":
            uow.ledger.record(reserve(tenant_id, message_id, amount))
            model.reserved.setdefault(message_id, amount)
        elif kind == "post" and message_id in model.reserved:
            posted = min(amount, model.reserved[message_id])
            uow.ledger.record(settle(tenant_id, message_id, POST, posted))
            model.posted.setdefault(message_id, posted)
        elif kind == "void" and message_id in model.reserved:
            uow.ledger.record(settle(tenant_id, message_id, VOID, model.reserved[message_id]))
        elif kind == "refund" and message_id in model.posted:
            refund = min(amount, model.posted[message_id])
            uow.ledger.record(settle(tenant_id, message_id, REFUND, refund))
        uow.commit()
    except (InsufficientCredits, TransferConflict):
        uow.rollback()


operations = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "reserve", "reserve", "post", "void", "refund"]),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=1, max_value=400),
    ),
    max_size=25,
)


@settings(
    max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(ops=operations)
def test_accounts_always_sum_to_zero_match_their_transfers_and_never_overdraw(
    storage: Storage, ops: list[tuple[str, int, int]]
) -> None:
    tenant_id = new_tenant(storage, 0)
    model = Model()
    with storage.unit_of_work() as uow:
        for op in ops:
            step(uow, tenant_id, model, op)
            mine = uow.ledger.balance(tenant_account(tenant_id))
            assert mine.available >= 0
    with storage.unit_of_work() as uow:
        stored = {b.account_id: b for b in uow.ledger.balances()}
        transfers = [t for _, t in uow.ledger.transfers()]
    assert sum(b.net for b in stored.values()) == 0
    rebuilt = recompute_balances(transfers)
    for account_id, rebuilt_balance in rebuilt.items():
        assert stored[account_id] == rebuilt_balance


# --------------------------------------------------------------------------- races


def test_concurrent_reservations_never_spend_the_same_paise(sql_storage: SqlStorage) -> None:
    """8 threads x 50 reservations of 10 paise against 1,000: exactly 100 succeed."""
    tenant_id = new_tenant(sql_storage, 1_000)
    account = tenant_account(tenant_id)
    barrier = threading.Barrier(9)
    done = threading.Event()
    accepted: list[str] = []
    refused: list[str] = []
    seen: list[int] = []

    def spend(worker: int) -> None:
        barrier.wait()
        for n in range(50):
            message_id = f"w{worker}.{n}"
            try:
                with sql_storage.unit_of_work() as uow:
                    uow.ledger.record(reserve(tenant_id, message_id, 10))
                    uow.commit()
                accepted.append(message_id)
            except InsufficientCredits:
                refused.append(message_id)

    def watch() -> None:
        barrier.wait()
        while not done.is_set():
            with sql_storage.unit_of_work() as uow:
                seen.append(uow.ledger.balance(account).available)

    workers = [threading.Thread(target=spend, args=(w,)) for w in range(8)]
    watcher = threading.Thread(target=watch)
    for thread in (*workers, watcher):
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    watcher.join()

    assert len(accepted) == 100
    assert len(refused) == 300
    assert seen
    assert min(seen) >= 0
    final = balance(sql_storage, account)
    assert (final.available, final.debits_pending) == (0, 1_000)
    with sql_storage.unit_of_work() as uow:
        reservations = [t for _, t in uow.ledger.transfers(tenant_id=tenant_id)][1:]
    assert sorted(t.message_id or "" for t in reservations) == sorted(accepted)


def test_a_post_and_a_void_racing_for_one_reservation_settle_it_once(
    sql_storage: SqlStorage,
) -> None:
    tenant_id = new_tenant(sql_storage)
    record(sql_storage, reserve(tenant_id, "msg_1", 100))
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def settle_as(kind: TransferKind) -> None:
        barrier.wait()
        try:
            record(sql_storage, settle(tenant_id, "msg_1", kind, 100))
            outcomes[kind.value] = "settled"
        except TransferConflict:
            outcomes[kind.value] = "refused"

    threads = [threading.Thread(target=settle_as, args=(k,)) for k in (POST, VOID)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "settled"]
    assert balance(sql_storage, tenant_account(tenant_id)).debits_pending == 0


# ----------------------------------------------------------------------- reserve_many


def test_reserve_many_records_every_reservation_with_one_summed_debit(storage: Storage) -> None:
    tenant_id = new_tenant(storage, 100)
    batch = [reserve(tenant_id, new_id("msg"), 20) for _ in range(5)]
    with storage.unit_of_work() as uow:
        uow.ledger.reserve_many(batch)
        uow.commit()
    acme = balance(storage, tenant_account(tenant_id))
    assert (acme.available, acme.pending) == (0, 100)
    with storage.unit_of_work() as uow:
        assert [uow.ledger.get(t.id) for t in batch] == batch
        uow.ledger.reserve_many([])


def test_reserve_many_is_all_or_nothing(storage: Storage) -> None:
    tenant_id = new_tenant(storage, 100)
    with pytest.raises(InsufficientCredits), storage.unit_of_work() as uow:
        uow.ledger.reserve_many([reserve(tenant_id, new_id("msg"), 60) for _ in range(2)])
    taken = reserve(tenant_id, new_id("msg"), 10)
    record(storage, taken)
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.reserve_many([reserve(tenant_id, new_id("msg"), 10), taken])
    with pytest.raises(TransferConflict), storage.unit_of_work() as uow:
        uow.ledger.reserve_many([top_up(tenant_id, 10)])
    acme = balance(storage, tenant_account(tenant_id))
    assert (acme.available, acme.pending) == (90, 10)


def test_reservations_of_different_tenants_do_not_wait_for_each_other(storage: Storage) -> None:
    """No shared hot row: an open reservation of one tenant never blocks another tenant's."""
    if not (isinstance(storage, SqlStorage) and storage.engine.dialect.name == "postgresql"):
        pytest.skip("only PostgreSQL runs writers concurrently (memory and SQLite serialise them)")
    a, b = new_tenant(storage, 100), new_tenant(storage, 100)
    finished = threading.Event()
    with storage.unit_of_work() as first:
        first.ledger.record(reserve(a, new_id("msg"), 10))  # holds tenant A's row, uncommitted

        def other_tenant() -> None:
            with storage.unit_of_work() as second:
                second.ledger.record(reserve(b, new_id("msg"), 10))
                second.commit()
            finished.set()

        worker = threading.Thread(target=other_tenant)
        worker.start()
        assert finished.wait(10), "tenant B's reservation waited for tenant A's transaction"
        first.commit()
    worker.join()
    assert balance(storage, REVENUE_ACCOUNT).credits_pending >= 20


# --------------------------------------------------------------------------- batches of settlements


def test_settle_many_equals_recording_each(storage: Storage) -> None:
    tenant = new_tenant(storage, 1_000)
    account = tenant_account(tenant)
    ids = [new_id("msg") for _ in range(4)]
    record(storage, *(reserve(tenant, m, 100) for m in ids))
    record(storage, settle(tenant, ids[3], POST, 100))
    batch = [
        settle(tenant, ids[0], POST, 60),  # the route was cheaper: 40 released
        settle(tenant, ids[1], VOID, 100),
        settle(tenant, ids[2], POST, 100),
        settle(tenant, ids[3], REFUND, 100),
    ]
    with storage.unit_of_work() as uow:
        # What the caller read already is used as is; the rest is read.
        known = uow.ledger.get_many([message_transfer_id(ids[0], "reserve")])
        assert len(known) == 1
        uow.ledger.settle_many(batch, known=known)
        uow.ledger.settle_many([])
        uow.commit()
    after = balance(storage, account)
    assert after.debits_pending == 0
    assert after.debits_posted == 60 + 100 + 100
    assert after.credits_posted == 1_000 + 100
    with storage.unit_of_work() as uow:
        found = uow.ledger.get_many([t.id for t in batch] + ["missing"])
    assert set(found) == {t.id for t in batch}
    assert found[batch[0].id].amount == 60


@pytest.mark.parametrize("case", ["already_settled", "unknown_reservation", "a_reservation"])
def test_settle_many_refuses_the_whole_batch(storage: Storage, case: str) -> None:
    tenant = new_tenant(storage, 1_000)
    good, other = new_id("msg"), new_id("msg")
    record(storage, reserve(tenant, good, 100), reserve(tenant, other, 100))
    if case == "already_settled":
        record(storage, settle(tenant, other, VOID, 100))
        bad = settle(tenant, other, POST, 100)
    elif case == "unknown_reservation":
        bad = settle(tenant, new_id("msg"), POST, 100)
    else:
        bad = reserve(tenant, new_id("msg"), 10)
    before = balance(storage, tenant_account(tenant))
    with storage.unit_of_work() as uow:
        known = uow.ledger.get_many([message_transfer_id(good, "reserve")])
        with pytest.raises(TransferConflict):
            uow.ledger.settle_many([settle(tenant, good, POST, 100), bad], known=known)
    assert balance(storage, tenant_account(tenant)) == before
    with storage.unit_of_work() as uow:
        assert uow.ledger.settlement_of(message_transfer_id(good, "reserve")) is None
