"""The carrier port: one route's connection to an SMSC, as the dispatch worker sees it.

A carrier takes a message's pending parts and answers each with a future
:class:`PartOutcome`; it hands delivery receipts to a sink, which says later
(``done(True)``) whether the receipt was durably stored, so the carrier can
acknowledge it to the SMSC only then, or ask for redelivery (``done(False)``).
Carrier ids in both directions are already in the route's canonical spelling
(``domain.receipts``), so the service matches them with plain equality.

``tests/contract/test_carrier.py`` runs the same cases against the SMPP
adapter (over TCP to the simulator) and the in-memory one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol

from attrs import frozen

from bharatsend_core.domain.message import Message
from bharatsend_core.domain.receipts import Receipt
from bharatsend_core.domain.routing import StatusClass
from bharatsend_core.ports.futures import Future

__all__ = [
    "Carrier",
    "CarrierHealth",
    "CarrierReceipt",
    "CarrierState",
    "PartOutcome",
    "ReceiptSink",
]

#: ``connecting`` (including backing off after a failure), ``ready``, ``stopped``.
CarrierState = Literal["connecting", "ready", "stopped"]


@frozen
class PartOutcome:
    """How the carrier answered one part's submit.

    Exactly one of: accepted (``carrier_message_id`` set), refused
    (``status_class`` and ``command_status`` set), or ``unknown`` (written but
    never answered: the SMSC may have it).
    """

    index: int
    carrier_message_id: str | None = None
    command_status: int | None = None
    status_class: StatusClass | None = None
    unknown: bool = False

    @property
    def accepted(self) -> bool:
        """True when the carrier took the part."""
        return self.carrier_message_id is not None


@frozen
class CarrierReceipt:
    """A parsed delivery receipt from a route, with the carrier id in canonical spelling."""

    route: str
    carrier_message_id: str
    receipt: Receipt
    received_at: datetime


#: ``sink(receipt, done)``: store the receipt, then call ``done(True)``, or
#: ``done(False)`` if it could not be stored (the SMSC will redeliver it).
ReceiptSink = Callable[[CarrierReceipt, Callable[[bool], None]], None]


@frozen
class CarrierHealth:
    """What an operator's health check shows for one route."""

    route: str
    state: CarrierState
    in_flight: int
    queued: int
    binds: int
    last_error: str | None


class Carrier(Protocol):
    """One route's connection to its SMSC."""

    @property
    def name(self) -> str:
        """The route name."""
        ...

    def start(self, sink: ReceiptSink) -> None:
        """Connect (in the background) and deliver receipts to ``sink`` from now on."""
        ...

    @property
    def ready(self) -> bool:
        """True while bound and able to take submits now."""
        ...

    def submit(self, message: Message, *, now: datetime) -> Sequence[Future[PartOutcome]]:
        """Queue the message's pending parts; one future per part, in part order.

        Raises ``InvalidArgument`` when the message cannot be put on this
        route's wire (then nothing was queued) and ``CarrierUnavailable``
        when the carrier is stopping.
        """
        ...

    def health(self) -> CarrierHealth:
        """State and counters for health checks."""
        ...

    def stop(self, drain_timeout: float) -> None:
        """Finish in-flight submits for up to ``drain_timeout`` seconds, unbind and close.

        Unwritten submits' futures are cancelled; unanswered ones resolve ``unknown``.
        """
        ...
