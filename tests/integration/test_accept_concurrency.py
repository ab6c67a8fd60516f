"""The accept path on real databases, under concurrency: exactly once, never overdrawn."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.config import Settings
from bharatsend_core.domain.errors import BharatSendError
from bharatsend_core.testing import FakeClock

from ..unit.service.world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, World, make_world


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, sql_storage_factory: Callable[[str], object]) -> World:
    storage = sql_storage_factory(request.param)
    clock = FakeClock(NOON_IST)
    settings = Settings.resolve({}, key_pepper="integration-pepper-0123456789")
    bs = BharatSend(storage=storage, settings=settings, clock=clock)  # type: ignore[arg-type]
    return make_world(bs, clock, credits=1_000)


def send(world: World, **overrides: object) -> object:
    args: dict[str, object] = {
        "phone_number": "+919876543210",
        "content": OTP_TEXT,
        "dlt_template_id": OTP_TEMPLATE,
    }
    args.update(overrides)
    return world.bs.send(world.tenant_id, **args)  # type: ignore[arg-type]


def run_concurrently(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)

    def task(i: int) -> object:
        barrier.wait()
        try:
            return fn(i)
        except BharatSendError as e:
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(task, range(n)))


def depth(world: World) -> int:
    with world.bs.storage.unit_of_work() as uow:
        return uow.dispatch.depth(world.clock.now() + timedelta(days=1))


def test_concurrent_identical_requests_create_one_message(world: World) -> None:
    results = run_concurrently(8, lambda _: send(world, client_message_id="order-1"))
    ids = {r.id for r in results}  # type: ignore[attr-defined]
    assert len(ids) == 1
    assert sum(1 for r in results if not r.replayed) == 1  # type: ignore[attr-defined]
    assert world.bs.balance(world.tenant_id).reserved_paise == 25
    assert depth(world) == 1
    assert world.bs.reconcile().ok


def test_concurrent_conflicting_requests_leave_one_winner(world: World) -> None:
    results = run_concurrently(
        6, lambda i: send(world, client_message_id="order-2", phone_number=f"+91987654321{i}")
    )
    winners = [r for r in results if not isinstance(r, BharatSendError)]
    conflicts = [r for r in results if isinstance(r, BharatSendError)]
    assert len({w.id for w in winners}) == 1  # type: ignore[attr-defined]
    assert {c.code for c in conflicts} <= {"idempotency_conflict"}
    assert depth(world) == 1


def test_many_senders_draining_a_small_balance_never_overdraw(world: World) -> None:
    # 1,000 paise pays for exactly 40 messages of 25 paise; 80 try at once.
    results = run_concurrently(8, lambda i: [_try_send(world, i * 10 + j) for j in range(10)])
    flat = [r for batch in results for r in batch]  # type: ignore[attr-defined]
    accepted = [r for r in flat if not isinstance(r, BharatSendError)]
    refused = [r for r in flat if isinstance(r, BharatSendError)]
    assert len(accepted) == 40
    assert {e.code for e in refused} == {"insufficient_credits"}
    balance = world.bs.balance(world.tenant_id)
    assert (balance.available_paise, balance.reserved_paise) == (0, 1_000)
    assert depth(world) == 40
    report = world.bs.reconcile()
    assert report.ok, report.problems


def _try_send(world: World, n: int) -> object:
    try:
        return send(world, phone_number=f"+9198765{n:05d}")
    except BharatSendError as e:
        return e


def test_concurrent_batches_never_overdraw(world: World) -> None:
    from bharatsend_core.service.send import SendRequest

    def batch(i: int) -> object:
        items = [
            SendRequest(f"+9197{i:02d}{j:06d}", OTP_TEXT, OTP_TEMPLATE, header="ACMEOT")
            for j in range(15)
        ]
        return world.bs.send_batch(world.tenant_id, items)

    results = run_concurrently(4, batch)
    accepted = sum(r.accepted for r in results)  # type: ignore[attr-defined]
    assert accepted == 40
    assert world.bs.balance(world.tenant_id).available_paise == 0
    assert world.bs.reconcile().ok


def test_a_failed_validation_writes_nothing_on_a_real_database(world: World) -> None:
    with pytest.raises(BharatSendError):
        send(world, content="Your OTP is 1. Valid for 10 minutes.")
    assert depth(world) == 0
    assert world.bs.balance(world.tenant_id).available_paise == 1_000


def test_a_message_round_trips_with_every_field(world: World) -> None:
    sent = send(world, client_message_id="rt-1", metadata={"a": [1, "x"]}, priority=7)
    stored = world.bs.get_message(world.tenant_id, sent.id)  # type: ignore[attr-defined]
    assert stored == sent.message  # type: ignore[attr-defined]
