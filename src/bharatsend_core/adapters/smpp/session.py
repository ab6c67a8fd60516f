"""One SMPP 3.4 transceiver bind with a window, timeouts, receipts and reconnect.

smpplib has no window, no response timeout, no reconnect and no locking
(SMPP.md §0.3, §3), so :class:`SmppSession` gives one thread sole ownership of
the smpplib ``Client`` and its socket. That thread connects (``TCP_NODELAY``),
binds transceiver (``interface_version`` 0x34, ``allow_unknown_opt_params``),
then loops: write queued submits while fewer than ``window`` are unanswered
(and the optional :class:`~bharatsend_core.domain.routing.TokenBucket` grants),
read what arrived, send ``enquire_link`` every ``enquire_interval`` seconds and
drop the link when its response is ``response_timeout`` late.

Reading: smpplib's ``read_pdu`` can raise in the middle of a frame on a socket
timeout (losing the stream's framing), raises ``KeyError`` on a standard TLV
it does not list for a PDU and ``UnknownCommandError`` on commands it does not
know (SMPP.md §0.1-2), and ``read_once`` never answers an SMSC ``unbind``.
So after the bind this session frames PDUs itself from a buffer and decodes
the few it acts on (``submit_sm_resp``, ``deliver_sm``, ``enquire_link``,
``unbind``, ``generic_nack``) with a small codec that keeps every TLV, vendor
tags included. Nothing a peer sends can end the reader: an unknown request
gets ``generic_nack``, a ``deliver_sm`` is always answered. smpplib still
connects, binds and writes the other requests; ``submit_sm`` is encoded by
:func:`~bharatsend_core.adapters.smpp.submission.encode_submission` (smpplib's
encoder was a sixth of a worker's time per message) and written here.

In-flight submits are keyed by ``sequence_number``. A submit written but not
answered when the link drops, or answered later than ``response_timeout``,
resolves with ``unknown=True``: the SMSC may have accepted it (the
at-least-once gap, SMPP.md §1.7); whether to resend is the caller's policy.
Submits not yet written stay queued across a reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import InvalidStateError
from typing import Any, Literal, TypeAlias

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
from attrs import field, frozen

from bharatsend_core.adapters.smpp.pdu import (
    DELIVER_SM,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RINVCMDID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    ESME_RX_P_APPN,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    HEADER,
    MAX_COMMAND_LENGTH,
    RESP,
    SUBMIT_SM_RESP,
    TAG_MESSAGE_STATE,
    TAG_NETWORK_ERROR_CODE,
    TAG_RECEIPTED_MESSAGE_ID,
    UNBIND,
    UNBIND_RESP,
    Reader,
    Truncated,
    encode_pdu,
    frozen_tlvs,
)
from bharatsend_core.adapters.smpp.submission import SubmitPdu, encode_submission
from bharatsend_core.domain.routing import StatusClass, TokenBucket, classify_status
from bharatsend_core.ports.futures import Future

__all__ = [
    "ReceiptPdu",
    "SessionState",
    "SmppSession",
    "SubmitFuture",
    "SubmitOutcome",
]

_log = logging.getLogger(__name__)

_RECEIPT_MASK = 0x3C
_RECEIPT_TYPE = 0x04
#: Longest the I/O thread sleeps in select() before looking at its queue again.
_POLL_SECONDS = 0.01
_RECV_BYTES = 65536
#: Pause after a throttle on a session without a rate cap (doubling while they repeat).
_MIN_PAUSE = 0.05
_MAX_PAUSE = 1.0

SessionState: TypeAlias = Literal["connecting", "bound", "stopped"]
#: What the session binds as: both directions, submits only, or receipts only.
SessionBind: TypeAlias = Literal["transceiver", "transmitter", "receiver"]


@frozen
class ReceiptPdu:
    """A delivery receipt (``deliver_sm`` with ``esm_class & 0x3C == 0x04``) as received.

    ``short_message`` is the raw receipt text (SMPP 3.4 Appendix B, not
    parsed here); ``tlvs`` maps every TLV tag, vendor tags included, to its
    raw octets. The properties decode the three standard receipt TLVs.
    """

    sequence_number: int
    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes = field(repr=False)
    tlvs: Mapping[int, bytes] = field(converter=frozen_tlvs)
    #: Which bind (1, 2, ...) it arrived on: a deferred answer goes back on
    #: that bind only; after a reconnect the SMSC redelivers instead.
    link: int = 0

    @property
    def receipted_message_id(self) -> str | None:
        """The ``receipted_message_id`` TLV (0x001E) without its NUL, or None."""
        raw = self.tlvs.get(TAG_RECEIPTED_MESSAGE_ID)
        return None if raw is None else raw.rstrip(b"\x00").decode("latin-1")

    @property
    def message_state(self) -> int | None:
        """The ``message_state`` TLV (0x0427), e.g. 2 = DELIVERED, or None."""
        raw = self.tlvs.get(TAG_MESSAGE_STATE)
        return raw[0] if raw else None

    @property
    def network_error_code(self) -> bytes | None:
        """The ``network_error_code`` TLV (0x0423): network type octet + 2-octet code, or None."""
        return self.tlvs.get(TAG_NETWORK_ERROR_CODE)


@frozen
class SubmitOutcome:
    """How one ``submit_sm`` ended.

    ``status`` is the ``command_status`` of its ``submit_sm_resp`` (or of a
    ``generic_nack`` for it); ``status_class`` is None on success. With
    ``unknown=True`` no response came (link dropped or ``response_timeout``
    passed after the PDU was written): the SMSC may or may not have it, and
    ``status`` is -1.
    """

    status: int
    message_id: str | None
    status_class: StatusClass | None
    unknown: bool

    @property
    def ok(self) -> bool:
        """True when the SMSC accepted the submit (ESME_ROK)."""
        return not self.unknown and self.status == ESME_ROK


#: Resolves to a :class:`SubmitOutcome`; cancelled when the session stops before writing it.
SubmitFuture: TypeAlias = Future[SubmitOutcome]

_UNKNOWN = SubmitOutcome(status=-1, message_id=None, status_class=None, unknown=True)


def _parse_deliver_sm(sequence: int, body: bytes, link: int = 0) -> ReceiptPdu:
    """A ``deliver_sm`` body (SMPP 3.4 §4.6.1); raises :class:`Truncated`."""
    r = Reader(body)
    r.cstring()  # service_type
    r.octets(2)  # source_addr_ton, source_addr_npi
    source = r.cstring()
    r.octets(2)  # dest_addr_ton, dest_addr_npi
    destination = r.cstring()
    esm_class = r.octet()
    r.octets(2)  # protocol_id, priority_flag
    r.cstring()  # schedule_delivery_time
    r.cstring()  # validity_period
    r.octets(2)  # registered_delivery, replace_if_present_flag
    data_coding = r.octet()
    r.octet()  # sm_default_msg_id
    short_message = r.octets(r.octet())
    return ReceiptPdu(
        sequence_number=sequence,
        source_addr=source.decode("latin-1"),
        destination_addr=destination.decode("latin-1"),
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        tlvs=r.tlvs(),
        link=link,
    )


def _default_jitter(delay: float) -> float:
    """ "Equal jitter": a uniform draw from half the delay to the full delay."""
    return random.uniform(delay / 2, delay)  # noqa: S311 - backoff jitter, not security


class _LinkDown(Exception):
    """The TCP link is gone or unusable; reconnect."""


class _Request:
    __slots__ = ("future", "pdu")

    def __init__(self, pdu: SubmitPdu, future: Future[SubmitOutcome]) -> None:
        self.pdu = pdu
        self.future = future


class SmppSession:
    """One transceiver bind to one SMSC, driven by its own I/O thread.

    ``submit`` is thread-safe and returns at once; everything else happens on
    the I/O thread, including ``on_receipt`` calls and future callbacks, so
    both must be quick and must not call :meth:`stop`. ``on_receipt`` returns
    the ``deliver_sm_resp`` status: 0 when the receipt is stored,
    :data:`ESME_RX_T_APPN` (0x64) to have the SMSC redeliver it; if it raises,
    0x64 is sent. It may instead return ``None`` and answer later with
    :meth:`answer` (from any thread) once the receipt is durably stored, so a
    slow database never stalls the socket. A ``deliver_sm`` that is not a
    receipt (mobile-originated text) is refused with :data:`ESME_RX_P_APPN` (0x65).

    ``bind`` picks transceiver (default), transmitter (submits only) or
    receiver (receipts only; :meth:`submit` refuses); a route configured as a
    "pair" runs one transmitter and one receiver session.

    ``tps`` caps writes; on ESME_RTHROTTLED / ESME_RMSGQFUL it runs at
    ``slow_factor`` of its nominal rate for ``slow_for`` seconds. After a drop
    (or a failed connect or bind) the session reconnects after
    ``jitter(min(reconnect_max, reconnect_min * 2**n))`` seconds, ``n``
    counting failures since the last successful bind.
    """

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        window: int = 10,
        tps: TokenBucket | None = None,
        response_timeout: float = 5.0,
        enquire_interval: float = 30.0,
        reconnect: tuple[float, float] = (0.1, 5.0),
        jitter: Callable[[float], float] = _default_jitter,
        on_receipt: Callable[[ReceiptPdu], int | None],
        name: str = "route",
        bind: SessionBind = "transceiver",
        system_type: str = "",
        slow_factor: float = 0.5,
        slow_for: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int of at least 1, got {window!r}")
        if response_timeout <= 0 or enquire_interval <= 0:
            raise ValueError("response_timeout and enquire_interval must be above 0")
        low, high = reconnect
        if not 0 < low <= high:
            raise ValueError(f"reconnect must be (min, max) with 0 < min <= max, got {reconnect!r}")
        if not 0 < slow_factor <= 1:
            raise ValueError(f"slow_factor must be in (0, 1], got {slow_factor!r}")
        if bind not in ("transceiver", "transmitter", "receiver"):
            raise ValueError(f"bind must be transceiver, transmitter or receiver, got {bind!r}")
        self.bind = bind
        self.host = host
        self.port = port
        self.system_id = system_id
        self._password = password
        self.window = window
        self.response_timeout = response_timeout
        self.enquire_interval = enquire_interval
        self.reconnect = (float(low), float(high))
        self.name = name
        self.system_type = system_type
        self.slow_factor = slow_factor
        self.slow_for = slow_for
        self._jitter = jitter
        self._on_receipt = on_receipt
        self._clock = clock

        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        #: Deferred deliver_sm_resp: (link, sequence, status), written by the I/O thread.
        self._answers: deque[tuple[int, int, int]] = deque()
        # A byte here ends the I/O thread's select() at once: a submit or an
        # answer queued while it waits goes out now, not at the next poll.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # True from a wake-up's write until the I/O thread takes it: the
        # submits queued meanwhile ride on that one, so a batch of 500
        # submits costs one write (and one hand-over of the interpreter lock
        # to the I/O thread), not 500.
        self._wake_pending = False
        self._bucket = tps
        self._slowed_until: float | None = None
        self._pause = 0.0
        self._paused_until = 0.0
        self._state: SessionState = "connecting"
        self._started = False
        self._stop_requested = threading.Event()
        self._drain_timeout = 0.0
        self._thread: threading.Thread | None = None

        # Owned by the I/O thread.
        self._client: Any = None
        self._buffer = bytearray()
        self._in_flight: dict[int, tuple[_Request, float]] = {}
        self._enquire_seq: int | None = None
        self._enquire_deadline = 0.0
        self._next_enquire = 0.0
        self._failures = 0
        self._unbound = False

        #: Connect-and-bind attempts so far (successful or not).
        self.connect_attempts = 0
        #: Successful binds so far (1 + reconnects).
        self.binds = 0
        #: Most submits ever unanswered at once (never above ``window``).
        self.max_in_flight = 0
        #: Why the last connect, bind or link failed, for logs and health checks.
        self.last_error: str | None = None

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> SessionState:
        """``"connecting"`` (incl. backing off), ``"bound"`` or ``"stopped"``."""
        return self._state

    @property
    def in_flight(self) -> int:
        """Submits written and not yet answered."""
        return len(self._in_flight)

    @property
    def queued(self) -> int:
        """Submits waiting to be written."""
        with self._lock:
            return len(self._queue)

    @property
    def bucket(self) -> TokenBucket | None:
        """The current rate limiter (slowed after a throttle), or None for no cap."""
        return self._bucket

    def start(self) -> SmppSession:
        """Start the I/O thread (connect, bind, serve); returns at once."""
        with self._lock:
            if self._started:
                raise RuntimeError("the session was already started")
            self._started = True
            self._thread = threading.Thread(target=self._run, name=f"smpp-{self.name}", daemon=True)
        self._thread.start()
        return self

    def submit(self, pdu: SubmitPdu) -> SubmitFuture:
        """Queue one ``submit_sm``; the future resolves to its :class:`SubmitOutcome`.

        Thread-safe. Raises RuntimeError once :meth:`stop` was called. A future
        whose PDU smpplib cannot encode fails with that exception; one still
        unwritten when the session stops is cancelled (it was never sent).
        """
        if self.bind == "receiver":
            raise RuntimeError(f"session {self.name!r} is bound as a receiver; it cannot submit")
        future: SubmitFuture = Future()
        with self._lock:
            if self._stop_requested.is_set():
                raise RuntimeError(f"session {self.name!r} is stopping")
            self._queue.append(_Request(pdu, future))
        self._wake()
        return future

    def submit_many(self, pdus: Sequence[SubmitPdu]) -> list[SubmitFuture]:
        """:meth:`submit` for several PDUs under one lock and one wake-up."""
        if self.bind == "receiver":
            raise RuntimeError(f"session {self.name!r} is bound as a receiver; it cannot submit")
        futures: list[SubmitFuture] = [Future() for _ in pdus]
        with self._lock:
            if self._stop_requested.is_set():
                raise RuntimeError(f"session {self.name!r} is stopping")
            self._queue.extend(_Request(p, f) for p, f in zip(pdus, futures, strict=True))
        self._wake()
        return futures

    def answer(self, receipt: ReceiptPdu, status: int) -> None:
        """Send the ``deliver_sm_resp`` for a receipt ``on_receipt`` deferred (thread-safe).

        Dropped when the bind it came on is gone: the SMSC redelivers an
        unanswered receipt, and the inbox deduplicates it.
        """
        self._answers.append((receipt.link, receipt.sequence_number, status))
        self._wake()

    def _wake(self) -> None:
        if self._wake_pending:
            return  # the I/O thread has not taken the last one yet: it will see the queue
        self._wake_pending = True
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"\0")

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop: keep writing queued submits and reading responses for up to ``drain_timeout``.

        Then unbind (waiting up to ``response_timeout`` for ``unbind_resp``) and
        close. Submits still unanswered resolve as unknown, unwritten ones are
        cancelled. Blocks until the I/O thread has ended; idempotent.
        """
        with self._lock:
            if not self._stop_requested.is_set():
                self._drain_timeout = max(0.0, drain_timeout)
                self._stop_requested.set()
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join()
        else:
            self._cancel_queued()
        self._state = "stopped"
        for sock in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ I/O thread

    def _run(self) -> None:
        try:
            while not self._stop_requested.is_set():
                self._state = "connecting"
                if self._connect():
                    self._failures = 0
                    self._state = "bound"
                    try:
                        self._serve()
                    except _LinkDown as e:
                        self.last_error = str(e) or "link down"
                        _log.warning("smpp %s: link down: %s", self.name, self.last_error)
                    finally:
                        self._close()
                    if self._stop_requested.is_set():
                        break
                    self._state = "connecting"
                self._backoff()
        except Exception:  # pragma: no cover - a bug here must not leave futures hanging
            _log.exception("smpp %s: I/O thread failed", self.name)
        finally:
            self._close()
            self._resolve_in_flight_unknown()
            self._cancel_queued()
            self._state = "stopped"

    def _backoff(self) -> None:
        low, high = self.reconnect
        delay = self._jitter(min(high, low * 2.0**self._failures))
        self._failures = min(self._failures + 1, 62)
        self._stop_requested.wait(max(0.0, delay))

    def _connect(self) -> bool:
        self.connect_attempts += 1
        client = smpplib.client.Client(
            self.host,
            self.port,
            timeout=self.response_timeout,
            allow_unknown_opt_params=True,
            logger_name=f"smpp.{self.name}",
        )
        self._client = client
        self._buffer = bytearray()
        try:
            client.connect()
            client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            binder = {
                "transceiver": client.bind_transceiver,
                "transmitter": client.bind_transmitter,
                "receiver": client.bind_receiver,
            }[self.bind]
            binder(
                system_id=self.system_id,
                password=self._password,
                system_type=self.system_type,
                interface_version=0x34,
            )
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as e:
            self.last_error = f"connect/bind failed: {e!r}"
            _log.warning("smpp %s: %s", self.name, self.last_error)
            self._close()
            return False
        except Exception as e:  # a malformed bind response: smpplib parse errors
            self.last_error = f"bind failed: {e!r}"
            _log.warning("smpp %s: %s", self.name, self.last_error)
            self._close()
            return False
        self.binds += 1
        now = self._clock()
        self._enquire_seq = None
        self._next_enquire = now + self.enquire_interval
        return True

    def _close(self) -> None:
        client = self._client
        self._client = None
        if client is not None:
            sock = client._socket
            client._socket = None
            client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._resolve_in_flight_unknown()

    def _serve(self) -> None:
        """The bound loop; returns after a clean unbind on stop, raises _LinkDown on a drop."""
        drain_deadline: float | None = None
        while True:
            now = self._clock()
            if self._stop_requested.is_set():
                if drain_deadline is None:
                    drain_deadline = now + self._drain_timeout
                with self._lock:
                    drained = not self._queue
                if (drained and not self._in_flight) or now >= drain_deadline:
                    self._unbind()
                    return
            self._expire(now)
            self._keepalive(now)
            self._write_answers()
            wait = self._write_submits(now)
            self._read(min(wait, _POLL_SECONDS))

    def _write_answers(self) -> None:
        while self._answers:
            link, sequence, status = self._answers.popleft()
            if link == self.binds:
                self._write(encode_pdu(DELIVER_SM | RESP, status, sequence, b"\x00"))

    def _write_submits(self, now: float) -> float:
        """Write what the window and the bucket allow; how long until more may go.

        The PDUs one call may write go out in one ``send``: responses arrive
        several to a read under load, and a window of 10 refills by as many.
        """
        self._restore_bucket(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._pause and now >= self._paused_until + self.slow_for:
            self._pause = 0.0  # no throttle for a while: back to full speed
        batch: list[tuple[int, _Request, bytes]] = []
        wait = _POLL_SECONDS
        while len(self._in_flight) + len(batch) < self.window:
            with self._lock:
                if not self._queue:
                    break
                request = self._queue[0]
            if self._bucket is not None:
                granted, self._bucket = self._bucket.take(now)
                if not granted:
                    wait = max(0.001, self._bucket.wait_time(now))
                    break
            with self._lock:
                self._queue.popleft()
            if request.future.cancelled():
                continue  # the caller cancelled it before it was written
            sequence = int(self._client.next_sequence())
            try:
                raw = encode_submission(request.pdu, sequence)
            except Exception as e:  # it cannot go on the wire (InvalidArgument): the caller's
                request.future.set_exception(e)
                continue
            batch.append((sequence, request, raw))
        if batch:
            self._send_submits(batch, now)
        return wait

    def _send_submits(self, batch: list[tuple[int, _Request, bytes]], now: float) -> None:
        """Write ``batch`` in one ``send`` where the socket takes it; put it in flight.

        When the write fails, the PDUs that left whole are in flight (the
        reconnect resolves them as unknown outcomes: the SMSC may have them),
        and the rest, the one cut short included, go back to the head of the
        queue: part of a PDU is nothing the SMSC can act on, so writing it
        again after the reconnect cannot send it twice.
        """
        data = batch[0][2] if len(batch) == 1 else b"".join(raw for _s, _r, raw in batch)
        sent = 0
        failure: OSError | None = None
        try:
            sock = self._client._socket
            view = memoryview(data)
            while sent < len(data):
                sent += sock.send(view[sent:])
        except OSError as e:
            failure = e
        deadline = now + self.response_timeout
        end = 0
        unsent: list[_Request] = []
        for sequence, request, raw in batch:
            end += len(raw)
            if end <= sent:
                self._in_flight[sequence] = (request, deadline)
            else:
                unsent.append(request)
        self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
        if failure is not None:
            with self._lock:
                self._queue.extendleft(reversed(unsent))
            raise _LinkDown("write failed") from failure

    def _restore_bucket(self, now: float) -> None:
        if self._slowed_until is not None and now >= self._slowed_until:
            self._slowed_until = None
            if self._bucket is not None:
                self._bucket = self._bucket.restored()

    def _slow_down(self) -> None:
        now = self._clock()
        if self._bucket is not None:
            self._bucket = self._bucket.slowed(self.slow_factor)
            self._slowed_until = now + self.slow_for
        else:
            # No rate to lower: pause writing briefly, longer while throttles repeat.
            self._pause = min(max(self._pause * 2, _MIN_PAUSE), _MAX_PAUSE)
            self._paused_until = now + self._pause

    def _expire(self, now: float) -> None:
        late = [seq for seq, (_req, deadline) in self._in_flight.items() if deadline <= now]
        for seq in late:
            request, _deadline = self._in_flight.pop(seq)
            _log.warning("smpp %s: no submit_sm_resp for sequence %d", self.name, seq)
            self._resolve(request, _UNKNOWN)

    def _keepalive(self, now: float) -> None:
        if self._enquire_seq is not None:
            if now >= self._enquire_deadline:
                raise _LinkDown("enquire_link_resp did not arrive in time")
            return
        if now >= self._next_enquire:
            pdu: Any = smpplib.smpp.make_pdu("enquire_link", client=self._client)
            self._send_request(pdu)
            self._enquire_seq = int(pdu.sequence)
            self._enquire_deadline = now + self.response_timeout
            self._next_enquire = now + self.enquire_interval

    def _unbind(self) -> None:
        """Send ``unbind`` and wait up to ``response_timeout`` for ``unbind_resp``."""
        try:
            pdu: Any = smpplib.smpp.make_pdu("unbind", client=self._client)
            self._send_request(pdu)
        except _LinkDown:
            return
        deadline = self._clock() + self.response_timeout
        self._unbound = False
        while not self._unbound and self._clock() < deadline:
            try:
                self._read(_POLL_SECONDS)
            except _LinkDown:
                return  # the SMSC closed the link after answering, or without: either way done

    # ------------------------------------------------------------------ wire

    def _send_request(self, pdu: Any) -> None:
        try:
            self._client.send_pdu(pdu)
        except smpplib.exceptions.ConnectionError as e:
            raise _LinkDown("write failed") from e

    def _write(self, raw: bytes) -> None:
        try:
            self._client._socket.sendall(raw)
        except OSError as e:
            raise _LinkDown("write failed") from e

    def _read(self, timeout: float) -> None:
        sock = self._client._socket
        try:
            readable, _w, _x = select.select([sock, self._wake_r], [], [], timeout)
            if self._wake_r in readable:
                # Drained, then cleared: a submit queued before the clear is
                # seen by the caller's next look at the queue, one queued
                # after it writes a new byte. Cleared first, the drain could
                # swallow that byte and leave the flag up with the pipe
                # empty: every later submit would then wait for the poll.
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                self._wake_pending = False
            if sock not in readable:
                return
            chunk = sock.recv(_RECV_BYTES)
        except (OSError, ValueError) as e:
            raise _LinkDown(f"read failed: {e!r}") from e
        if not chunk:
            raise _LinkDown("the SMSC closed the connection")
        self._buffer += chunk
        while len(self._buffer) >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(self._buffer)
            if not 16 <= length <= MAX_COMMAND_LENGTH:
                # The stream cannot be re-framed (SMPP 3.4 §4.3): drop and reconnect.
                raise _LinkDown(f"bad command_length {length}")
            if len(self._buffer) < length:
                return
            body = bytes(self._buffer[16:length])
            del self._buffer[:length]
            self._dispatch(command_id, status, sequence, body)

    def _dispatch(self, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id == SUBMIT_SM_RESP:
            self._on_submit_resp(status, sequence, body)
        elif command_id == DELIVER_SM:
            self._on_deliver_sm(sequence, body)
        elif command_id == ENQUIRE_LINK:
            self._write(encode_pdu(ENQUIRE_LINK_RESP, ESME_ROK, sequence))
        elif command_id == ENQUIRE_LINK_RESP:
            if sequence == self._enquire_seq:
                self._enquire_seq = None
        elif command_id == UNBIND:
            # SMPP 3.4 §4.2: answer, then the link is over (smpplib would not answer).
            self._write(encode_pdu(UNBIND_RESP, ESME_ROK, sequence))
            raise _LinkDown("the SMSC unbound")
        elif command_id == UNBIND_RESP:
            self._unbound = True
        elif command_id == GENERIC_NACK:
            self._on_generic_nack(status, sequence)
        elif not command_id & RESP:
            # data_sm, query_sm, anything else: we do not implement it (SMPP 3.4 §4.3).
            self._write(encode_pdu(GENERIC_NACK, ESME_RINVCMDID, sequence))
        else:
            _log.info("smpp %s: ignoring response 0x%08x", self.name, command_id)

    def _on_submit_resp(self, status: int, sequence: int, body: bytes) -> None:
        entry = self._in_flight.pop(sequence, None)
        if entry is None:
            _log.warning("smpp %s: submit_sm_resp for unknown sequence %d", self.name, sequence)
            return
        request, _deadline = entry
        message_id: str | None = None
        end = body.find(b"\x00")
        raw_id = body[:end] if end >= 0 else body
        if raw_id:
            message_id = raw_id.decode("latin-1")
        status_class: StatusClass | None = None
        if status != ESME_ROK:
            status_class = classify_status(status)
            if status in (ESME_RTHROTTLED, ESME_RMSGQFUL):
                self._slow_down()
            message_id = None
        self._resolve(
            request,
            SubmitOutcome(
                status=status, message_id=message_id, status_class=status_class, unknown=False
            ),
        )

    def _on_generic_nack(self, status: int, sequence: int) -> None:
        if sequence == self._enquire_seq:
            self._enquire_seq = None  # the SMSC answered, so the link is alive
            return
        entry = self._in_flight.pop(sequence, None)
        if entry is None:
            _log.warning("smpp %s: generic_nack 0x%x for sequence %d", self.name, status, sequence)
            return
        code = status if status != ESME_ROK else ESME_RINVCMDID
        self._resolve(
            entry[0],
            SubmitOutcome(
                status=code, message_id=None, status_class=classify_status(code), unknown=False
            ),
        )

    def _on_deliver_sm(self, sequence: int, body: bytes) -> None:
        answer = ESME_RX_T_APPN
        try:
            receipt = _parse_deliver_sm(sequence, body, self.binds)
        except (Truncated, struct.error):
            _log.warning("smpp %s: malformed deliver_sm %d", self.name, sequence)
            receipt = None
        if receipt is not None and receipt.esm_class & _RECEIPT_MASK != _RECEIPT_TYPE:
            answer = ESME_RX_P_APPN
        elif receipt is not None:
            try:
                result = self._on_receipt(receipt)
                if result is None:
                    return  # answered later through answer()
                valid = isinstance(result, int) and not isinstance(result, bool)
                answer = result if valid and 0 <= result <= 0xFFFFFFFF else ESME_RX_T_APPN
            except Exception:
                _log.exception("smpp %s: on_receipt failed; asking for redelivery", self.name)
                answer = ESME_RX_T_APPN
        self._write(encode_pdu(DELIVER_SM | RESP, answer, sequence, b"\x00"))

    # ------------------------------------------------------------------ futures

    def _resolve(self, request: _Request, outcome: SubmitOutcome) -> None:
        if not request.future.done():
            with contextlib.suppress(InvalidStateError):  # cancelled by the caller just now
                request.future.set_result(outcome)

    def _resolve_in_flight_unknown(self) -> None:
        entries = list(self._in_flight.values())
        self._in_flight.clear()
        for request, _deadline in entries:
            self._resolve(request, _UNKNOWN)

    def _cancel_queued(self) -> None:
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
        for request in queued:
            request.future.cancel()
