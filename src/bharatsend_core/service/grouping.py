"""Group commit for single sends: concurrent ``send()`` calls of a tenant share a transaction.

Each ``send()`` is a transaction of a dozen statements and a durable commit.
When many request threads send at once, most of that is paid again for every
message, and on PostgreSQL the tenant's account row, which every accept
locks, makes them queue. :class:`GroupCommit` lets up to ``leaders``
accept transactions per (tenant, sandbox) run at once; a ``send()`` that
arrives while all of them are busy waits, and the thread whose transaction
ends next commits everything that waited as one batch (``send_batch``, which
checks and answers each message on its own). Nothing changes for a caller: it gets its own
result or its own error, after its message is durably accepted.

Alone, a send commits on its own (the batch path is only taken for two or
more). If a group's transaction fails as a whole (the database blinked, a
concurrent accept elsewhere took a ``client_message_id``), every member sends
again on its own, so one member never fails another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from attrs import define, field

if TYPE_CHECKING:
    from bharatsend_core.service.send import BatchItem, BatchResult, SendRequest, SendResult

#: The most messages one group commits (``send_batch`` takes up to 1,000).
GROUP_LIMIT = 100

One = Callable[[str, "SendRequest", bool], "SendResult"]
Batch = Callable[[str, Sequence["SendRequest"], bool], "BatchResult"]


@define(eq=False)
class _Waiter:
    """One ``send()`` waiting for its group, or leading one."""

    request: SendRequest
    done: threading.Event = field(factory=threading.Event)
    #: Set to commit the next group (leadership passed on by a finishing leader).
    lead: bool = False
    #: The group failed as a whole: send on your own.
    alone: bool = False
    item: BatchItem | None = None


@define(eq=False)
class _Line:
    """The sends of one (tenant, sandbox): who waits, and how many groups commit now."""

    waiting: list[_Waiter] = field(factory=list)
    leaders: int = 0


class GroupCommit:
    """Up to ``leaders`` accept transactions per tenant at once; the rest wait and go together."""

    def __init__(self, leaders: int, one: One, batch: Batch) -> None:
        """``one`` accepts a single message, ``batch`` several (both raise on whole failures)."""
        if leaders < 1:
            raise ValueError("a group commit needs at least one leader")
        self._leaders = leaders
        self._one = one
        self._batch = batch
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, bool], _Line] = {}
        # Set while this thread commits for a line: a send() from inside that
        # commit (a status listener sending again) must not wait for itself.
        self._leading = threading.local()

    def send(self, tenant_id: str, request: SendRequest, sandbox: bool) -> SendResult:
        """Accept one message, in a group when others are committing; raises its own error."""
        if getattr(self._leading, "active", False):
            return self._one(tenant_id, request, sandbox)
        key = (tenant_id, sandbox)
        me = _Waiter(request)
        with self._lock:
            line = self._lines.setdefault(key, _Line())
            if line.leaders < self._leaders:
                line.leaders += 1
                me.lead = True
            else:
                line.waiting.append(me)
        if not me.lead:
            me.done.wait()
        if me.lead:
            return self._lead(key, line, me)
        if me.alone:
            return self._one(tenant_id, request, sandbox)
        return _outcome(me.item)

    def _lead(self, key: tuple[str, bool], line: _Line, me: _Waiter) -> SendResult:
        with self._lock:
            group = [me, *line.waiting[: GROUP_LIMIT - 1]]
            del line.waiting[: len(group) - 1]
        self._leading.active = True
        if len(group) == 1:
            try:
                return self._one(key[0], me.request, key[1])
            finally:
                self._leading.active = False
                self._hand_on(key, line)
        try:
            result = self._batch(key[0], [w.request for w in group], key[1])
            for item in result.items:
                group[item.index].item = item
        except Exception:  # noqa: S110 - each member sends again below
            pass
        finally:
            self._leading.active = False
            # Whoever has no answer (the whole transaction failed: the database
            # blinked, another process took a client_message_id) sends again on
            # its own, in its own thread, so no member answers with another's error.
            for waiter in group:
                waiter.alone = waiter.item is None
            self._hand_on(key, line)
            for waiter in group[1:]:
                waiter.done.set()
        if me.alone:
            return self._one(key[0], me.request, key[1])
        return _outcome(me.item)

    def _hand_on(self, key: tuple[str, bool], line: _Line) -> None:
        """Pass leadership to the longest waiter, or give it up."""
        with self._lock:
            if line.waiting:
                successor = line.waiting.pop(0)
                successor.lead = True
                successor.done.set()
                return
            line.leaders -= 1
            if not line.leaders:
                del self._lines[key]


def _outcome(item: BatchItem | None) -> SendResult:
    assert item is not None, "a group member was released without its outcome"
    if item.error is not None:
        raise item.error
    assert item.result is not None
    return item.result
