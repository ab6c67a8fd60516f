"""The carrier port's contract: the same cases against the SMPP adapter and the memory one.

The SMPP carrier talks to the simulator over real TCP; the memory carrier is
scripted to the same faults. Both must answer every part with one outcome,
hand over receipts whose carrier id equals the accepted part's id, and only
acknowledge a receipt once the sink says it is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from bharatsend_core.adapters.memory.carrier import MemoryCarrier
from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator
from bharatsend_core.adapters.smpp.carrier import SmppCarrier
from bharatsend_core.adapters.system import SystemClock
from bharatsend_core.domain.encoding import segment
from bharatsend_core.domain.errors import CarrierUnavailable
from bharatsend_core.domain.message import Message, ReceiptOutcome
from bharatsend_core.domain.routing import Connection, Route, RouteConfig, StatusClass
from bharatsend_core.ports.carrier import Carrier, CarrierReceipt

WAIT = 5.0


def message(
    text: str = "Your OTP is 482913. Valid for 5 minutes.", phone: str = "+919812345678"
) -> Message:
    seg = segment(text)
    now = datetime.now(UTC)
    return Message.accept(
        id="msg_1",
        tenant_id="t1",
        phone=phone,
        content=text,
        template_id="1207161234567890123",
        header="ACMEOT",
        entity_id="1201159123456789012",
        category="transactional",
        encoding=seg.encoding.value,
        segments=seg.segments,
        now=now,
        validity=timedelta(minutes=10),
    )


class Sink:
    """Collects receipts; answers each with ``stored``."""

    def __init__(self, stored: bool = True) -> None:
        self.stored = stored
        self.items: list[CarrierReceipt] = []
        self.cond = threading.Condition()

    def __call__(self, item: CarrierReceipt, done: Callable[[bool], None]) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()
        done(self.stored)

    def wait_for(self, n: int) -> list[CarrierReceipt]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, WAIT), self.items
            return list(self.items)


class Harness:
    """A started carrier plus the knobs to make it misbehave, whatever the adapter."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sim: SmscSimulator | None = None
        self.carrier: Carrier

    def start(self, sink: Sink) -> Carrier:
        if self.kind == "memory":
            self.carrier = MemoryCarrier("agg1", clock=SystemClock())
        else:
            self.sim = SmscSimulator(receipt_delay=0.01).start()
            config = RouteConfig(
                Route(name="agg1"),
                Connection(
                    host="127.0.0.1", port=self.sim.port, system_id="bsend", password="secret"
                ),
            )
            self.carrier = SmppCarrier(config, clock=SystemClock())
        self.carrier.start(sink)
        deadline = time.monotonic() + WAIT
        while not self.carrier.ready and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.carrier

    def reject_next(self) -> None:
        if isinstance(self.carrier, MemoryCarrier):
            self.carrier.script("permanent")
        else:
            assert self.sim is not None
            self.sim.behaviour = Behaviour(reject_prefixes=("91",))

    def fail_receipts(self, outcome: ReceiptOutcome) -> None:
        if isinstance(self.carrier, MemoryCarrier):
            self.carrier.receipt_outcome = outcome
            self.carrier.error_code = "633"
        else:
            assert self.sim is not None
            stat = {ReceiptOutcome.REJECTED: "REJECTD", ReceiptOutcome.UNDELIVERED: "UNDELIV"}[
                outcome
            ]
            self.sim.behaviour = Behaviour(final_state=stat, error_code="633")

    def acknowledged(self) -> list[bool]:
        if isinstance(self.carrier, MemoryCarrier):
            return [ok for _id, ok in self.carrier.acknowledged]
        assert self.sim is not None
        return [r.command_status == 0 for r in self.sim.receipt_responses]

    def stop(self) -> None:
        self.carrier.stop(1.0)
        if self.sim is not None:
            self.sim.stop()


@pytest.fixture(params=["memory", "smpp"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = Harness(request.param)
    yield h
    h.stop()


def test_single_part_is_accepted_and_its_receipt_names_the_same_id(harness: Harness) -> None:
    sink = Sink()
    carrier = harness.start(sink)
    assert carrier.ready
    [future] = carrier.submit(message(), now=datetime.now(UTC))
    outcome = future.result(WAIT)
    assert outcome.accepted
    assert outcome.index == 0
    [receipt] = sink.wait_for(1)
    assert receipt.route == "agg1"
    assert receipt.carrier_message_id == outcome.carrier_message_id
    assert receipt.receipt.outcome is ReceiptOutcome.DELIVERED


def test_every_part_of_a_long_message_gets_its_own_outcome(harness: Harness) -> None:
    sink = Sink()
    carrier = harness.start(sink)
    long = message("A" * 400)
    assert long.segments == 3
    outcomes = [f.result(WAIT) for f in carrier.submit(long, now=datetime.now(UTC))]
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert all(o.accepted for o in outcomes)
    assert len({o.carrier_message_id for o in outcomes}) == 3
    receipts = sink.wait_for(3)
    assert {r.carrier_message_id for r in receipts} == {o.carrier_message_id for o in outcomes}


def test_a_refused_part_is_classified_permanent(harness: Harness) -> None:
    carrier = harness.start(Sink())
    harness.reject_next()
    [future] = carrier.submit(message(), now=datetime.now(UTC))
    outcome = future.result(WAIT)
    assert not outcome.accepted
    assert not outcome.unknown
    assert outcome.status_class is StatusClass.PERMANENT
    assert outcome.command_status is not None
    assert outcome.command_status > 0


def test_failed_delivery_receipts_carry_outcome_and_error(harness: Harness) -> None:
    sink = Sink()
    carrier = harness.start(sink)
    harness.fail_receipts(ReceiptOutcome.REJECTED)
    [future] = carrier.submit(message(), now=datetime.now(UTC))
    assert future.result(WAIT).accepted
    [receipt] = sink.wait_for(1)
    assert receipt.receipt.outcome is ReceiptOutcome.REJECTED
    assert receipt.receipt.error_code == "633"


def test_receipts_are_acknowledged_with_what_the_sink_said(harness: Harness) -> None:
    sink = Sink(stored=False)
    carrier = harness.start(sink)
    [future] = carrier.submit(message(), now=datetime.now(UTC))
    assert future.result(WAIT).accepted
    sink.wait_for(1)
    deadline = time.monotonic() + WAIT
    while not harness.acknowledged() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert harness.acknowledged()[0] is False  # not stored: the SMSC must redeliver


def test_submit_after_stop_is_refused_as_unavailable(harness: Harness) -> None:
    carrier = harness.start(Sink())
    carrier.stop(0.5)
    with pytest.raises(CarrierUnavailable):
        carrier.submit(message(), now=datetime.now(UTC))
    assert carrier.health().state == "stopped"


def test_health_names_the_route(harness: Harness) -> None:
    carrier = harness.start(Sink())
    health = carrier.health()
    assert health.route == "agg1"
    assert health.state == "ready"
    assert attrs.asdict(health)["in_flight"] >= 0
