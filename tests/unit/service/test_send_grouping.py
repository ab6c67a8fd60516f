"""Group commit for single sends: who commits, who waits, and that each caller gets its answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bharatsend_core import BharatSend, Settings
from bharatsend_core.domain.errors import (
    ConfigurationError,
    IdempotencyConflict,
    InvalidArgument,
    InvalidPhoneNumber,
    StorageUnavailable,
)
from bharatsend_core.service import grouping
from bharatsend_core.service.grouping import GroupCommit
from bharatsend_core.service.send import BatchItem, BatchResult, SendRequest, SendResult
from bharatsend_core.testing import FakeClock, SequentialIds

from .world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, PEPPER, make_world

WAIT = 5.0


def request(n: int, client_id: str | None = None, content: str = OTP_TEXT) -> SendRequest:
    return SendRequest(f"+9198{n:08d}", content, OTP_TEMPLATE, client_message_id=client_id)


class Fake:
    """``one`` and ``batch`` for a GroupCommit that record their calls; ``one`` can be held."""

    def __init__(self) -> None:
        self.ones: list[SendRequest] = []
        self.batches: list[list[SendRequest]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()
        self.fail_batch: Exception | None = None
        self.refuse: set[str] = set()

    def result(self, r: SendRequest) -> SendResult:
        return SendResult(r.phone_number, False)  # type: ignore[arg-type]

    def one(self, tenant_id: str, r: SendRequest, sandbox: bool) -> SendResult:
        self.ones.append(r)
        self.holding.set()
        assert self.hold.wait(WAIT)
        if r.phone_number in self.refuse:
            raise InvalidArgument("refused", field="phone_number")
        return self.result(r)

    def batch(self, tenant_id: str, requests: Sequence[SendRequest], sandbox: bool) -> BatchResult:
        self.batches.append(list(requests))
        if self.fail_batch is not None:
            raise self.fail_batch
        items = []
        for i, r in enumerate(requests):
            if r.phone_number in self.refuse:
                items.append(BatchItem(i, error=InvalidArgument("refused", field="phone_number")))
            else:
                items.append(BatchItem(i, result=self.result(r)))
        return BatchResult(tuple(items))


def in_threads(group: GroupCommit, requests: list[SendRequest]) -> list[Any]:
    """Send each request from its own thread; each answer or error, in request order."""
    out: list[Any] = [None] * len(requests)

    def run(i: int) -> None:
        try:
            out[i] = group.send("ten_1", requests[i], False)
        except Exception as e:  # the answer under test
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(requests))]
    for t in threads:
        t.start()
        time.sleep(0.01)  # arrive in order
    for t in threads:
        t.join(WAIT)
    return out


def waiting(group: GroupCommit, count: int) -> None:
    """Until ``count`` sends wait behind the busy leader."""
    deadline = time.monotonic() + WAIT
    while True:
        lines = list(group._lines.values())
        if lines and len(lines[0].waiting) >= count:
            return
        assert time.monotonic() < deadline, "the senders never queued"
        time.sleep(0.001)


def held_first(
    fake: Fake, group: GroupCommit, requests: list[SendRequest], queued: int
) -> list[Any]:
    """The first request's commit is held until ``queued`` others wait; then all finish."""
    fake.hold.clear()
    answers: list[Any] = []
    runner = threading.Thread(target=lambda: answers.extend(in_threads(group, requests)))
    runner.start()
    assert fake.holding.wait(WAIT)
    waiting(group, queued)
    fake.hold.set()
    runner.join(WAIT)
    return answers


def test_a_send_alone_commits_on_its_own() -> None:
    fake = Fake()
    group = GroupCommit(2, fake.one, fake.batch)
    assert group.send("ten_1", request(1), False).message == "+919800000001"  # type: ignore[comparison-overlap]
    assert [r.phone_number for r in fake.ones] == ["+919800000001"]
    assert fake.batches == []
    assert group._lines == {}


def test_sends_arriving_while_the_leaders_commit_go_together_in_arrival_order() -> None:
    fake = Fake()
    group = GroupCommit(1, fake.one, fake.batch)
    requests = [request(n) for n in range(5)]
    answers = held_first(fake, group, requests, queued=4)
    assert [a.message for a in answers] == [r.phone_number for r in requests]
    assert [r.phone_number for r in fake.ones] == [requests[0].phone_number]
    assert fake.batches == [requests[1:]]
    assert group._lines == {}


@pytest.mark.parametrize(
    "refused",
    [0, 2],  # the leader's own commit, a member of the group behind it
)
def test_each_send_gets_its_own_error_and_the_others_their_results(refused: int) -> None:
    fake = Fake()
    fake.refuse = {request(refused).phone_number}
    group = GroupCommit(1, fake.one, fake.batch)
    answers = held_first(fake, group, [request(n) for n in range(4)], queued=3)
    assert isinstance(answers[refused], InvalidArgument)
    assert [a.message for i, a in enumerate(answers) if i != refused] == [
        request(n).phone_number for n in range(4) if n != refused
    ]
    assert group._lines == {}  # the lead was passed on or given up either way


def test_a_group_that_fails_as_a_whole_sends_each_member_again_on_its_own() -> None:
    fake = Fake()
    fake.fail_batch = StorageUnavailable("the database blinked")
    group = GroupCommit(1, fake.one, fake.batch)
    requests = [request(n) for n in range(4)]
    answers = held_first(fake, group, requests, queued=3)
    assert [a.message for a in answers] == [r.phone_number for r in requests]
    assert len(fake.batches) == 1
    assert sorted(r.phone_number for r in fake.ones) == sorted(r.phone_number for r in requests)
    assert group._lines == {}


def test_a_group_holds_at_most_the_group_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "GROUP_LIMIT", 3)
    fake = Fake()
    group = GroupCommit(1, fake.one, fake.batch)
    requests = [request(n) for n in range(6)]
    answers = held_first(fake, group, requests, queued=5)
    assert [a.message for a in answers] == [r.phone_number for r in requests]
    assert [len(b) for b in fake.batches] == [3, 2]


def test_up_to_leaders_sends_commit_at_once_without_waiting() -> None:
    fake = Fake()
    group = GroupCommit(3, fake.one, fake.batch)
    fake.hold.clear()
    runner = threading.Thread(target=in_threads, args=(group, [request(n) for n in range(3)]))
    runner.start()
    deadline = time.monotonic() + WAIT
    while len(fake.ones) < 3:  # all three are inside their own commit, none waits
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert all(not line.waiting for line in group._lines.values())
    fake.hold.set()
    runner.join(WAIT)
    assert fake.batches == []


def test_a_send_from_inside_a_groups_commit_does_not_wait_for_itself() -> None:
    # A status listener runs inside the commit; if it sends again, that send
    # must not queue behind the very commit that is running it.
    fake = Fake()
    group = GroupCommit(1, fake.one, fake.batch)
    inner: list[SendResult] = []
    original = fake.one

    def one(tenant_id: str, r: SendRequest, sandbox: bool) -> SendResult:
        if r.phone_number == request(0).phone_number:
            inner.append(group.send(tenant_id, request(1), sandbox))
        return original(tenant_id, r, sandbox)

    group._one = one  # type: ignore[method-assign]
    answers = in_threads(group, [request(0)])
    assert [a.message for a in answers] == [request(0).phone_number]
    assert [a.message for a in inner] == [request(1).phone_number]
    assert group._lines == {}


def test_the_setting_is_validated() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve({}, send_group_commits=-1)
    assert caught.value.field == "send_group_commits"
    assert Settings.resolve({"BHARATSEND_SEND_GROUP_COMMITS": "0"}).send_group_commits == 0


# ---------------------------------------------------------------------- through the facade


def grouped_world(leaders: int) -> tuple[BharatSend, str]:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(
        clock=clock, ids=SequentialIds(), key_pepper=PEPPER, send_group_commits=leaders
    )
    return bs, make_world(bs, clock, credits=100_000).tenant_id


def hold_first_commit(bs: BharatSend) -> tuple[threading.Event, threading.Event]:
    """Make the first single commit wait (so later sends queue); (entered, release)."""
    group = bs._send._group
    assert group is not None
    entered, release = threading.Event(), threading.Event()
    original: Callable[..., SendResult] = group._one

    def one(*args: Any) -> SendResult:
        if not entered.is_set():
            entered.set()
            assert release.wait(WAIT)
        return original(*args)

    group._one = one  # type: ignore[method-assign]
    batch = group._batch

    def counted(tenant_id: str, requests: Sequence[SendRequest], sandbox: bool) -> BatchResult:
        BATCHES.append(len(requests))
        return batch(tenant_id, requests, sandbox)

    group._batch = counted  # type: ignore[method-assign]
    return entered, release


BATCHES: list[int] = []


def test_grouped_sends_answer_as_the_same_sends_one_by_one() -> None:
    bs, tenant_id = grouped_world(1)
    BATCHES.clear()
    entered, release = hold_first_commit(bs)
    wanted = [
        {"phone_number": "+919800000001", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE},
        {
            "phone_number": "+919800000002", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE,
            "client_message_id": "order-7",
        },
        {
            "phone_number": "+919800000002", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE,
            "client_message_id": "order-7",
        },
        {
            "phone_number": "+919800000003", "content": "something else",
            "dlt_template_id": OTP_TEMPLATE, "client_message_id": "order-7",
        },
        {"phone_number": "not a number", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE},
        {"phone_number": "+919800000004", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE},
    ]  # fmt: skip
    answers: list[Any] = [None] * len(wanted)

    def run(i: int) -> None:
        try:
            answers[i] = bs.send(tenant_id, **wanted[i])  # type: ignore[arg-type]
        except Exception as e:  # the answer under test
            answers[i] = e

    first = threading.Thread(target=run, args=(0,))
    first.start()
    assert entered.wait(WAIT)
    others = [threading.Thread(target=run, args=(i,)) for i in range(1, len(wanted))]
    for t in others:
        t.start()
        time.sleep(0.01)  # arrive in order
    group = bs._send._group
    assert group is not None
    waiting(group, len(others))
    release.set()
    for t in [first, *others]:
        t.join(WAIT)
    # As if sent one after the other: the repeat is a replay, the conflicting
    # reuse of the id and the bad number fail on their own, the rest go.
    assert answers[0].replayed is False
    assert answers[1].replayed is False
    assert answers[2].replayed is True
    assert answers[2].id == answers[1].id
    assert isinstance(answers[3], IdempotencyConflict)
    assert isinstance(answers[4], InvalidPhoneNumber)
    assert answers[5].replayed is False
    accepted = {a.id for a in answers if isinstance(a, SendResult)}
    assert len(accepted) == 3
    for message_id in accepted:
        assert bs.get_message(tenant_id, message_id).status.value == "accepted"
    assert bs.reconcile(tenant_id).ok
    assert BATCHES == [5]  # the five that waited went in one transaction
    assert group._lines == {}
    bs.close()


def test_without_grouping_every_send_commits_on_its_own() -> None:
    bs, tenant_id = grouped_world(0)
    assert bs._send._group is None
    result = bs.send(
        tenant_id, phone_number="+919800000001", content=OTP_TEXT, dlt_template_id=OTP_TEMPLATE
    )
    assert result.replayed is False
    bs.close()
