"""The delivery-receipt inbox: store, deduplicate, match, apply, settle.

Every receipt is first written to the inbox under its unique key (route,
carrier id, outcome), so a redelivered copy is a no-op even across workers.
A receipt whose carrier id no part has yet (it overtook the submit response)
stays *parked*; the dispatcher applies it when it records that response, and
parked receipts older than ``park_window`` become *unknown*: kept for
inspection, never dropped. Applying a receipt moves the part and the message
(``Message.apply`` ignores late and duplicate ones), appends to the timeline
and settles the ledger per the tenant's billing point, all in the same
transaction as the inbox write. Only after that commit is the receipt
acknowledged to the SMSC; if the commit fails the SMSC is asked to redeliver.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs
from attrs import frozen

from bharatsend_core.domain.errors import BharatSendError, ConcurrentUpdate, InvalidArgument
from bharatsend_core.domain.message import Message, PartReceipt, ReceiptTimeout
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports.carrier import CarrierReceipt
from bharatsend_core.ports.storage import StoredReceipt, UnitOfWork
from bharatsend_core.service.context import Context
from bharatsend_core.service.ledger import settle_messages
from bharatsend_core.service.webhooks import record_events

__all__ = [
    "IngestResult",
    "Lookup",
    "ReceiptInbox",
    "apply_receipts",
    "check_receipt_threads",
    "settle_changed",
    "stored_receipt",
]

_log = logging.getLogger(__name__)

#: Attempts at a batch whose messages another transaction changed meanwhile.
_CONFLICT_RETRIES = 3

#: ``lookup(route, carrier ids)`` -> {carrier id: (message, part index)}.
Lookup = Callable[[str, Sequence[str]], Mapping[str, tuple[Message, int]]]


def check_receipt_threads(threads: object) -> int:
    """``threads`` when it is a whole number from 1 to 8; ``InvalidArgument`` otherwise."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 8:
        raise InvalidArgument("receipt_threads must be 1 to 8", field="receipt_threads")
    return threads


def stored_receipt(item: CarrierReceipt) -> StoredReceipt:
    """The inbox row for a receipt as it arrives (parked until matched)."""
    receipt = item.receipt
    return StoredReceipt(
        route=item.route,
        carrier_message_id=item.carrier_message_id,
        outcome=receipt.outcome,
        stat=receipt.stat[:16],
        error_code=receipt.error_code if receipt.is_error else None,
        received_at=item.received_at,
        state="parked",
        done_at=receipt.done_at,
    )


def apply_receipts(
    uow: UnitOfWork,
    receipts: Iterable[StoredReceipt],
    *,
    current: dict[str, Message],
    lookup: Lookup,
    expected: dict[str, int] | None = None,
) -> int:
    """Apply stored receipts whose carrier id a part has; return how many matched.

    ``current`` holds the newest version of messages already touched in this
    transaction and receives every message a receipt changed, so two
    receipts for one message in one batch build on each other. Unmatched
    receipts stay as they are (parked). ``expected`` receives, for each
    message read through ``lookup``, how many timeline entries it had: pass it
    to ``update_many`` so a concurrent change is refused, not overwritten.
    """
    by_route: dict[str, list[StoredReceipt]] = {}
    for receipt in receipts:
        by_route.setdefault(receipt.route, []).append(receipt)
    applied = 0
    for route, items in by_route.items():
        found = lookup(route, sorted({r.carrier_message_id for r in items}))
        for receipt in items:
            hit = found.get(receipt.carrier_message_id)
            if hit is None:
                continue
            message = _apply_one(receipt, hit, current, expected)
            applied += 1
            uow.receipts.resolve(
                receipt,
                state="applied",
                tenant_id=message.tenant_id,
                message_id=message.id,
                part_index=hit[1],
            )
    return applied


def _apply_one(
    receipt: StoredReceipt,
    hit: tuple[Message, int],
    current: dict[str, Message],
    expected: dict[str, int] | None,
) -> Message:
    """Apply one matched receipt to the newest version of its message (see ``apply_receipts``)."""
    stored_message, index = hit
    if expected is not None and stored_message.id not in current:
        expected[stored_message.id] = len(stored_message.timeline)
    message = current.get(stored_message.id, stored_message).apply(
        PartReceipt(
            at=receipt.received_at,
            index=index,
            outcome=receipt.outcome,
            carrier_code=receipt.error_code,
        )
    )
    current[message.id] = message
    return message


def settle_changed(uow: UnitOfWork, messages: Iterable[Message], at: datetime) -> None:
    """Settle each message's charge for its status: a few statements for the whole batch."""
    tenants: dict[str, Tenant | None] = {}
    batch: list[tuple[Message, Tenant]] = []
    for message in messages:
        if message.tenant_id not in tenants:
            tenants[message.tenant_id] = uow.tenants.get(message.tenant_id)
        tenant = tenants[message.tenant_id]
        if tenant is None:  # pragma: no cover - tenants are never deleted
            _log.error("settlement: message %s has no tenant", message.id)
            continue
        batch.append((message, tenant))
    settle_messages(uow, batch, at)


@frozen
class IngestResult:
    """What one ingested batch did."""

    stored: int
    duplicates: int
    applied: int
    parked: int


class ReceiptInbox:
    """Receives receipts from carriers and ingests them in batches on its own thread.

    Batching is what makes receipts cheap: one transaction for up to
    ``batch`` receipts. The thread takes whatever has queued (waiting at most
    ``linger`` seconds for more after the first), so at low rates a receipt
    is stored within milliseconds.

    ``threads`` (1 to 8) ingest batches side by side. On PostgreSQL a batch
    leaves its thread waiting on the server for about half its time, and a
    second thread fills that wait; on SQLite, where writes take turns, one is
    enough. Two batches touching one message conflict, and the later one is
    read and applied again (``ingest``); only the first thread sweeps.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        batch: int = 500,
        linger: float = 0.002,
        park_window: timedelta = timedelta(hours=6),
        sweep_interval: float = 0.5,
        receipt_wait: timedelta = timedelta(hours=72),
        threads: int = 1,
    ) -> None:
        self.threads = check_receipt_threads(threads)
        self._ctx = ctx
        self.sweep_interval = sweep_interval
        self._last_sweep = 0.0
        self.batch = batch
        self.linger = linger
        self.park_window = park_window
        #: How long a sent message may wait for its final receipts before
        #: ``ReceiptTimeout`` expires the parts still waiting.
        self.receipt_wait = receipt_wait
        self._queue: queue.Queue[tuple[CarrierReceipt, Callable[[bool], None]] | None] = (
            queue.Queue()
        )
        self._threads: list[threading.Thread] = []
        self._last_expiry: float | None = None
        self._counting = threading.Lock()
        #: Counters for health checks.
        self.ingested = 0
        self.duplicates = 0
        self.failures = 0

    # ------------------------------------------------------------------ the sink

    def sink(self, item: CarrierReceipt, done: Callable[[bool], None]) -> None:
        """The carriers' receipt sink: queue it; ``done`` is called after the commit."""
        self._queue.put((item, done))

    @property
    def backlog(self) -> int:
        """Receipts queued and not yet stored."""
        return self._queue.qsize()

    # ------------------------------------------------------------------ ingesting

    def ingest(self, items: Sequence[CarrierReceipt]) -> IngestResult:
        """Store and apply a batch in one transaction; raises if it could not be stored.

        A message changed by another transaction between our read and our
        write (``ConcurrentUpdate``) makes the whole batch roll back and run
        again: the inbox rows go with it, so nothing is half-applied.
        """
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return self._ingest(items)
            except ConcurrentUpdate:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _ingest(self, items: Sequence[CarrierReceipt]) -> IngestResult:
        now = self._ctx.clock.now()
        with self._ctx.storage.unit_of_work() as uow:
            # Match first, so each receipt is written once, already in its final
            # state; the insert's conflict check is still what deduplicates.
            by_route: dict[str, list[StoredReceipt]] = {}
            for item in items:
                by_route.setdefault(item.route, []).append(stored_receipt(item))
            current: dict[str, Message] = {}
            expected: dict[str, int] = {}
            stored_count = applied = 0
            for route, batch in by_route.items():
                found = uow.messages.find_by_carrier_ids(
                    route, sorted({r.carrier_message_id for r in batch})
                )
                matched: list[tuple[StoredReceipt, tuple[Message, int] | None]] = []
                for receipt in batch:
                    hit = found.get(receipt.carrier_message_id)
                    if hit is not None:
                        receipt = attrs.evolve(
                            receipt,
                            state="applied",
                            tenant_id=hit[0].tenant_id,
                            message_id=hit[0].id,
                            part_index=hit[1],
                        )
                    matched.append((receipt, hit))
                new = uow.receipts.add_many([receipt for receipt, _ in matched])
                for (receipt, hit), is_new in zip(matched, new, strict=True):
                    if not is_new:
                        continue  # a duplicate: stored before, nothing to do
                    stored_count += 1
                    if hit is not None:
                        _apply_one(receipt, hit, current, expected)
                        applied += 1
            messages = [current[i] for i in sorted(current)]
            uow.messages.update_many(messages, expected_events=expected)
            record_events(uow, [(m, expected[m.id]) for m in messages], now, self._ctx.hub)
            settle_changed(uow, messages, now)  # last: it locks the accounts until the commit
            uow.commit()
        return IngestResult(
            stored=stored_count,
            duplicates=len(items) - stored_count,
            applied=applied,
            parked=stored_count - applied,
        )

    def retry_parked(self, limit: int = 500) -> int:
        """Match the newest parked receipts again; how many were applied.

        On PostgreSQL a receipt can be parked by one transaction while the
        transaction recording its submit response commits at the same moment
        (neither sees the other's rows); this sweep closes that gap within
        ``sweep_interval``.
        """
        now = self._ctx.clock.now()
        with self._ctx.storage.unit_of_work() as uow:
            parked = uow.receipts.list(state="parked", limit=limit)
            if not parked:
                return 0
            current: dict[str, Message] = {}
            expected: dict[str, int] = {}
            applied = apply_receipts(
                uow,
                parked,
                current=current,
                lookup=uow.messages.find_by_carrier_ids,
                expected=expected,
            )
            if not applied:
                return 0
            messages = [current[i] for i in sorted(current)]
            uow.messages.update_many(messages, expected_events=expected)
            record_events(uow, [(m, expected[m.id]) for m in messages], now, self._ctx.hub)
            settle_changed(uow, messages, now)  # last: it locks the accounts until the commit
            uow.commit()
        return applied

    def time_out_receipts(self, limit: int = 500) -> int:
        """Expire the waiting parts of messages sent longer than ``receipt_wait`` ago.

        Settles them like any final state (under delivery billing the
        reservation is voided), so a lost receipt never holds credits forever.
        Returns how many messages it moved.
        """
        now = self._ctx.clock.now()
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self._ctx.storage.unit_of_work() as uow:
                    waiting = uow.messages.awaiting_receipts(now - self.receipt_wait, limit)
                    if not waiting:
                        return 0
                    expected = {m.id: len(m.timeline) for m in waiting}
                    moved = [m.apply(ReceiptTimeout(now)) for m in waiting]
                    uow.messages.update_many(moved, expected_events=expected)
                    record_events(uow, [(m, expected[m.id]) for m in moved], now, self._ctx.hub)
                    settle_changed(uow, moved, now)  # last: it locks the accounts until the commit
                    uow.commit()
                    return len(moved)
            except ConcurrentUpdate:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
        return 0  # pragma: no cover

    def expire_parked(self) -> int:
        """Give up on parked receipts older than ``park_window`` (kept as ``unknown``)."""
        before = self._ctx.clock.now() - self.park_window

        def run(uow: UnitOfWork) -> int:
            return uow.receipts.expire_parked(before)

        return self._ctx.write(run)

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        """Start the ingest threads."""
        if self._threads:
            raise RuntimeError("the receipt inbox was already started")
        for n in range(self.threads):
            name = "receipt-inbox" if n == 0 else f"receipt-inbox-{n + 1}"
            thread = threading.Thread(target=self._run, args=(n == 0,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ingest what is queued, then stop the threads."""
        if not self._threads:
            return
        for _ in self._threads:
            self._queue.put(None)  # one each: a thread that takes one stops
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def _run(self, sweeps: bool) -> None:
        delay = 0.1
        while True:
            try:
                self._serve(sweeps)
                return
            except Exception:
                # A bug must not silence the inbox: receipts would queue unanswered.
                _log.exception("receipt inbox: ingest loop failed; restarting")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _serve(self, sweeps: bool) -> None:
        running = True
        while running:
            try:
                first = self._queue.get(timeout=self.sweep_interval)
            except queue.Empty:
                if sweeps:
                    self._sweep()
                continue
            if first is None:
                return
            batch = [first]
            running = self._fill(batch)
            self._process(batch)
            if sweeps:
                self._sweep()

    def _fill(self, batch: list[tuple[CarrierReceipt, Callable[[bool], None]]]) -> bool:
        """Add what is queued (waiting ``linger`` once); False when a stop was queued."""
        waited = False
        while len(batch) < self.batch:
            try:
                item = self._queue.get_nowait() if waited else self._queue.get(timeout=self.linger)
            except queue.Empty:
                if waited:
                    return True
                waited = True
                continue
            if item is None:
                return False
            batch.append(item)
        return True

    def _process(self, batch: Sequence[tuple[CarrierReceipt, Callable[[bool], None]]]) -> None:
        try:
            result = self.ingest([item for item, _done in batch])
        except BharatSendError as e:
            # Nothing was stored: ask the SMSC to send them again.
            self._count(failures=1)
            _log.warning("receipt inbox: batch of %d not stored: %s", len(batch), e.code)
            ok = False
        except Exception:
            self._count(failures=1)
            _log.exception("receipt inbox: batch of %d failed", len(batch))
            ok = False
        else:
            ok = True
            self._count(ingested=result.stored, duplicates=result.duplicates)
        for _item, done in batch:
            try:
                done(ok)
            except Exception:  # pragma: no cover - a carrier's answer path failing
                _log.exception("receipt inbox: acknowledging a receipt failed")

    def _count(self, *, ingested: int = 0, duplicates: int = 0, failures: int = 0) -> None:
        with self._counting:  # threads add up; a bare += can lose one
            self.ingested += ingested
            self.duplicates += duplicates
            self.failures += failures

    def _sweep(self) -> None:
        """Retry parked receipts every ``sweep_interval``; expire old ones every minute."""
        now = self._ctx.clock.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            try:
                self.retry_parked()
            except BharatSendError as e:
                _log.warning("receipt inbox: retrying parked receipts failed: %s", e.code)
            except Exception:
                _log.exception("receipt inbox: retrying parked receipts failed")
        self._maybe_expire()

    def _maybe_expire(self) -> None:
        now = self._ctx.clock.monotonic()
        if self._last_expiry is not None and now - self._last_expiry < 60.0:
            return
        self._last_expiry = now
        try:
            expired = self.expire_parked()
            timed_out = 0
            for _ in range(20):  # at most 10,000 a minute; the rest next time
                moved = self.time_out_receipts()
                timed_out += moved
                if moved < 500:
                    break
        except BharatSendError as e:
            _log.warning("receipt inbox: expiring parked receipts failed: %s", e.code)
            return
        if timed_out:
            _log.warning("receipt inbox: %d sent messages got no final receipt in time", timed_out)
        if expired:
            _log.warning(
                "receipt inbox: %d parked receipts matched no part; kept as unknown", expired
            )
