"""The supervised worker on memory storage with memory carriers: threads, wake-ups, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.adapters.memory.carrier import MemoryCarrier
from bharatsend_core.adapters.system import SystemClock
from bharatsend_core.domain.errors import StorageUnavailable
from bharatsend_core.domain.message import Status
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.ports.carrier import Carrier
from bharatsend_core.service.dispatch import DispatchOptions
from bharatsend_core.service.worker import Worker

from .world import OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world

WAIT = 15.0


@pytest.fixture
def world() -> Iterator[World]:
    bs = BharatSend.in_memory(key_pepper=PEPPER)
    yield make_world(bs, None)  # type: ignore[arg-type]
    bs.close()


class Factory:
    """Builds memory carriers and remembers them."""

    def __init__(self) -> None:
        self.made: list[MemoryCarrier] = []

    def __call__(self, config: RouteConfig) -> Carrier:
        carrier = MemoryCarrier(config.name, clock=SystemClock())
        self.made.append(carrier)
        return carrier


def until(check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def start(world: World, factory: Factory, **options: Any) -> Worker:
    world.bs.add_route("agg1", host="127.0.0.1", port=2775, system_id="bsend", password="secret")
    options.setdefault("poll_interval", 0.05)
    return world.bs.worker(carrier_factory=factory, sandbox_carrier=False, **options).start()


def send(world: World) -> str:
    return world.bs.send(
        world.tenant_id,
        phone_number="+919812345678",
        content=OTP_TEXT,
        dlt_template_id=OTP_TEMPLATE,
    ).id


def status(world: World, message_id: str) -> Status:
    return world.bs.get_message(world.tenant_id, message_id).status


def test_an_accepted_message_is_delivered_by_a_running_worker(world: World) -> None:
    factory = Factory()
    worker = start(world, factory)
    try:
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
        health = worker.health()
        assert health.running
        assert [r.route for r in health.routes] == ["agg1"]
        assert health.stats.sent == 1
        assert health.receipt_backlog == 0
    finally:
        worker.stop()
    assert not worker.health().running
    assert world.bs.reconcile(world.tenant_id).ok


def kinds(world: World, message_id: str) -> list[str]:
    return [e.kind for e in world.bs.get_message(world.tenant_id, message_id).timeline]


def test_a_running_worker_takes_messages_in_the_accept_transaction(world: World) -> None:
    hub = world.bs._ctx.hub
    factory = Factory()
    worker = start(world, factory)
    try:
        assert hub.hand_off is not None
        message_id = send(world)
        # Claimed by the accept itself: no claim transaction before the wire.
        assert status(world, message_id) in (Status.SUBMITTING, Status.SENT, Status.DELIVERED)
        until(lambda: status(world, message_id) is Status.DELIVERED)
        assert kinds(world, message_id)[:2] == ["accepted", "claimed"]
        assert worker.health().stats.claimed == 1
    finally:
        worker.stop()
    assert hub.hand_off is None  # a stopped worker takes nothing
    later = send(world)
    assert status(world, later) is Status.ACCEPTED
    assert world.bs.reconcile(world.tenant_id).ok


def test_without_the_hand_off_the_worker_claims_from_the_queue(world: World) -> None:
    factory = Factory()
    worker = start(world, factory, hand_off=False)
    try:
        assert world.bs._ctx.hub.hand_off is None
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
        assert kinds(world, message_id)[:2] == ["accepted", "claimed"]
    finally:
        worker.stop()


def test_outcomes_are_recorded_when_their_linger_ends_without_another_wake_up(
    world: World,
) -> None:
    factory = Factory()
    # The poll is far away: only the linger's own timeout can record the outcome.
    options = DispatchOptions(record_linger=0.2, record_batch=100)
    worker = start(world, factory, poll_interval=30.0, options=options)
    try:
        message_id = send(world)
        until(lambda: len(factory.made[0].submits) == 1)
        until(lambda: status(world, message_id) is not Status.SUBMITTING, timeout=5.0)
        assert worker.health().stats.sent == 1
    finally:
        worker.stop()
    assert world.bs.reconcile(world.tenant_id).ok


def test_rows_nobody_signalled_are_claimed_at_the_poll(world: World) -> None:
    """Another process's accept wakes nobody here (SQLite): the poll finds the row."""
    factory = Factory()
    worker = start(world, factory, hand_off=False, poll_interval=0.1)
    try:
        storage = world.bs.storage
        wake = storage.wake_dispatch
        storage.wake_dispatch = lambda: None  # type: ignore[method-assign]
        signal = storage._signal  # type: ignore[attr-defined]
        notify = signal.notify
        signal.notify = lambda: None  # as if the commit happened in another process
        try:
            message_id = send(world)
            until(lambda: status(world, message_id) is Status.DELIVERED, timeout=5)
        finally:
            signal.notify = notify
            storage.wake_dispatch = wake  # type: ignore[method-assign]
    finally:
        worker.stop()


def test_a_carrier_that_died_is_restarted_at_the_next_reload(world: World) -> None:
    factory = Factory()
    worker = start(world, factory, reload_interval=0.05)
    try:
        factory.made[0].stop(0.1)  # as if its I/O thread had crashed
        # The factory makes the new carrier a moment before the worker installs it.
        until(lambda: len(factory.made) == 2 and worker.carrier("agg1") is factory.made[1])
        assert worker.health().carrier_restarts == 1
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
    finally:
        worker.stop()


def failing_once(real: Callable[..., int]) -> Callable[..., int]:
    """``real``, except that its first call raises as a bug would."""
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    return flaky


def test_a_crashing_loop_is_restarted_with_backoff(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = Factory()
    worker = start(world, factory)
    try:
        monkeypatch.setattr(worker.dispatcher, "step", failing_once(worker.dispatcher.step))
        worker.dispatcher.kick.set()
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
        assert worker.health().loop_restarts == 1
    finally:
        worker.stop()


def test_a_crashing_recorder_is_restarted_and_outcomes_are_still_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = Factory()
    worker = start(world, factory)
    try:
        monkeypatch.setattr(
            worker.dispatcher,
            "record_completed",
            failing_once(worker.dispatcher.record_completed),
        )
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
        assert worker.health().loop_restarts == 1
        assert worker.health().stats.sent == 1
    finally:
        worker.stop()
    assert world.bs.reconcile(world.tenant_id).ok


def test_a_recorder_facing_a_failing_database_pauses_then_records(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = Factory()
    worker = start(world, factory, poll_interval=0.25)
    dispatcher = worker.dispatcher
    real = dispatcher._record

    def down(*_args: Any, **_kw: Any) -> Any:
        raise StorageUnavailable("the database went away")

    try:
        monkeypatch.setattr(dispatcher, "_record", down)
        message_id = send(world)
        until(lambda: dispatcher.stats.record_failures >= 3)
        time.sleep(0.5)
        # Three tries per round, one round per poll_interval: about six more in
        # 0.5 s, where retrying at every 20 ms linger would make some seventy.
        assert dispatcher.stats.record_failures <= 15
        assert status(world, message_id) is Status.SUBMITTING  # kept in flight, not lost
        monkeypatch.setattr(dispatcher, "_record", real)
        until(lambda: status(world, message_id) is Status.DELIVERED)
    finally:
        worker.stop()
    assert world.bs.reconcile(world.tenant_id).ok


def test_outcomes_are_recorded_off_the_dispatch_loop(world: World) -> None:
    factory = Factory()
    worker = start(world, factory)
    threads: set[str] = set()
    real = worker.dispatcher.record_completed

    def watched() -> int:
        threads.add(threading.current_thread().name)
        return real()

    worker.dispatcher.record_completed = watched  # type: ignore[method-assign]
    try:
        message_id = send(world)
        until(lambda: status(world, message_id) is Status.DELIVERED)
    finally:
        worker.stop()
    # While running, only the recorder records (stop's drain runs on the caller's thread).
    assert "dispatch-record" in threads
    assert "dispatch-loop" not in threads


def test_stop_is_idempotent_and_leaves_nothing_claimed(world: World) -> None:
    factory = Factory()
    worker = start(world, factory)
    factory.made[0].ready = False  # the route goes down: messages wait in the queue
    ids = [send(world) for _ in range(3)]
    worker.stop()
    worker.stop()
    assert {status(world, i) for i in ids} == {Status.ACCEPTED}
    with world.bs.storage.unit_of_work() as uow:
        from datetime import UTC, datetime, timedelta

        claimed = uow.dispatch.claim(
            "probe", datetime.now(UTC) + timedelta(seconds=5), timedelta(seconds=1), 10
        )
    assert {c.message_id for c in claimed} == set(ids)


def test_a_running_worker_beats_and_a_stopped_one_is_forgotten(world: World) -> None:
    assert world.bs.worker_heartbeat_age() is None
    worker = start(world, Factory(), heartbeat_interval=0.02)
    try:
        beats = world.bs.worker_heartbeats()
        assert [(b.owner, b.kind) for b in beats] == [(worker.owner, "worker")]
        first = beats[0].seen_at
        until(lambda: world.bs.worker_heartbeats()[0].seen_at > first)
        age = world.bs.worker_heartbeat_age()
        assert age is not None
        assert age < 5
    finally:
        worker.stop()
    assert world.bs.worker_heartbeats() == []
    assert world.bs.worker_heartbeat_age() is None


def test_tune_gc_freezes_startup_objects_and_collects_young_ones_less_often() -> None:
    import gc

    from bharatsend_core.service.worker import GC_YOUNG_THRESHOLD, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        young, middle, old = gc.get_threshold()
        assert young == max(before[0], GC_YOUNG_THRESHOLD)
        assert (middle, old) == before[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
