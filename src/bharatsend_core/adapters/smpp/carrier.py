"""The SMPP carrier: one route's bind(s), speaking the route's dialect.

It turns a message's pending parts into ``submit_sm`` PDUs
(:func:`~bharatsend_core.adapters.smpp.submission.build_submissions`), queues
them on an :class:`~bharatsend_core.adapters.smpp.session.SmppSession`, and
maps each ``submit_sm_resp`` to a :class:`~bharatsend_core.ports.carrier.PartOutcome`
with the route's status overrides and id spelling. Receipts are parsed here
and handed to the service's sink; their ``deliver_sm_resp`` is deferred until
the sink says the receipt is stored, so a receipt is never acknowledged and
then lost.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bharatsend_core.adapters.smpp.pdu import ESME_ROK, ESME_RX_T_APPN
from bharatsend_core.adapters.smpp.session import ReceiptPdu, SmppSession, SubmitOutcome
from bharatsend_core.adapters.smpp.submission import WireSettings, build_submissions
from bharatsend_core.domain.errors import CarrierUnavailable, ReceiptParseError
from bharatsend_core.domain.message import Message
from bharatsend_core.domain.receipts import IdMode, dedup_key, normalise_message_id, parse_receipt
from bharatsend_core.domain.routing import RouteConfig, StatusClass, TokenBucket, classify_status
from bharatsend_core.ports.carrier import (
    CarrierHealth,
    CarrierReceipt,
    CarrierState,
    PartOutcome,
    ReceiptSink,
)
from bharatsend_core.ports.clock import Clock
from bharatsend_core.ports.futures import Future

__all__ = ["SmppCarrier", "receipt_tlvs"]

_log = logging.getLogger(__name__)


def receipt_tlvs(pdu: ReceiptPdu) -> dict[str, bytes | int | str]:
    """The receipt TLVs under the names ``domain.receipts.parse_receipt`` reads."""
    tlvs: dict[str, bytes | int | str] = {}
    if (raw_id := pdu.receipted_message_id) is not None:
        tlvs["receipted_message_id"] = raw_id
    if (state := pdu.message_state) is not None:
        tlvs["message_state"] = state
    if (error := pdu.network_error_code) is not None:
        tlvs["network_error_code"] = error
    payload = pdu.tlvs.get(0x0424)
    if payload is not None:
        tlvs["message_payload"] = payload
    return tlvs


class _ReceiptHandler:
    """A session's ``on_receipt``: knows its session, so the deferred answer goes back on it."""

    __slots__ = ("carrier", "session")

    def __init__(self, carrier: SmppCarrier) -> None:
        self.carrier = carrier
        self.session: SmppSession | None = None

    def __call__(self, pdu: ReceiptPdu) -> int | None:
        if self.session is None:
            return ESME_RX_T_APPN
        return self.carrier._on_receipt(self.session, pdu)


class SmppCarrier:
    """A :class:`~bharatsend_core.ports.carrier.Carrier` over SMPP 3.4 for one route.

    ``bind="pair"`` in the route's connection runs a transmitter session for
    submits and a receiver session for receipts; otherwise one transceiver.
    The concatenation reference is a per-carrier counter starting at a random
    value, so two messages in flight to one handset never share one.
    """

    def __init__(
        self,
        config: RouteConfig,
        *,
        clock: Clock,
        reconnect: tuple[float, float] = (0.1, 5.0),
        session_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        connection = config.connection
        self._clock = clock
        self._wire = WireSettings(
            dlt_tlvs=connection.dlt_tlvs, tlv_nul_terminated=connection.tlv_nul_terminated
        )
        self._id_mode = IdMode(connection.id_mode)
        self._reconnect = reconnect
        self._options = dict(session_options or {})
        self._lock = threading.Lock()
        self._reference = random.randrange(256)  # noqa: S311 - a UDH reference, not a secret
        self._sink: ReceiptSink | None = None
        self._sessions: list[SmppSession] = []
        self._submitter: SmppSession | None = None
        self._stopped = False
        #: Receipts that could not be parsed (answered, since redelivery cannot help).
        self.unparseable_receipts = 0

    @property
    def name(self) -> str:
        """The route name."""
        return self.config.name

    def start(self, sink: ReceiptSink) -> None:
        """Start the session(s); binding happens in the background with backoff."""
        if self._sessions:
            raise RuntimeError(f"carrier {self.name!r} was already started")
        self._sink = sink
        connection = self.config.connection
        route = self.config.route
        binds: tuple[Any, ...] = (
            ("transmitter", "receiver") if connection.bind == "pair" else ("transceiver",)
        )
        for bind in binds:
            bucket = None
            if route.tps is not None and bind != "receiver":
                burst = max(1.0, min(route.tps, float(route.window)))
                bucket = TokenBucket.full(route.tps, burst, time.monotonic())
            handler = _ReceiptHandler(self)
            session = SmppSession(
                connection.host,
                connection.port,
                connection.system_id,
                connection.password,
                system_type=connection.system_type,
                window=route.window,
                tps=bucket,
                response_timeout=connection.response_timeout,
                enquire_interval=connection.enquire_interval,
                reconnect=self._reconnect,
                on_receipt=handler,
                name=f"{self.name}-{bind}" if bind != "transceiver" else self.name,
                bind=bind,
                **self._options,
            )
            handler.session = session
            self._sessions.append(session)
            if bind != "receiver":
                self._submitter = session
        for session in self._sessions:
            session.start()

    @property
    def ready(self) -> bool:
        """True while the submitting session is bound."""
        return self._submitter is not None and self._submitter.state == "bound"

    def submit(self, message: Message, *, now: datetime) -> Sequence[Future[PartOutcome]]:
        """Queue the pending parts; ``InvalidArgument`` if they cannot go on this wire."""
        session = self._submitter
        if session is None or self._stopped:
            raise CarrierUnavailable(f"route {self.name!r} is not started or is stopping")
        with self._lock:
            self._reference = (self._reference + 1) % 256
            reference = self._reference
        pdus = build_submissions(
            message,
            self._wire,
            reference=reference,
            now=now,
            chain_hash=self.config.connection.dlt_chain,
        )
        try:
            inner = session.submit_many(pdus)
        except RuntimeError as e:
            raise CarrierUnavailable(f"route {self.name!r} is stopping") from e
        outer: list[Future[PartOutcome]] = []
        for pdu, future in zip(pdus, inner, strict=True):
            result: Future[PartOutcome] = Future()
            future.add_done_callback(self._resolver(pdu.part_index, result))
            outer.append(result)
        return outer

    def _resolver(
        self, index: int, result: Future[PartOutcome]
    ) -> Callable[[Future[SubmitOutcome]], None]:
        overrides = self.config.connection.status_overrides
        mode = self._id_mode

        def resolve(done: Future[SubmitOutcome]) -> None:
            if done.cancelled():
                result.set_result(PartOutcome(index=index, status_class=StatusClass.TRANSIENT))
                return
            error = done.exception()
            if error is not None:
                # The PDU could not be encoded: this message will never go as it is.
                # The type only: the exception text may quote the short_message.
                _log.warning(
                    "route %s: submit could not be encoded: %s", self.name, type(error).__name__
                )
                result.set_result(PartOutcome(index=index, status_class=StatusClass.PERMANENT))
                return
            outcome = done.result()
            if outcome.unknown:
                result.set_result(PartOutcome(index=index, unknown=True))
            elif outcome.status == ESME_ROK and outcome.message_id:
                carrier_id = normalise_message_id(outcome.message_id, mode=mode)
                result.set_result(PartOutcome(index=index, carrier_message_id=carrier_id))
            else:
                status = outcome.status if outcome.status != ESME_ROK else 0x08
                result.set_result(
                    PartOutcome(
                        index=index,
                        command_status=status,
                        status_class=classify_status(status, overrides=overrides),
                    )
                )

        return resolve

    def _on_receipt(self, session: SmppSession, pdu: ReceiptPdu) -> int | None:
        sink = self._sink
        if sink is None:
            return ESME_RX_T_APPN
        try:
            receipt = parse_receipt(pdu.short_message, tlvs=receipt_tlvs(pdu))
        except ReceiptParseError as e:
            self.unparseable_receipts += 1
            _log.warning("route %s: unparseable receipt answered and dropped: %s", self.name, e)
            return ESME_ROK
        _route, canonical, _outcome = dedup_key(self.name, receipt, self._id_mode)
        item = CarrierReceipt(
            route=self.name,
            carrier_message_id=canonical,
            receipt=receipt,
            received_at=self._clock.now(),
        )

        def done(stored: bool) -> None:
            session.answer(pdu, ESME_ROK if stored else ESME_RX_T_APPN)

        sink(item, done)
        return None  # answered by done()

    def health(self) -> CarrierHealth:
        """The submitting session's state and counters (receiver errors included)."""
        session = self._submitter
        state: CarrierState
        if session is None:
            state = "stopped" if self._stopped else "connecting"
            return CarrierHealth(self.name, state, 0, 0, 0, None)
        errors = [s.last_error for s in self._sessions if s.last_error]
        states = {s.state for s in self._sessions}
        if "stopped" in states:
            state = "stopped"
        elif states == {"bound"}:
            state = "ready"
        else:
            state = "connecting"
        return CarrierHealth(
            route=self.name,
            state=state,
            in_flight=session.in_flight,
            queued=session.queued,
            binds=session.binds,
            last_error=errors[-1] if errors else None,
        )

    def stop(self, drain_timeout: float) -> None:
        """Drain, unbind and close every session (idempotent)."""
        self._stopped = True
        for session in self._sessions:
            session.stop(drain_timeout)
