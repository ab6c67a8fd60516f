"""The ports' light Future behaves as concurrent.futures.Future for what it has."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, InvalidStateError
from concurrent.futures import Future as StdFuture
from typing import Any

import pytest

from bharatsend_core.ports.futures import Future, done


@pytest.mark.parametrize("make", [Future, StdFuture], ids=["ours", "stdlib"])
def test_result_exception_cancel_and_callbacks_match_the_stdlib(make: Any) -> None:
    # Every case runs on the stdlib's future too: the two must agree.
    seen: list[object] = []
    ok = make()
    ok.add_done_callback(lambda f: seen.append(("first", f.result())))
    assert not ok.done()
    assert not ok.cancelled()
    ok.set_result(7)
    ok.add_done_callback(lambda f: seen.append(("late", f.result())))  # runs at once
    assert ok.done()
    assert ok.result() == 7
    assert ok.exception() is None
    assert seen == [("first", 7), ("late", 7)]
    with pytest.raises(InvalidStateError):
        ok.set_result(8)
    with pytest.raises(InvalidStateError):
        ok.set_exception(ValueError("late"))
    assert not ok.cancel()
    assert ok.result() == 7

    failed = make()
    failed.set_exception(KeyError("k"))
    assert isinstance(failed.exception(), KeyError)
    with pytest.raises(KeyError):
        failed.result()

    cancelled = make()
    called: list[bool] = []
    cancelled.add_done_callback(lambda f: called.append(f.cancelled()))
    assert cancelled.cancel()
    assert cancelled.cancel()
    assert cancelled.cancelled()
    assert cancelled.done()
    assert called == [True]
    with pytest.raises(CancelledError):
        cancelled.result()
    with pytest.raises(CancelledError):
        cancelled.exception()
    with pytest.raises(InvalidStateError):
        cancelled.set_result(1)

    pending = make()
    with pytest.raises(TimeoutError):
        pending.result(timeout=0.01)


def test_a_blocked_reader_wakes_when_another_thread_sets_the_result() -> None:
    future: Future[str] = Future()
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(future.result(timeout=5)))
    reader.start()
    time.sleep(0.02)
    future.set_result("sent")
    reader.join(5)
    assert got == ["sent"]


def test_a_failing_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    future: Future[int] = Future()
    ran: list[int] = []

    def bad(_f: Future[int]) -> None:
        raise RuntimeError("boom")

    future.add_done_callback(bad)
    future.add_done_callback(lambda f: ran.append(f.result()))
    future.set_result(3)
    assert ran == [3]
    assert "exception calling callback" in caplog.text


def test_many_threads_finishing_and_watching_lose_no_callback() -> None:
    futures: list[Future[int]] = [Future() for _ in range(2000)]
    counts = [0]
    lock = threading.Lock()

    def count(_f: Future[int]) -> None:
        with lock:
            counts[0] += 1

    def watch() -> None:
        for f in futures:
            f.add_done_callback(count)

    def finish() -> None:
        for i, f in enumerate(futures):
            f.set_result(i)

    threads = [threading.Thread(target=watch), threading.Thread(target=finish)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts[0] == 2000  # each callback exactly once, before or after the result
    assert [f.result() for f in futures] == list(range(2000))


def test_done_builds_a_resolved_future() -> None:
    future = done("x")
    assert future.done()
    assert future.result() == "x"
    assert not future.cancelled()
