"""An in-process carrier: the carrier port without a socket, for tests and host apps' test kits.

It accepts parts at once (ids ``mem-<route>-<n>``) and, unless told
otherwise, sends a receipt per accepted part from its own thread, the way an
SMSC does. Faults are scripted: :meth:`MemoryCarrier.script` queues outcomes
("transient", "throttled", "permanent", "unknown") for the next parts, and
``ready = False`` makes the route look unbound. Passes the same contract
tests as :class:`~bharatsend_core.adapters.smpp.carrier.SmppCarrier`.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from attrs import frozen

from bharatsend_core.domain.errors import CarrierUnavailable
from bharatsend_core.domain.message import Message, ReceiptOutcome
from bharatsend_core.domain.receipts import Receipt
from bharatsend_core.domain.routing import StatusClass
from bharatsend_core.ports.carrier import (
    CarrierHealth,
    CarrierReceipt,
    CarrierState,
    PartOutcome,
    ReceiptSink,
)
from bharatsend_core.ports.clock import Clock
from bharatsend_core.ports.futures import Future

__all__ = ["MemoryCarrier", "MemorySubmit", "Scripted"]

#: A scripted outcome for the next part.
Scripted = Literal["accept", "transient", "throttled", "permanent", "unknown"]

_STAT = {
    ReceiptOutcome.DELIVERED: "DELIVRD",
    ReceiptOutcome.UNDELIVERED: "UNDELIV",
    ReceiptOutcome.EXPIRED: "EXPIRED",
    ReceiptOutcome.REJECTED: "REJECTD",
    ReceiptOutcome.ENROUTE: "ENROUTE",
    ReceiptOutcome.BUFFERED: "ACCEPTD",
}
_STATUS = {"transient": 0x08, "throttled": 0x58, "permanent": 0x0B}


@frozen
class MemorySubmit:
    """One part the carrier accepted."""

    message_id: str
    index: int
    carrier_message_id: str
    phone: str


class MemoryCarrier:
    """A fake route that behaves like a well-mannered SMSC unless scripted otherwise."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        receipt_outcome: ReceiptOutcome | None = ReceiptOutcome.DELIVERED,
        error_code: str = "000",
    ) -> None:
        self._name = name
        self._clock = clock
        #: The final state of automatic receipts; None sends none.
        self.receipt_outcome = receipt_outcome
        self.error_code = error_code
        #: False makes the route look unbound (the worker fails over).
        self.ready = True
        self.submits: list[MemorySubmit] = []
        #: (carrier id, stored?) for every receipt the sink acknowledged.
        self.acknowledged: list[tuple[str, bool]] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._counter = 0
        self._receipts: queue.Queue[CarrierReceipt | None] = queue.Queue()
        self._sink: ReceiptSink | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def name(self) -> str:
        """The route name."""
        return self._name

    def script(self, *outcomes: Scripted) -> None:
        """Queue outcomes for the next parts submitted, in order."""
        with self._lock:
            self._script.extend(outcomes)

    def start(self, sink: ReceiptSink) -> None:
        """Start the receipt thread."""
        if self._thread is not None:
            raise RuntimeError(f"carrier {self._name!r} was already started")
        self._sink = sink
        self._thread = threading.Thread(
            target=self._deliver, name=f"memory-carrier-{self._name}", daemon=True
        )
        self._thread.start()

    def submit(self, message: Message, *, now: datetime) -> Sequence[Future[PartOutcome]]:
        """Answer every pending part now (accepted unless scripted)."""
        if self._stopped or self._sink is None or not self.ready:
            raise CarrierUnavailable(f"route {self._name!r} is not bound or is stopping")
        futures: list[Future[PartOutcome]] = []
        for index in message.pending_part_indexes:
            with self._lock:
                scripted: Scripted = self._script.popleft() if self._script else "accept"
                self._counter += 1
                carrier_id = f"mem-{self._name}-{self._counter}"
            future: Future[PartOutcome] = Future()
            if scripted == "accept":
                outcome = PartOutcome(index=index, carrier_message_id=carrier_id)
                with self._lock:
                    self.submits.append(MemorySubmit(message.id, index, carrier_id, message.phone))
                if self.receipt_outcome is not None:
                    self.send_receipt(carrier_id, self.receipt_outcome)
            elif scripted == "unknown":
                outcome = PartOutcome(index=index, unknown=True)
            else:
                outcome = PartOutcome(
                    index=index,
                    command_status=_STATUS[scripted],
                    status_class=StatusClass(scripted),
                )
            future.set_result(outcome)
            futures.append(future)
        return futures

    def send_receipt(
        self, carrier_message_id: str, outcome: ReceiptOutcome, error_code: str | None = None
    ) -> None:
        """Queue a receipt for delivery to the sink (tests send duplicates or strays this way)."""
        receipt = Receipt(
            message_id=carrier_message_id,
            stat=_STAT[outcome],
            outcome=outcome,
            error_code=self.error_code if error_code is None else error_code,
        )
        self._receipts.put(
            CarrierReceipt(
                route=self._name,
                carrier_message_id=carrier_message_id,
                receipt=receipt,
                received_at=self._clock.now(),
            )
        )

    def _deliver(self) -> None:
        while True:
            item = self._receipts.get()
            if item is None:
                return
            sink = self._sink
            if sink is None:  # pragma: no cover - started before the thread
                continue

            def done(stored: bool, carrier_id: str = item.carrier_message_id) -> None:
                with self._lock:
                    self.acknowledged.append((carrier_id, stored))

            sink(item, done)

    def health(self) -> CarrierHealth:
        """Always "ready" unless stopped or ``ready`` was cleared."""
        state: CarrierState = (
            "stopped" if self._stopped else ("ready" if self.ready else "connecting")
        )
        return CarrierHealth(self._name, state, 0, self._receipts.qsize(), 1, None)

    def stop(self, drain_timeout: float) -> None:
        """Stop the receipt thread after the receipts already queued."""
        if self._stopped:
            return
        self._stopped = True
        self._receipts.put(None)
        if self._thread is not None:
            self._thread.join(timeout=max(drain_timeout, 0.1))
