"""The dispatcher and the receipt inbox, stepped by hand on memory storage with a fake clock.

Memory carriers answer at once, so every test is deterministic: a step
records what completed, then claims and submits. The SMPP path is covered
over TCP in tests/integration/test_dispatch.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bharatsend_core import BharatSend
from bharatsend_core.adapters.memory.carrier import MemoryCarrier
from bharatsend_core.domain.errors import InvalidArgument, StorageUnavailable
from bharatsend_core.domain.ledger import Phase, TransferKind, message_transfer_id
from bharatsend_core.domain.message import FailureReason, Message, ReceiptOutcome, Status
from bharatsend_core.domain.routing import BreakerState, Connection, Route, RouteConfig
from bharatsend_core.service.context import Context
from bharatsend_core.service.dispatch import Dispatcher, DispatchOptions
from bharatsend_core.service.receipts import ReceiptInbox
from bharatsend_core.testing import FakeClock, SequentialIds

from .world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world

LONG_TEMPLATE = "1207160000000000099"

PRICE = 25  # paise per segment on the default rate card


def config(name: str, *, priority: int = 0, **route: object) -> RouteConfig:
    return RouteConfig(
        Route(name=name, priority=priority, **route),  # type: ignore[arg-type]
        Connection(host="127.0.0.1", port=2775, system_id="bsend", password="secret"),
    )


class Rig:
    """A world, memory carriers for its routes, a dispatcher and an inbox, all on one fake clock."""

    def __init__(self, world: World, *routes: RouteConfig, **options: object) -> None:
        self.world = world
        self.bs = world.bs
        self.clock = world.clock
        self.ctx = Context(self.bs.storage, self.clock, SequentialIds(7), self.bs.settings)
        self.carriers = {
            r.name: MemoryCarrier(r.name, clock=self.clock, receipt_outcome=None) for r in routes
        }
        self.inbox = ReceiptInbox(self.ctx)
        for carrier in self.carriers.values():
            carrier.start(lambda item, done: self.received.append((item, done)))
        self.received: list[tuple[object, object]] = []
        self.dispatcher = self.make_dispatcher("w1", routes, **options)

    def make_dispatcher(
        self, owner: str, routes: tuple[RouteConfig, ...], **options: object
    ) -> Dispatcher:
        opts = DispatchOptions(lease=timedelta(seconds=30), **options)  # type: ignore[arg-type]
        return Dispatcher(self.ctx, self.carriers, routes, owner=owner, options=opts)

    def send(self, **kwargs: object) -> str:
        args: dict[str, object] = {
            "phone_number": "+919812345678",
            "content": OTP_TEXT,
            "dlt_template_id": OTP_TEMPLATE,
        }
        args.update(kwargs)
        return self.bs.send(self.world.tenant_id, **args).id  # type: ignore[arg-type]

    def message(self, message_id: str) -> Message:
        return self.bs.get_message(self.world.tenant_id, message_id)

    def run(self, steps: int = 3) -> None:
        for _ in range(steps):
            self.dispatcher.step()

    def receipt(
        self, route: str, carrier_id: str, outcome: ReceiptOutcome, err: str = "000"
    ) -> None:
        carrier = self.carriers[route]
        carrier.send_receipt(carrier_id, outcome, err)
        deadline = time.monotonic() + 2
        while not self.received and time.monotonic() < deadline:
            time.sleep(0.001)
        items = list(self.received)
        self.received.clear()
        self.inbox.ingest([item for item, _ in items])  # type: ignore[misc]

    def kinds(self, message_id: str) -> list[str]:
        return [e.kind for e in self.message(message_id).timeline]

    def charges(self, message_id: str) -> dict[TransferKind, int]:
        out: dict[TransferKind, int] = {}
        for phase in Phase:
            t = self.ctx.read(
                lambda uow, p=phase: uow.ledger.get(message_transfer_id(message_id, p))
            )
            if t is not None:
                out[t.kind] = t.amount
        return out

    def depth(self) -> int:
        return self.ctx.read(lambda uow: uow.dispatch.depth(self.clock.now() + timedelta(days=1)))


@pytest.fixture
def world() -> Iterator[World]:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    yield make_world(bs, clock)
    bs.close()


def test_happy_path_is_sent_then_delivered_and_charged_at_submit(world: World) -> None:
    rig = Rig(world, config("agg1"))
    message_id = rig.send()
    rig.run()
    sent = rig.message(message_id)
    assert sent.status is Status.SENT
    assert sent.route == "agg1"
    assert sent.attempts == 1
    part = sent.parts[0]
    assert part.route == "agg1"
    assert part.carrier_message_id == "mem-agg1-1"
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE}
    assert rig.depth() == 0
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)
    delivered = rig.message(message_id)
    assert delivered.status is Status.DELIVERED
    assert rig.kinds(message_id) == [
        "accepted", "claimed", "part_submitted", "sent", "receipt", "delivered",
    ]  # fmt: skip
    assert rig.bs.reconcile(world.tenant_id).ok


def test_delivery_billing_posts_on_delivery_and_voids_a_failed_delivery(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.bs.set_billing_point(world.tenant_id, "delivery")
    ok, bad = rig.send(), rig.send()
    rig.run()
    assert rig.charges(ok) == {TransferKind.RESERVE: PRICE}  # not yet: billed on delivery
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)
    rig.receipt("agg1", "mem-agg1-2", ReceiptOutcome.UNDELIVERED, "001")
    assert rig.charges(ok) == {TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE}
    assert rig.charges(bad) == {TransferKind.RESERVE: PRICE, TransferKind.VOID: PRICE}
    failed = rig.message(bad)
    assert failed.status is Status.UNDELIVERED
    assert failed.parts[0].error_code == "001"
    assert rig.bs.balance(world.tenant_id).available_paise == 10_000 - PRICE
    assert rig.bs.reconcile(world.tenant_id).ok


def test_rejected_after_a_submit_charge_is_refunded(world: World) -> None:
    rig = Rig(world, config("agg1"))
    message_id = rig.send()
    rig.run()
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.REJECTED, "633")
    assert rig.message(message_id).status is Status.REJECTED
    assert rig.charges(message_id) == {
        TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE, TransferKind.REFUND: PRICE,
    }  # fmt: skip
    assert rig.bs.balance(world.tenant_id).available_paise == 10_000
    assert rig.bs.reconcile(world.tenant_id).ok


def test_duplicate_and_out_of_order_receipts_change_nothing(world: World) -> None:
    rig = Rig(world, config("agg1"))
    message_id = rig.send()
    rig.run()
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)
    before = rig.message(message_id)
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)  # the SMSC redelivered it
    assert rig.message(message_id) == before  # deduplicated in the inbox: not even recorded
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.ENROUTE)  # an old intermediate one
    after = rig.message(message_id)
    assert after.status is Status.DELIVERED
    assert after.timeline[-1].kind == "receipt_ignored"
    assert rig.charges(message_id)[TransferKind.POST] == PRICE


def test_a_receipt_before_the_submit_response_is_parked_then_applied(world: World) -> None:
    rig = Rig(world, config("agg1"))
    # The receipt for the id the carrier will hand out arrives first.
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)
    parked = rig.ctx.read(lambda uow: uow.receipts.list(state="parked"))
    assert [r.carrier_message_id for r in parked] == ["mem-agg1-1"]
    message_id = rig.send()
    rig.run()
    assert rig.message(message_id).status is Status.DELIVERED
    assert rig.ctx.read(lambda uow: uow.receipts.list(state="parked")) == []
    [applied] = rig.bs.message_receipts(world.tenant_id, message_id)
    assert applied.state == "applied"
    assert applied.part_index == 0


def test_a_rejection_that_overtakes_the_submit_response_is_charged_then_refunded(
    world: World,
) -> None:
    # The same ledger trail whichever comes first: under submit billing the
    # carrier took the message (post), then operator/DLT scrubbing refused it
    # (refund), even when both are recorded in one transaction.
    rig = Rig(world, config("agg1"))
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.REJECTED, "633")
    message_id = rig.send()
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.REJECTED
    assert rig.kinds(message_id)[-4:] == ["part_submitted", "sent", "receipt", "rejected"]
    assert rig.charges(message_id) == {
        TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE, TransferKind.REFUND: PRICE,
    }  # fmt: skip
    assert rig.bs.reconcile(world.tenant_id).ok


def test_a_receipt_nobody_claims_is_kept_as_unknown(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.receipt("agg1", "never-sent", ReceiptOutcome.DELIVERED)
    rig.clock.advance(timedelta(hours=7))
    assert rig.inbox.expire_parked() == 1
    [kept] = rig.bs.unmatched_receipts()
    assert kept.carrier_message_id == "never-sent"
    assert kept.state == "unknown"


def test_transient_failure_fails_over_to_the_next_route_at_once(world: World) -> None:
    rig = Rig(world, config("agg1"), config("agg2", priority=1))
    rig.carriers["agg1"].script("transient")
    message_id = rig.send()
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.SENT
    assert message.route == "agg2"
    assert message.attempts == 2
    assert rig.kinds(message_id) == [
        "accepted", "claimed", "submit_failed", "retry_scheduled", "claimed",
        "part_submitted", "sent",
    ]  # fmt: skip
    assert rig.dispatcher.stats.failovers == 1


def test_permanent_failure_fails_the_message_and_voids_its_charge(world: World) -> None:
    rig = Rig(world, config("agg1"), config("agg2", priority=1))
    rig.carriers["agg1"].script("permanent")
    message_id = rig.send()
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.FAILED
    assert message.error is not None
    assert message.error.code == "carrier_rejected"
    assert message.error.carrier_code == "0x0000000b"
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.VOID: PRICE}
    assert rig.depth() == 0


def test_permanent_failure_is_retried_elsewhere_when_the_route_allows(world: World) -> None:
    rig = Rig(world, config("agg1", retry_permanent_elsewhere=True), config("agg2", priority=1))
    rig.carriers["agg1"].script("permanent")
    message_id = rig.send()
    rig.run()
    assert rig.message(message_id).route == "agg2"
    assert rig.message(message_id).status is Status.SENT


def test_a_lone_route_retries_later_with_backoff(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.carriers["agg1"].script("throttled")
    message_id = rig.send()
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.RETRYING
    assert message.next_attempt_at is not None
    wait = message.next_attempt_at - rig.clock.now()
    assert timedelta(seconds=1) <= wait <= timedelta(seconds=2)
    rig.run()
    assert rig.message(message_id).status is Status.RETRYING  # not due yet
    rig.clock.advance(wait)
    rig.run()
    assert rig.message(message_id).status is Status.SENT
    assert rig.message(message_id).attempts == 2


def test_the_breaker_opens_after_repeated_failures_and_probes_after_cooldown(world: World) -> None:
    rig = Rig(
        world,
        config("agg1"),
        config("agg2", priority=1),
        breaker_failures=3,
        breaker_cooldown=30.0,
    )
    rig.carriers["agg1"].script("transient", "transient", "transient")
    first = [rig.send() for _ in range(3)]
    rig.run()
    assert all(rig.message(m).route == "agg2" for m in first)
    breaker = rig.dispatcher.breaker("agg1")
    assert breaker is not None
    assert breaker.state(rig.clock.monotonic()) == "open"
    second = rig.send()
    rig.run()
    assert rig.message(second).attempts == 1  # straight to agg2: agg1 is not even tried
    assert rig.message(second).route == "agg2"
    rig.clock.advance(31)
    probe = rig.send()
    rig.run()
    assert rig.message(probe).route == "agg1"  # the probe went through and succeeded
    state: BreakerState = rig.dispatcher.breaker("agg1").state(rig.clock.monotonic())  # type: ignore[union-attr]
    assert state == "closed"


def test_a_message_past_its_validity_fails_before_submit_and_is_voided(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.carriers["agg1"].ready = False  # the route is down: nothing can go
    message_id = rig.send(validity_seconds=60)
    rig.run()
    assert rig.message(message_id).status is Status.ACCEPTED  # released, waiting for a route
    rig.clock.advance(61)
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.FAILED
    assert message.error is not None
    assert message.error.code == "expired_before_submit"
    assert message.error.reason is FailureReason.VALIDITY_EXPIRED
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.VOID: PRICE}
    assert rig.carriers["agg1"].submits == []


def test_an_unanswered_otp_is_resent_and_flagged_possible_duplicate(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.carriers["agg1"].script("unknown")
    message_id = rig.send()
    rig.run()
    assert rig.message(message_id).status is Status.RETRYING
    rig.clock.advance(1)
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.SENT
    assert message.possible_duplicate
    assert "outcome_unknown" in rig.kinds(message_id)


def test_an_unanswered_promotional_part_is_assumed_submitted(world: World) -> None:
    rig = Rig(world, config("agg1"))
    rig.carriers["agg1"].script("unknown")
    message_id = rig.send()
    # Reconfigure the route so transactional unknowns are not resent.
    route = config("agg1")
    quiet = RouteConfig(route.route, Connection(
        host="127.0.0.1", port=2775, system_id="bsend", password="secret", resend_unknown=(),
    ))  # fmt: skip
    rig.dispatcher.set_routes([quiet], rig.carriers)
    rig.run()
    message = rig.message(message_id)
    assert message.status is Status.SENT
    assert message.parts[0].outcome_unknown
    assert not message.possible_duplicate


def test_a_crashed_workers_submitting_message_is_recovered_by_another(world: World) -> None:
    rig = Rig(world, config("agg1"))
    message_id = rig.send()
    # Worker 1 claims and marks the message submitting, then dies before any outcome.
    dead = rig.make_dispatcher("dead", (config("agg1"),))
    dead.claim_and_submit(10)
    assert rig.message(message_id).status is Status.SUBMITTING
    survivor = rig.make_dispatcher("w2", (config("agg1"),))
    survivor.step()
    assert rig.message(message_id).status is Status.SUBMITTING  # still leased by "dead"
    rig.clock.advance(31)  # the lease runs out
    for _ in range(3):
        survivor.step()
    message = rig.message(message_id)
    assert message.status is Status.SENT
    assert message.possible_duplicate  # the dead worker may have written the PDU
    assert message.attempts == 2
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE}


def test_no_route_for_the_category_keeps_the_message_queued(world: World) -> None:
    rig = Rig(world, config("promo_only", categories=["promotional"]))
    message_id = rig.send()
    rig.run()
    assert rig.message(message_id).status is Status.ACCEPTED
    assert rig.depth() == 1


def test_sandbox_messages_only_reach_sandbox_routes(world: World) -> None:
    rig = Rig(world, config("live"), config("sandbox", sandbox=True))
    live, test = rig.send(), rig.send(sandbox=True)
    rig.run()
    assert rig.message(live).route == "live"
    assert rig.message(test).route == "sandbox"


# --------------------------------------------------------------------------- properties

_SCRIPT = st.sampled_from(["accept", "transient", "throttled", "permanent", "unknown"])
_FINAL = st.sampled_from(
    [ReceiptOutcome.DELIVERED, ReceiptOutcome.UNDELIVERED, ReceiptOutcome.EXPIRED,
     ReceiptOutcome.REJECTED]
)  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    billing=st.sampled_from(["submit", "delivery"]),
    routes=st.integers(min_value=1, max_value=2),
    scripts=st.lists(_SCRIPT, max_size=6),
    outcomes=st.lists(st.tuples(_FINAL, st.booleans()), min_size=3, max_size=3),
    segments=st.sampled_from([1, 3]),
)
def test_whatever_happens_every_message_ends_settled_exactly_once(
    billing: str,
    routes: int,
    scripts: list[str],
    outcomes: list[tuple[ReceiptOutcome, bool]],
    segments: int,
) -> None:
    """Ledger invariant under any mix of submit faults, receipts and duplicates.

    Every message that reaches a final status has its reservation settled
    once (posted xor voided), refunds only follow posts, delivered messages
    are charged, and the books reconcile to the last paisa.
    """
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    world = make_world(bs, clock, credits=1_000_000)
    bs.set_billing_point(world.tenant_id, billing)
    bs.register_template(
        world.tenant_id, template_id=LONG_TEMPLATE, header="ACMEOT",
        category="transactional", body="Your OTP is {#var#}. " + "x" * 380,
    )  # fmt: skip
    configs = [config("agg1"), config("agg2", priority=1)][:routes]
    rig = Rig(world, *configs)
    rig.carriers["agg1"].script(*scripts)  # type: ignore[arg-type]
    text = OTP_TEXT if segments == 1 else "Your OTP is 482913. " + "x" * 380
    ids = []
    for _ in range(2):
        if segments == 1:
            ids.append(rig.send())
        else:
            ids.append(rig.send(content=text, dlt_template_id=LONG_TEMPLATE))
    for _ in range(12):  # retries, backoffs and failovers all play out
        rig.run(2)
        rig.clock.advance(timedelta(seconds=5))
    for message_id in ids:
        message = rig.message(message_id)
        for part, (outcome, duplicate) in zip(message.parts, outcomes, strict=False):
            if part.carrier_message_id is None or part.route is None:
                continue
            rig.receipt(part.route, part.carrier_message_id, outcome)
            if duplicate:
                rig.receipt(part.route, part.carrier_message_id, outcome)
    for message_id in ids:
        message = rig.message(message_id)
        charges = rig.charges(message_id)
        settled = {TransferKind.POST, TransferKind.VOID} & set(charges)
        if message.is_final:
            assert len(settled) == 1, (message.status, charges)
        if message.status is Status.DELIVERED:
            assert TransferKind.POST in charges
        if TransferKind.REFUND in charges:
            assert TransferKind.POST in charges
            assert message.status is Status.REJECTED
        if message.status is Status.FAILED:
            assert TransferKind.VOID in charges
    for message_id in ids:
        event(f"status {rig.message(message_id).status.value}")
    assert rig.bs.reconcile(world.tenant_id).ok
    bs.close()


def test_the_post_is_the_price_of_the_route_taken_and_the_rest_is_released(world: World) -> None:
    from bharatsend_core.domain.dlt import Category
    from bharatsend_core.domain.tenants import RateCard

    rig = Rig(world, config("cheap"))
    rig.bs.set_rates(
        world.tenant_id,
        RateCard(default=25, by_route={(Category.TRANSACTIONAL, "cheap"): 15}),
    )
    message_id = rig.send()
    rig.run()
    assert rig.charges(message_id) == {TransferKind.RESERVE: 25, TransferKind.POST: 15}
    assert rig.bs.balance(world.tenant_id).available_paise == 10_000 - 15
    assert rig.bs.reconcile(world.tenant_id).ok


def test_a_receipt_that_never_comes_expires_the_message_and_frees_its_credits(
    world: World,
) -> None:
    rig = Rig(world, config("agg1"))
    rig.bs.set_billing_point(world.tenant_id, "delivery")
    message_id = rig.send()
    rig.run()
    assert rig.message(message_id).status is Status.SENT
    rig.clock.advance(timedelta(hours=71))
    assert rig.inbox.time_out_receipts() == 0  # still within the wait
    rig.clock.advance(timedelta(hours=2))
    assert rig.inbox.time_out_receipts() == 1
    message = rig.message(message_id)
    assert message.status is Status.EXPIRED
    assert message.parts[0].error_code == "no_receipt"
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.VOID: PRICE}
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)  # too late: recorded only
    assert rig.message(message_id).status is Status.EXPIRED
    assert rig.bs.reconcile(world.tenant_id).ok


# --------------------------------------------------------------------------- hand-off at accept


def handing(rig: Rig) -> None:
    """Let the rig's dispatcher take messages at accept, as a running worker does."""
    rig.bs._ctx.hub.set_hand_off(rig.dispatcher.claim_at_accept)


def test_a_message_taken_at_accept_is_claimed_in_that_transaction_then_sent(
    world: World,
) -> None:
    rig = Rig(world, config("agg1"))
    handing(rig)
    message_id = rig.send()
    stored = rig.message(message_id)
    # Committed as claimed, before any PDU: the crash-safety rule of the claim.
    assert stored.status is Status.SUBMITTING
    assert (stored.route, stored.attempts) == ("agg1", 1)
    assert rig.kinds(message_id) == ["accepted", "claimed"]
    assert rig.carriers["agg1"].submits == []
    # Its dispatch row is leased to the dispatcher that took it: nobody else claims it.
    other = rig.make_dispatcher("w2", (config("agg1"),))
    other.step()
    assert other.stats.claimed == 0
    rig.dispatcher.step()
    assert [s.message_id for s in rig.carriers["agg1"].submits] == [message_id]
    rig.dispatcher.step()
    sent = rig.message(message_id)
    assert sent.status is Status.SENT
    assert rig.kinds(message_id) == ["accepted", "claimed", "part_submitted", "sent"]
    assert rig.charges(message_id) == {TransferKind.RESERVE: PRICE, TransferKind.POST: PRICE}
    assert rig.depth() == 0
    assert rig.dispatcher.stats.claimed == 1
    assert rig.bs.reconcile(world.tenant_id).ok


def test_a_batch_is_taken_at_accept_too(world: World) -> None:
    rig = Rig(world, config("agg1"))
    handing(rig)
    result = rig.bs.send_batch(
        world.tenant_id,
        [
            {"phone_number": f"+91981234567{i}", "content": OTP_TEXT,
             "dlt_template_id": OTP_TEMPLATE}
            for i in range(3)
        ],
    )  # fmt: skip
    ids = [item.result.message.id for item in result.items if item.result is not None]
    assert len(ids) == 3
    assert {rig.message(i).status for i in ids} == {Status.SUBMITTING}
    rig.run(2)
    assert {rig.message(i).status for i in ids} == {Status.SENT}
    assert rig.depth() == 0
    assert rig.bs.reconcile(world.tenant_id).ok


def test_the_hand_off_declines_and_the_message_is_queued_as_usual(world: World) -> None:
    """No ready route, a full worker, or a stopping one: accepted and free for any worker."""
    rig = Rig(world, config("agg1"), max_in_flight=1)
    handing(rig)
    rig.carriers["agg1"].ready = False
    unrouted = rig.send()
    assert rig.message(unrouted).status is Status.ACCEPTED
    rig.carriers["agg1"].ready = True
    taken, over = rig.send(), rig.send()  # the second finds the worker full
    assert rig.message(taken).status is Status.SUBMITTING
    assert rig.message(over).status is Status.ACCEPTED
    rig.dispatcher.taking_hand_offs = False
    stopping = rig.send()
    assert rig.message(stopping).status is Status.ACCEPTED
    assert rig.depth() == 4
    for _ in range(12):
        rig.dispatcher.step()
    assert {rig.message(i).status for i in (unrouted, taken, over, stopping)} == {Status.SENT}
    assert rig.bs.reconcile(world.tenant_id).ok


def test_an_accept_that_rolls_back_hands_nothing_over(world: World) -> None:
    rig = Rig(world, config("agg1"))
    handing(rig)
    calls: list[str] = []
    hand_off = rig.dispatcher.claim_at_accept

    def spy(message: Message, now: object) -> object:
        calls.append(message.id)
        return hand_off(message, now)  # type: ignore[arg-type]

    rig.bs._ctx.hub.set_hand_off(spy)  # type: ignore[arg-type]
    rig.send()
    # An accept whose transaction fails after the hand-off took the message.
    original = rig.bs.storage.unit_of_work

    class Failing:
        def __init__(self) -> None:
            self.inner = original()

        def __enter__(self) -> object:
            uow = self.inner.__enter__()
            add = uow.messages.add

            def add_then_fail(message: Message, *, fingerprint: str | None) -> None:
                add(message, fingerprint=fingerprint)
                raise StorageUnavailable("the database went away")

            uow.messages.add = add_then_fail  # type: ignore[method-assign]
            return uow

        def __exit__(self, *exc: object) -> None:
            self.inner.__exit__(*exc)  # type: ignore[arg-type]

    rig.bs.storage.unit_of_work = Failing  # type: ignore[method-assign]
    try:
        with pytest.raises(StorageUnavailable):
            rig.send(phone_number="+919812345679")
    finally:
        rig.bs.storage.unit_of_work = original  # type: ignore[method-assign]
    assert len(calls) == 2  # it was offered ...
    rig.run(3)
    assert len(rig.carriers["agg1"].submits) == 1  # ... but only the committed one went out
    assert rig.bs.reconcile(world.tenant_id).ok


def test_drain_submits_what_was_handed_over_before_it_stops(world: World) -> None:
    rig = Rig(world, config("agg1"))
    handing(rig)
    message_id = rig.send()
    rig.dispatcher.drain(1.0)
    assert rig.message(message_id).status is Status.SENT
    assert not rig.dispatcher.taking_hand_offs
    assert rig.message(rig.send()).status is Status.ACCEPTED


# --------------------------------------------------------------------------- recording in batches


def recorder_turn(dispatcher: Dispatcher) -> None:
    """What the worker's recorder thread does when woken: record if the outcomes are due."""
    if dispatcher.record_wait() == 0.0:
        dispatcher.record_completed()


def test_outcomes_are_recorded_after_a_linger_at_the_times_they_arrived(world: World) -> None:
    rig = Rig(world, config("agg1"), record_linger=0.5, record_batch=3)
    dispatcher = rig.dispatcher
    assert dispatcher.record_wait() is None
    first, second = rig.send(), rig.send(phone_number="+919812345679")
    answered_at = rig.clock.now()
    dispatcher.outcomes.clear()
    dispatcher.step(record=False)  # claims both; the memory carrier answers at once
    assert len(rig.carriers["agg1"].submits) == 2
    assert dispatcher.outcomes.is_set()  # the first outcome wakes the recorder to time it
    assert dispatcher.record_wait() == 0.5
    # Not due yet: nothing is recorded, however often the recorder wakes.
    rig.clock.advance(0.3)
    recorder_turn(dispatcher)
    assert dispatcher.record_wait() == pytest.approx(0.2)
    assert rig.message(first).status is Status.SUBMITTING
    rig.clock.advance(0.2)
    assert dispatcher.record_wait() == 0.0
    recorder_turn(dispatcher)
    assert dispatcher.record_wait() is None
    for message_id in (first, second):
        sent = rig.message(message_id)
        assert sent.status is Status.SENT
        # Each event carries the time the response came, not the time it was written.
        kinds = {e.kind: e.at for e in sent.timeline}
        assert kinds["part_submitted"] == answered_at
        assert kinds["sent"] == answered_at
        assert sent.parts[0].submitted_at == answered_at
    assert rig.bs.reconcile(world.tenant_id).ok


def test_a_full_record_batch_is_due_at_once_and_wakes_the_recorder_only_when_full(
    world: World,
) -> None:
    rig = Rig(world, config("agg1"), record_linger=10.0, record_batch=3)
    dispatcher = rig.dispatcher
    ids = [rig.send(phone_number=f"+91981234567{i}") for i in range(3)]
    wakes: list[bool] = []
    original = dispatcher.outcomes.set

    def counting_set() -> None:
        wakes.append(True)
        original()

    dispatcher.outcomes.set = counting_set  # type: ignore[method-assign]
    dispatcher.step(record=False)
    # Three outcomes, two wake-ups: the first (start the linger) and the third (full).
    assert len(wakes) == 2
    assert dispatcher.record_wait() == 0.0
    recorder_turn(dispatcher)
    assert [rig.message(i).status for i in ids] == [Status.SENT] * 3


def test_a_step_that_records_takes_whatever_has_completed(world: World) -> None:
    rig = Rig(world, config("agg1"), record_linger=10.0)
    message_id = rig.send()
    rig.dispatcher.step(record=False)
    assert rig.message(message_id).status is Status.SUBMITTING
    rig.dispatcher.step()  # no linger: the loop of a dispatcher stepped by hand
    assert rig.message(message_id).status is Status.SENT


def test_extending_leases_warns_only_of_rows_truly_lost(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(world, config("agg1"), record_linger=10.0)
    recorded, lost = rig.send(), rig.send(phone_number="+919812345679")
    rig.dispatcher.step(record=False)  # both answered; the recorder has not run yet
    # The recorder thread committed the first (its row is gone) and has not yet
    # dropped it from the in-flight table; the second, still awaiting its
    # answer, lost its row to another worker.
    rig.ctx.write(lambda uow: uow.dispatch.ack_many([recorded, lost], "w1"))
    rig.dispatcher._in_flight[lost].done_at = None
    rig.clock.advance(11)  # a third of the 30 s lease: time to extend
    with caplog.at_level(logging.WARNING, logger="bharatsend_core.service.dispatch"):
        rig.dispatcher._extend_leases()
    warnings = [r.getMessage() for r in caplog.records if "leases were lost" in r.getMessage()]
    assert warnings == ["dispatch: 1 leases were lost (another worker may resend)"]


# --------------------------------------------------------------------------- receipt threads


@pytest.mark.parametrize("threads", [0, 9, True, 2.0, "2"])
def test_receipt_threads_are_1_to_8(world: World, threads: object) -> None:
    ctx = Context(world.bs.storage, world.clock, SequentialIds(7), world.bs.settings)
    with pytest.raises(InvalidArgument) as caught:
        ReceiptInbox(ctx, threads=threads)  # type: ignore[arg-type]
    assert caught.value.field == "receipt_threads"


def test_a_worker_option_refused_leaves_no_sandbox_smsc_running(world: World) -> None:
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(InvalidArgument):
        world.bs.worker(receipt_threads=0)  # checked before the sandbox SMSC starts
    with pytest.raises(TypeError):
        world.bs.worker(no_such_option=1)  # the sandbox SMSC starts first, then is stopped
    deadline = time.monotonic() + 5
    while {t.ident for t in threading.enumerate() if t.is_alive()} - before:
        assert time.monotonic() < deadline, "the sandbox SMSC's threads are still running"
        time.sleep(0.01)


def test_several_receipt_threads_ingest_every_receipt_once(world: World) -> None:
    rig = Rig(world, config("agg1"))
    ids = [rig.send(phone_number=f"+91981234{n:04d}") for n in range(30)]
    rig.run()
    carrier = rig.carriers["agg1"]
    for n in range(1, 31):
        carrier.send_receipt(f"mem-agg1-{n}", ReceiptOutcome.DELIVERED)
    for n in range(1, 31, 3):
        carrier.send_receipt(f"mem-agg1-{n}", ReceiptOutcome.DELIVERED)  # redelivered copies
    deadline = time.monotonic() + 5
    while len(rig.received) < 40:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    inbox = ReceiptInbox(rig.ctx, threads=3, batch=4, linger=0.0)
    answers: list[bool] = []
    inbox.start()
    for item, _done in list(rig.received):
        inbox.sink(item, answers.append)  # type: ignore[arg-type]
    inbox.stop()
    assert answers == [True] * 40
    assert (inbox.ingested, inbox.duplicates, inbox.failures) == (30, 10, 0)
    assert all(rig.message(i).status is Status.DELIVERED for i in ids)
    assert all(rig.kinds(i).count("receipt") == 1 for i in ids)
    assert rig.bs.reconcile(world.tenant_id).ok
