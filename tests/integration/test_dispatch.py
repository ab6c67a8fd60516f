"""Messages travel for real: a worker over TCP to the SMSC simulator, on SQLite and PostgreSQL.

Every test runs the whole path: ``send`` commits the message, the worker
claims it, binds, submits over SMPP, records the response, ingests the
receipt, folds the message to its final state and settles the ledger. The
crash test kills a worker *process* with SIGKILL mid-batch; the two-worker
test runs two processes on one PostgreSQL schema.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.domain.ledger import Phase, TransferKind, message_transfer_id
from bharatsend_core.domain.message import FINAL_STATUSES, Message, RetryPolicy, Status
from bharatsend_core.service.dispatch import DispatchOptions
from bharatsend_core.service.worker import Worker

from ..unit.service.world import OTP_TEMPLATE, OTP_TEXT, PE_ID, PEPPER, World, make_world

WAIT = 20.0
LONG_TEMPLATE = "1207160000000000011"
LONG_BODY = (
    "Dear customer, your account statement for the period is now ready. "
    "Total due is Rs {#numeric#}. Please pay before the due date to avoid late fees. "
    "You can pay by net banking, UPI or at any branch. Call us at the number printed "
    "on the back of your card for any help. Thank you for banking with us. This is an "
    "automated message, do not reply. Ref {#alphanumeric#} -ACME"
)
HINDI_TEMPLATE = "1207160000000000012"
HINDI_BODY = "आपका ओटीपी {#numeric#} है। इसे किसी के साथ साझा न करें। यह पाँच मिनट तक मान्य है। -ACME बैंक"
EURO_TEMPLATE = "1207160000000000013"
EURO_BODY = "a" * 152 + "€ is the fee for order {#alphanumeric#} -ACME"


def long_text() -> str:
    return LONG_BODY.replace("{#numeric#}", "4512").replace("{#alphanumeric#}", "AB12CD")


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Stack:
    """A migrated database, a tenant, simulators and workers, torn down in order."""

    def __init__(self, storage: SqlStorage, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema
        # These tests send hundreds of messages to one number: no per-number limit.
        settings = Settings.resolve({}, key_pepper=PEPPER, database_url=url, number_limit=0)
        self.bs = BharatSend(storage=storage, settings=settings)
        self.world: World = make_world(self.bs, None, credits=1_000_000)  # type: ignore[arg-type]
        self.bs.register_template(
            self.world.tenant_id, template_id=LONG_TEMPLATE, header="ACMEOT",
            category="transactional", body=LONG_BODY,
        )  # fmt: skip
        self.bs.register_template(
            self.world.tenant_id, template_id=HINDI_TEMPLATE, header="ACMEOT",
            category="transactional", body=HINDI_BODY, content_type="unicode",
        )  # fmt: skip
        self.bs.register_template(
            self.world.tenant_id, template_id=EURO_TEMPLATE, header="ACMEOT",
            category="transactional", body=EURO_BODY,
        )  # fmt: skip
        self.sims: list[SmscSimulator] = []
        self.workers: list[Worker] = []

    @property
    def tenant(self) -> str:
        return self.world.tenant_id

    def sim(self, **kwargs: Any) -> SmscSimulator:
        kwargs.setdefault("receipt_delay", 0.01)
        sim = SmscSimulator(**kwargs).start()
        self.sims.append(sim)
        return sim

    def route(self, name: str, sim: SmscSimulator | int, **kwargs: Any) -> None:
        port = sim if isinstance(sim, int) else sim.port
        kwargs.setdefault("categories", ["transactional", "service_implicit"])
        self.bs.add_route(
            name, host="127.0.0.1", port=port, system_id="bsend", password="secret", **kwargs
        )

    def worker(self, **options: Any) -> Worker:
        options.setdefault("options", DispatchOptions(lease=timedelta(seconds=5)))
        options.setdefault("poll_interval", 0.05)
        options.setdefault("bind_wait", 2.0)
        worker = self.bs.worker(sandbox_carrier=False, **options).start()
        self.workers.append(worker)
        return worker

    def send(self, text: str = OTP_TEXT, template: str = OTP_TEMPLATE, **kwargs: Any) -> str:
        result = self.bs.send(
            self.tenant,
            phone_number=kwargs.pop("phone", "+919812345678"),
            content=text,
            dlt_template_id=template,
            **kwargs,
        )
        return result.id

    def message(self, message_id: str) -> Message:
        return self.bs.get_message(self.tenant, message_id)

    def wait_final(self, ids: Sequence[str], timeout: float = WAIT) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            messages = [self.message(i) for i in ids]
            if all(m.status in FINAL_STATUSES for m in messages):
                return messages
            if time.monotonic() > deadline:
                stuck = [(m.id, m.status.value) for m in messages if not m.is_final]
                raise AssertionError(f"not final after {timeout}s: {stuck[:5]} ({len(stuck)})")
            time.sleep(0.02)

    def charges(self, message_id: str) -> dict[TransferKind, int]:
        out: dict[TransferKind, int] = {}
        for phase in Phase:
            with self.bs.storage.unit_of_work() as uow:
                t = uow.ledger.get(message_transfer_id(message_id, phase))
            if t is not None:
                out[t.kind] = t.amount
        return out

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(2.0)
        for sim in self.sims:
            sim.stop()


@pytest.fixture
def stack(
    kind: str, sql_storage_factory: Callable[[str], SqlStorage], request: pytest.FixtureRequest
) -> Iterator[Stack]:
    storage = sql_storage_factory(kind)
    url = storage.engine.url.render_as_string(hide_password=False)
    schema = storage.schema
    s = Stack(storage, url, schema)
    yield s
    s.close()


# --------------------------------------------------------------------------- the wire


def test_a_single_gsm_message_is_submitted_with_dlt_tlvs_and_delivered(stack: Stack) -> None:
    sim = stack.sim()
    stack.route("agg1", sim)
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    [submit] = sim.submits.wait_for(1)
    assert submit.source_addr == "ACMEOT"
    assert submit.source_addr_ton == 5
    assert submit.destination_addr == "919812345678"
    assert submit.dest_addr_ton == 1
    assert submit.data_coding == 0
    assert submit.registered_delivery == 1
    assert submit.text == OTP_TEXT
    assert submit.tlvs[0x1400] == PE_ID.encode()
    assert submit.tlvs[0x1401] == OTP_TEMPLATE.encode()
    assert message.parts[0].carrier_message_id == submit.message_id
    assert message.parts[0].route == "agg1"
    assert stack.charges(message_id) == {TransferKind.RESERVE: 25, TransferKind.POST: 25}
    responses = sim.receipt_responses.wait_for(1)
    assert [r.command_status for r in responses] == [0]
    assert stack.bs.reconcile(stack.tenant).ok


def test_a_three_part_gsm_message_shares_one_concatenation_reference(stack: Stack) -> None:
    sim = stack.sim()
    stack.route("agg1", sim)
    stack.worker()
    text = long_text()
    message_id = stack.send(text, LONG_TEMPLATE)
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    assert message.segments == 3
    submits = sorted(sim.submits.wait_for(3), key=lambda s: s.concat or (0, 0, 0))
    assert {s.concat[0] for s in submits if s.concat}
    assert len({s.concat[0] for s in submits if s.concat}) == 1
    assert [s.concat[1:] for s in submits if s.concat] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(s.text or "" for s in submits) == text
    assert stack.charges(message_id)[TransferKind.POST] == 75


def test_a_hindi_message_goes_as_ucs2(stack: Stack) -> None:
    sim = stack.sim()
    stack.route("agg1", sim)
    stack.worker()
    text = HINDI_BODY.replace("{#numeric#}", "482913")
    message_id = stack.send(text, HINDI_TEMPLATE)
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    assert message.encoding == "ucs2"
    submits = sim.submits.wait_for(message.segments)
    assert all(s.data_coding == 8 for s in submits)
    ordered = sorted(submits, key=lambda s: s.concat[2] if s.concat else 0)
    assert "".join(s.text or "" for s in ordered) == text


def test_an_extension_character_is_never_split_across_parts(stack: Stack) -> None:
    sim = stack.sim()
    stack.route("agg1", sim)
    stack.worker()
    text = EURO_BODY.replace("{#alphanumeric#}", "X1")
    message_id = stack.send(text, EURO_TEMPLATE)
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    assert message.segments == 2
    ordered = sorted(sim.submits.wait_for(2), key=lambda s: s.concat[2] if s.concat else 0)
    assert ordered[0].text == "a" * 152  # the escape + euro moved whole to part 2
    assert "".join(s.text or "" for s in ordered) == text


def test_dlt_tlv_tags_are_per_route_configuration(stack: Stack) -> None:
    strict = stack.sim(behaviour=Behaviour(require_tlvs=(0x1500, 0x1501)))
    stack.route("custom", strict, dlt_tlvs={"pe_id": 0x1500, "template_id": 0x1501})
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    [submit] = strict.submits.wait_for(1)
    assert submit.tlvs[0x1500] == PE_ID.encode()
    assert 0x1400 not in submit.tlvs


def test_an_smsc_that_requires_other_tags_fails_the_message_permanently(stack: Stack) -> None:
    strict = stack.sim(behaviour=Behaviour(require_tlvs=(0x1500,)))
    stack.route("agg1", strict)
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.FAILED
    assert message.error is not None
    assert message.error.code == "carrier_rejected"
    assert stack.charges(message_id) == {TransferKind.RESERVE: 25, TransferKind.VOID: 25}


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "behaviour",
    [Behaviour(throttle_tps=40), Behaviour(window_limit=40)],
    ids=["throttled", "queue-full"],
)
def test_throttling_and_a_full_queue_slow_down_but_deliver_everything(
    stack: Stack, behaviour: Behaviour
) -> None:
    sim = stack.sim(behaviour=behaviour)
    stack.route("agg1", sim, tps=200)
    stack.worker(
        options=DispatchOptions(
            lease=timedelta(seconds=5),
            retry=RetryPolicy(
                base=timedelta(milliseconds=200), cap=timedelta(seconds=1), max_attempts=20
            ),
        )
    )
    ids = [stack.send() for _ in range(80)]
    messages = stack.wait_final(ids, timeout=40)
    assert all(m.status is Status.DELIVERED for m in messages)
    retried = [m for m in messages if m.attempts > 1]
    assert retried, "the SMSC refused some submits, so some messages were retried"
    assert all(
        e.get("error_code") == "carrier_throttled"
        for m in retried
        for e in m.timeline
        if e.kind == "submit_failed"
    )
    assert len(sim.submits) == 80  # refused submits are not recorded; each message went once


def test_a_dropped_link_with_submits_in_flight_resends_and_flags_duplicates(stack: Stack) -> None:
    sim = stack.sim(behaviour=Behaviour(drop_after=3))
    stack.route("agg1", sim)
    worker = stack.worker()
    # Each connection answers 3 submits and drops on the 4th: 6 messages need a
    # drop with a submit in flight, a reconnect, and a resend.
    ids = [stack.send() for _ in range(6)]
    messages = stack.wait_final(ids)
    assert all(m.status is Status.DELIVERED for m in messages)
    flagged = [m for m in messages if m.possible_duplicate]
    assert flagged, "the submit written when the link dropped had an unknown outcome"
    assert all(any(e.kind == "outcome_unknown" for e in m.timeline) for m in flagged)
    health = worker.health()
    assert health.routes[0].binds >= 2  # reconnected
    assert stack.bs.reconcile(stack.tenant).ok


def delivered_with_each_receipt_applied_once(stack: Stack, ids: Sequence[str]) -> list[Message]:
    """Wait for the messages; each is delivered with one applied receipt per part."""
    messages = stack.wait_final(ids)
    assert all(m.status is Status.DELIVERED for m in messages)
    for m in messages:
        assert sum(e.kind == "receipt" for e in m.timeline) == m.segments
        applied = stack.bs.message_receipts(stack.tenant, m.id)
        assert len(applied) == m.segments
        assert all(r.state == "applied" for r in applied)
    return messages


def test_duplicated_and_early_receipts_are_applied_once(stack: Stack) -> None:
    sim = stack.sim(behaviour=Behaviour(duplicate_receipts=True, receipt_first=True))
    stack.route("agg1", sim)
    stack.worker()
    ids = [stack.send() for _ in range(5)] + [stack.send(long_text(), LONG_TEMPLATE)]
    messages = delivered_with_each_receipt_applied_once(stack, ids)
    total_parts = sum(m.segments for m in messages)
    responses = sim.receipt_responses.wait_for(2 * total_parts)
    assert all(r.command_status == 0 for r in responses)  # copies are acknowledged too
    assert stack.bs.reconcile(stack.tenant).ok


def test_two_receipt_threads_apply_duplicated_and_early_receipts_once(stack: Stack) -> None:
    # Multi-part messages put receipts for one message in batches ingested side by
    # side: the later batch conflicts and is applied again, never twice.
    sim = stack.sim(behaviour=Behaviour(duplicate_receipts=True, receipt_first=True))
    stack.route("agg1", sim)
    worker = stack.worker(receipt_threads=2)
    assert worker.inbox.threads == 2
    ids = [stack.send(phone=f"+91981234{n:04d}") for n in range(20)]
    ids += [stack.send(long_text(), LONG_TEMPLATE, phone=f"+91981299{n:04d}") for n in range(5)]
    delivered_with_each_receipt_applied_once(stack, ids)
    assert stack.bs.reconcile(stack.tenant).ok


def test_a_rejected_receipt_with_a_dlt_error_is_refunded(stack: Stack) -> None:
    sim = stack.sim(behaviour=Behaviour(final_state="REJECTD", error_code="633"))
    stack.route("agg1", sim)
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.REJECTED
    assert message.error is not None
    assert message.error.carrier_code == "633"
    assert stack.charges(message_id) == {
        TransferKind.RESERVE: 25, TransferKind.POST: 25, TransferKind.REFUND: 25,
    }  # fmt: skip


def test_an_undelivered_receipt_under_delivery_billing_is_voided(stack: Stack) -> None:
    stack.bs.set_billing_point(stack.tenant, "delivery")
    sim = stack.sim(behaviour=Behaviour(final_state="UNDELIV", error_code="001"))
    stack.route("agg1", sim)
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.UNDELIVERED
    assert stack.charges(message_id) == {TransferKind.RESERVE: 25, TransferKind.VOID: 25}


def test_failover_when_the_first_route_is_down(stack: Stack) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    backup = stack.sim()
    stack.route("primary", dead_port, priority=0)
    stack.route("backup", backup, priority=1)
    stack.worker(bind_wait=0.3)
    ids = [stack.send() for _ in range(3)]
    messages = stack.wait_final(ids)
    assert all(m.status is Status.DELIVERED and m.route == "backup" for m in messages)


def test_failover_when_the_first_route_rejects(stack: Stack) -> None:
    picky = stack.sim(behaviour=Behaviour(reject_prefixes=("91",)))
    backup = stack.sim()
    stack.route("picky", picky, priority=0, retry_permanent_elsewhere=True)
    stack.route("backup", backup, priority=1)
    stack.worker()
    message_id = stack.send()
    [message] = stack.wait_final([message_id])
    assert message.status is Status.DELIVERED
    assert message.route == "backup"
    kinds = [e.kind for e in message.timeline]
    assert kinds[:5] == ["accepted", "claimed", "submit_failed", "retry_scheduled", "claimed"]


def test_a_pair_bind_submits_on_the_transmitter_and_receives_on_the_receiver(
    stack: Stack,
) -> None:
    sim = stack.sim()
    stack.route("agg1", sim, bind="pair")
    stack.worker()
    [message] = stack.wait_final([stack.send()])
    assert message.status is Status.DELIVERED


def test_a_disabled_route_is_unbound_and_its_traffic_moves(stack: Stack) -> None:
    first, second = stack.sim(), stack.sim()
    stack.route("first", first, priority=0)
    stack.route("second", second, priority=1)
    worker = stack.worker(reload_interval=0.05)
    [m1] = stack.wait_final([stack.send()])
    assert m1.route == "first"
    stack.bs.disable_route("first")
    deadline = time.monotonic() + WAIT
    while worker.carrier("first") is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    [m2] = stack.wait_final([stack.send()])
    assert m2.route == "second"


def test_sigterm_style_stop_drains_and_releases(stack: Stack) -> None:
    sim = stack.sim(receipt_delay=0.2)
    stack.route("agg1", sim)
    worker = stack.worker()
    ids = [stack.send() for _ in range(20)]
    worker.stop(5.0)
    stack.workers.remove(worker)
    with stack.bs.storage.unit_of_work() as uow:
        held = uow.dispatch.claim("probe", datetime.now(UTC), timedelta(seconds=1), 100)
    states = {stack.message(i).status for i in ids}
    assert states <= {Status.ACCEPTED, Status.SENT, Status.DELIVERED}  # nothing stuck submitting
    # Whatever was not sent is back in the queue, claimable at once.
    assert {c.message_id for c in held} == {
        i for i in ids if stack.message(i).status is Status.ACCEPTED
    }


# --------------------------------------------------------------------------- processes

_WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from bharatsend_core import BharatSend, Settings
    from bharatsend_core.adapters.sqlalchemy import SqlStorage
    from bharatsend_core.service.dispatch import DispatchOptions

    url, schema, pepper, lease = sys.argv[1], sys.argv[2] or None, sys.argv[3], sys.argv[4]
    storage = SqlStorage.from_url(url, schema=schema)
    settings = Settings.resolve({}, key_pepper=pepper, database_url=url)
    bs = BharatSend(storage=storage, settings=settings)
    worker = bs.worker(
        sandbox_carrier=False,
        options=DispatchOptions(lease=timedelta(seconds=float(lease)), batch=20),
        poll_interval=0.05,
    )
    print("ready", flush=True)
    worker.run()
    """
)


def _spawn_worker(stack: Stack, lease: float = 2.0) -> subprocess.Popen[str]:
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_SCRIPT, stack.url, stack.schema or "", PEPPER, str(lease)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=30)


def test_a_worker_killed_mid_batch_loses_nothing_and_charges_once(stack: Stack) -> None:
    sim = stack.sim(receipt_delay=0.05)
    stack.route("agg1", sim, tps=300)
    ids = [stack.send() for _ in range(150)]
    victim = _spawn_worker(stack)
    try:
        deadline = time.monotonic() + WAIT
        while len(sim.submits) < 30 and time.monotonic() < deadline:
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        _stop(victim, signal.SIGKILL)
    assert len(sim.submits) < 150, "the kill came mid-batch"
    survivor = _spawn_worker(stack)
    try:
        messages = stack.wait_final(ids, timeout=60)
    finally:
        _stop(survivor)
    assert all(m.status is Status.DELIVERED for m in messages)
    for m in messages:
        assert stack.charges(m.id) == {TransferKind.RESERVE: 25, TransferKind.POST: 25}
    # Only a message whose submit may have been written before the kill can go twice.
    extra_submits = len(sim.submits) - len(ids)
    assert 0 <= extra_submits <= sum(m.possible_duplicate for m in messages)
    assert stack.bs.reconcile(stack.tenant).ok


def test_two_worker_processes_on_postgresql_never_double_submit(stack: Stack, kind: str) -> None:
    if kind != "postgres":
        pytest.skip("many workers share one database on PostgreSQL; SQLite has one writer")
    sim = stack.sim(receipt_delay=0.05)
    stack.route("agg1", sim)
    # A lease long enough that a worker slowed by a loaded machine keeps it:
    # this test is about sharing, the crash test about expiry.
    workers = [_spawn_worker(stack, lease=30.0), _spawn_worker(stack, lease=30.0)]
    try:
        ids = [stack.send() for _ in range(300)]
        messages = stack.wait_final(ids, timeout=60)
    finally:
        for proc in workers:
            _stop(proc)
    assert all(m.status is Status.DELIVERED for m in messages)
    assert len(sim.submits) == 300  # every message submitted exactly once
    assert not any(m.possible_duplicate for m in messages)
    assert stack.bs.reconcile(stack.tenant).ok
