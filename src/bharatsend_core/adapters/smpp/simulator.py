"""A local SMPP 3.4 SMSC for integration tests and the sandbox carrier.

:class:`SmscSimulator` listens on loopback, answers binds, ``enquire_link``,
``unbind`` and ``submit_sm``, records every accepted submit as a frozen
:class:`ReceivedSubmit`, and sends delivery receipts (``deliver_sm`` with
``esm_class`` 0x04, SMPP 3.4 Appendix B text plus the ``receipted_message_id``
and ``message_state`` TLVs) to a receiver or transceiver session of the same
``system_id``. :class:`Behaviour` switches on the awkward things real
aggregators do (hex ids, failed receipts, duplicates, a receipt before its
response, throttling, dropped links, refused TLVs).

The PDU codec is a few private functions over ``bytes`` (SMPP 3.4 §3.2:
16-octet big-endian header, C-octet strings, TLVs as tag/length/value), so
vendor TLVs such as 0x1400/0x1401 are kept rather than dropped.

Threads: one listener, one per session, one that sends receipts when they
fall due. :meth:`SmscSimulator.stop` closes every socket and joins them all.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Generic, Literal, TypeVar

from attrs import evolve, field, frozen, validators

from bharatsend_core.adapters.smpp.pdu import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVDSTADR,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMISSINGOPTPARAM,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSUBMITFAIL,
    ESME_RTHROTTLED,
    GENERIC_NACK,
    HEADER,
    MAX_COMMAND_LENGTH,
    RESP,
    SUBMIT_SM,
    TAG_MESSAGE_PAYLOAD,
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    UNBIND,
    Reader,
    Truncated,
    cstring,
    encode_pdu,
    encode_tlv,
    frozen_tlvs,
)
from bharatsend_core.domain.encoding import decode_gsm7, decode_ucs2, parse_udh_concat
from bharatsend_core.domain.errors import InvalidContent

__all__ = [
    "Behaviour",
    "ReceiptResponse",
    "ReceivedSubmit",
    "Recorded",
    "SentReceipt",
    "SmscSimulator",
]

_MAX_SEQUENCE = 0x7FFFFFFF
_POLL_SECONDS = 0.05

#: Final receipt ``stat`` -> ``message_state`` TLV value (SMPP 3.4 §5.2.28).
_FINAL_STATES: Mapping[str, int] = MappingProxyType(
    {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}
)

_BindMode = Literal["transmitter", "receiver", "transceiver"]
_BIND_MODES: Mapping[int, _BindMode] = MappingProxyType(
    {
        BIND_TRANSMITTER: "transmitter",
        BIND_RECEIVER: "receiver",
        BIND_TRANSCEIVER: "transceiver",
    }
)

T = TypeVar("T")


# --------------------------------------------------------------------------- values


def _optional_count(name: str) -> Callable[[object, object, int | None], None]:
    def check(_instance: object, _attribute: object, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 0):
            raise ValueError(f"{name} must be None or a non-negative int, got {value!r}")

    return check


def _check_error_code(_instance: object, _attribute: object, value: str) -> None:
    if not (value.isascii() and value.isalnum() and 1 <= len(value) <= 3):
        raise ValueError(f"error_code must be 1-3 letters or digits, e.g. '633'; got {value!r}")


@frozen
class Behaviour:
    """How the simulated SMSC misbehaves; every switch is off by default.

    Assign a new value to :attr:`SmscSimulator.behaviour` at any time; each
    PDU is handled under the behaviour current when it arrives.
    """

    #: Message ids in ``submit_sm_resp`` and receipts: ``"decimal"`` (10 digits) or ``"hex"``.
    id_format: Literal["decimal", "hex"] = field(
        default="decimal", validator=validators.in_(("decimal", "hex"))
    )
    #: The receipt ``stat``: ``DELIVRD``, or a failure ``UNDELIV``, ``EXPIRED``, ``REJECTD``.
    final_state: str = field(default="DELIVRD", validator=validators.in_(tuple(_FINAL_STATES)))
    #: The receipt ``err`` field, e.g. ``"633"`` for a DLT template mismatch.
    error_code: str = field(default="000", validator=_check_error_code)
    #: Send every receipt twice (different ``sequence_number``, same content).
    duplicate_receipts: bool = False
    #: Send the receipt before the ``submit_sm_resp`` (ignores ``receipt_delay``).
    receipt_first: bool = False
    #: More than this many submits per second (per system_id) get ESME_RTHROTTLED 0x58.
    throttle_tps: int | None = field(default=None, validator=_optional_count("throttle_tps"))
    #: More than this many submits per second (per system_id) get ESME_RMSGQFUL 0x14.
    window_limit: int | None = field(default=None, validator=_optional_count("window_limit"))
    #: A session answers this many submits, then closes the link on the next one
    #: without answering or recording it.
    drop_after: int | None = field(default=None, validator=_optional_count("drop_after"))
    #: Destinations starting with one of these get ESME_RINVDSTADR 0x0B.
    reject_prefixes: tuple[str, ...] = field(default=(), converter=tuple)
    #: TLV tags every submit must carry (e.g. DLT 0x1400, 0x1401).
    require_tlvs: tuple[int, ...] = field(default=(), converter=tuple)
    #: The status for a submit missing a required TLV (ESME_RMISSINGOPTPARAM by default).
    missing_tlv_status: int = ESME_RMISSINGOPTPARAM
    #: Never send receipts, whatever ``registered_delivery`` asks.
    no_receipts: bool = False

    @property
    def is_failure(self) -> bool:
        """True when receipts report a failure rather than DELIVRD."""
        return self.final_state != "DELIVRD"


@frozen
class ReceivedSubmit:
    """One accepted ``submit_sm`` (one part of a message) as the SMSC saw it.

    ``text`` is the decoded part (GSM-7 unpacked, UCS-2 as UTF-16BE, 1 ASCII,
    3 Latin-1; ``None`` for binary data codings), read after the UDH when
    ``esm_class`` has UDHI; ``concat`` is ``(reference, total, sequence)`` from
    that UDH. ``tlvs`` maps every TLV tag, vendor tags included, to its octets.
    """

    system_id: str
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes = field(repr=False)
    text: str | None = field(repr=False)
    concat: tuple[int, int, int] | None
    tlvs: Mapping[int, bytes] = field(converter=frozen_tlvs)
    message_id: str
    sequence_number: int
    received_at: datetime


@frozen
class SentReceipt:
    """A delivery receipt the simulator wrote to a session."""

    message_id: str
    system_id: str
    sequence_number: int
    short_message: str
    stat: str
    sent_at: datetime


@frozen
class ReceiptResponse:
    """The ESME's ``deliver_sm_resp`` to one receipt."""

    message_id: str
    sequence_number: int
    command_status: int


class Recorded(Generic[T]):
    """A thread-safe append-only list the simulator writes and tests read.

    With a ``limit`` only the newest ``limit`` items are kept (a long-running
    sandbox must not grow without bound); ``len`` still counts every item.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=limit)
        self._total = 0
        self._cond = threading.Condition()

    def append(self, item: T) -> None:
        """Add ``item`` and wake any :meth:`wait_for` caller."""
        with self._cond:
            self._items.append(item)
            self._total += 1
            self._cond.notify_all()

    def snapshot(self) -> tuple[T, ...]:
        """The items so far, as an immutable copy."""
        with self._cond:
            return tuple(self._items)

    def wait_for(self, count: int, timeout: float = 2.0) -> tuple[T, ...]:
        """Block until at least ``count`` items exist; raise TimeoutError after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._total >= count, timeout):
                raise TimeoutError(f"expected {count} items, have {self._total}")
            return tuple(self._items)

    def __len__(self) -> int:
        with self._cond:
            return self._total

    def __iter__(self) -> Iterator[T]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> T:
        with self._cond:
            return self._items[index]


# --------------------------------------------------------------------------- codec


@frozen
class _Submit:
    source_addr_ton: int
    source_addr_npi: int
    source_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes]


def _parse_submit(body: bytes) -> _Submit:
    """The ``submit_sm`` body, SMPP 3.4 §4.4.1; raises :class:`Truncated`."""
    r = Reader(body)
    r.cstring()  # service_type
    src_ton, src_npi = r.octet(), r.octet()
    src = r.cstring()
    dst_ton, dst_npi = r.octet(), r.octet()
    dst = r.cstring()
    esm_class = r.octet()
    r.octet()  # protocol_id
    r.octet()  # priority_flag
    r.cstring()  # schedule_delivery_time
    r.cstring()  # validity_period
    registered_delivery = r.octet()
    r.octet()  # replace_if_present_flag
    data_coding = r.octet()
    r.octet()  # sm_default_msg_id
    short_message = r.octets(r.octet())
    return _Submit(
        source_addr_ton=src_ton,
        source_addr_npi=src_npi,
        source_addr=src.decode("latin-1"),
        dest_addr_ton=dst_ton,
        dest_addr_npi=dst_npi,
        destination_addr=dst.decode("latin-1"),
        esm_class=esm_class,
        registered_delivery=registered_delivery,
        data_coding=data_coding,
        short_message=short_message,
        tlvs=r.tlvs(),
    )


def _decode_text(data_coding: int, payload: bytes) -> str | None:
    """The part's text for ``data_coding``; raises InvalidContent on bad octets."""
    if data_coding == 0:
        return decode_gsm7(payload)
    if data_coding == 8:
        return decode_ucs2(payload)
    if data_coding == 1:
        try:
            return payload.decode("ascii")
        except UnicodeDecodeError as e:
            raise InvalidContent("not ASCII", field="short_message") from e
    if data_coding == 3:
        return payload.decode("latin-1")
    return None


def _receipt_wanted(registered_delivery: int, failed: bool) -> bool:
    # SMPP 3.4 §5.2.17 bits 1-0: 01 always, 10 on failure; 11 on success (SMPP 5.0).
    mode = registered_delivery & 0x03
    return mode == 1 or (mode == 2 and failed) or (mode == 3 and not failed)


# --------------------------------------------------------------------------- server


@frozen
class _PendingReceipt:
    system_id: str
    message_id: str
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    submitted_at: datetime
    text: str
    stat: str
    error_code: str
    copies: int


class _Session:
    """One ESME connection; its thread reads PDUs, any thread may write."""

    def __init__(self, sim: SmscSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.system_id: str | None = None
        self.mode: _BindMode | None = None
        self.submits_seen = 0
        self.closed = threading.Event()
        self._write_lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._sequence = 0
        # deliver_sm sequence -> the receipt, until its deliver_sm_resp says 0.
        self._awaiting: dict[int, _PendingReceipt] = {}
        self.thread = threading.Thread(target=self._run, name="smsc-session", daemon=True)

    @property
    def can_receive(self) -> bool:
        return self.mode in ("receiver", "transceiver")

    def next_sequence(self) -> int:
        with self._seq_lock:
            self._sequence = self._sequence % _MAX_SEQUENCE + 1
            return self._sequence

    def send(self, data: bytes) -> bool:
        """Write one PDU; False when the link is gone."""
        with self._write_lock:
            if self.closed.is_set():
                return False
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                return False
            return True

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def send_receipt(self, pending: _PendingReceipt) -> bool:
        """Write one receipt ``deliver_sm`` (SMPP 3.4 §4.6.1, Appendix B)."""
        now = self.sim.clock()
        text = (
            f"id:{pending.message_id} sub:001 "
            f"dlvrd:{'001' if pending.stat == 'DELIVRD' else '000'} "
            f"submit date:{pending.submitted_at:%y%m%d%H%M} done date:{now:%y%m%d%H%M} "
            f"stat:{pending.stat} err:{pending.error_code} text:{pending.text[:20]}"
        )
        short_message = text.encode("ascii", "replace")[:254]
        sequence = self.next_sequence()
        body = (
            cstring("")  # service_type
            + bytes((pending.dest_addr_ton, pending.dest_addr_npi))
            + cstring(pending.destination_addr)
            + bytes((pending.source_addr_ton, pending.source_addr_npi))
            + cstring(pending.source_addr)
            + bytes((0x04, 0, 0))  # esm_class: SMSC delivery receipt; protocol_id; priority
            + cstring("")  # schedule_delivery_time
            + cstring("")  # validity_period
            + bytes((0, 0, 0, 0, len(short_message)))  # rd, replace, data_coding, default id
            + short_message
            + encode_tlv(TAG_RECEIPTED_MESSAGE_ID, cstring(pending.message_id))
            + encode_tlv(TAG_MESSAGE_STATE, bytes((_FINAL_STATES[pending.stat],)))
        )
        with self._seq_lock:
            self._awaiting[sequence] = evolve(pending, copies=1)
        if not self.send(encode_pdu(DELIVER_SM, ESME_ROK, sequence, body)):
            with self._seq_lock:
                self._awaiting.pop(sequence, None)  # the caller parks it instead
            return False
        self.sim.receipts.append(
            SentReceipt(
                message_id=pending.message_id,
                system_id=pending.system_id,
                sequence_number=sequence,
                short_message=short_message.decode("ascii"),
                stat=pending.stat,
                sent_at=now,
            )
        )
        return True

    # ------------------------------------------------------------------ reading

    def _recv_exact(self, n: int) -> bytes | None:
        chunks: list[bytes] = []
        remaining = n
        while remaining:
            if self.sim.stopping.is_set() or self.closed.is_set():
                return None
            try:
                chunk = self.sock.recv(remaining)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _run(self) -> None:
        try:
            self.sock.settimeout(_POLL_SECONDS)
            while True:
                header = self._recv_exact(16)
                if header is None:
                    return
                length, command_id, status, sequence = HEADER.unpack(header)
                if not 16 <= length <= MAX_COMMAND_LENGTH:
                    # SMPP 3.4 §4.3: generic_nack; the stream cannot be re-framed, so close.
                    self.send(encode_pdu(GENERIC_NACK, ESME_RINVCMDLEN, sequence))
                    return
                body = self._recv_exact(length - 16)
                if body is None:
                    return
                if not self._handle(command_id, status, sequence, body):
                    return
        finally:
            self.close()
            self.sim._forget(self)

    def _handle(self, command_id: int, status: int, sequence: int, body: bytes) -> bool:
        """Answer one PDU; False ends the session."""
        try:
            if command_id in _BIND_MODES:
                return self._bind(command_id, sequence, body)
            if command_id == ENQUIRE_LINK:
                return self.send(encode_pdu(ENQUIRE_LINK | RESP, ESME_ROK, sequence))
            if command_id == UNBIND:
                self.send(encode_pdu(UNBIND | RESP, ESME_ROK, sequence))
                return False
            if command_id == SUBMIT_SM:
                return self._submit(sequence, body)
            if command_id == DELIVER_SM | RESP:
                with self._seq_lock:
                    answered = self._awaiting.pop(sequence, None)
                self.sim.receipt_responses.append(
                    ReceiptResponse(
                        message_id=answered.message_id if answered else "",
                        sequence_number=sequence,
                        command_status=status,
                    )
                )
                if answered is not None and status != ESME_ROK:
                    # The ESME could not take it (e.g. 0x64): send it again later.
                    self.sim._schedule(answered, self.sim.redelivery_delay)
                return True
            if command_id & RESP:
                return True  # enquire_link_resp, generic_nack, ...: nothing to answer
            # An unknown command, or one this simulator does not implement (query_sm...).
            return self.send(encode_pdu(GENERIC_NACK, ESME_RINVCMDID, sequence))
        except Truncated:
            return self.send(encode_pdu(GENERIC_NACK, ESME_RINVCMDLEN, sequence))

    def _bind(self, command_id: int, sequence: int, body: bytes) -> bool:
        resp_id = command_id | RESP
        r = Reader(body)
        system_id = r.cstring().decode("latin-1")
        password = r.cstring().decode("latin-1")
        if self.mode is not None:
            return self.send(encode_pdu(resp_id, ESME_RALYBND, sequence))
        expected = self.sim.credentials.get(system_id)
        if expected is None:
            return self.send(encode_pdu(resp_id, ESME_RINVSYSID, sequence))
        if expected != password:
            return self.send(encode_pdu(resp_id, ESME_RINVPASWD, sequence))
        self.system_id = system_id
        self.mode = _BIND_MODES[command_id]
        ok = self.send(encode_pdu(resp_id, ESME_ROK, sequence, cstring(self.sim.system_id)))
        if ok and self.can_receive:
            self.sim._flush_parked(system_id)
        return ok

    def _submit(self, sequence: int, body: bytes) -> bool:
        resp_id = SUBMIT_SM | RESP
        if self.mode not in ("transmitter", "transceiver") or self.system_id is None:
            return self.send(encode_pdu(resp_id, ESME_RINVBNDSTS, sequence))
        submit = _parse_submit(body)
        behaviour = self.sim.behaviour
        self.submits_seen += 1
        if behaviour.drop_after is not None and self.submits_seen > behaviour.drop_after:
            return False
        status = self.sim._admit(self.system_id, behaviour)
        if status == ESME_ROK and submit.destination_addr.startswith(behaviour.reject_prefixes):
            status = ESME_RINVDSTADR
        if status == ESME_ROK and any(tag not in submit.tlvs for tag in behaviour.require_tlvs):
            status = behaviour.missing_tlv_status
        concat: tuple[int, int, int] | None = None
        text: str | None = None
        if status == ESME_ROK:
            raw = submit.short_message or submit.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
            payload = raw
            if submit.esm_class & 0x40:  # UDHI: the payload starts with a UDH
                parsed = parse_udh_concat(raw)
                if parsed is not None:
                    concat, payload = parsed[:3], parsed[3]
                elif raw and 1 + raw[0] <= len(raw):
                    payload = raw[1 + raw[0] :]
                else:
                    status = ESME_RSUBMITFAIL
            if status == ESME_ROK:
                try:
                    text = _decode_text(submit.data_coding, payload)
                except InvalidContent:
                    status = ESME_RSUBMITFAIL
        if status != ESME_ROK:
            return self.send(encode_pdu(resp_id, status, sequence))

        message_id = self.sim._next_message_id(behaviour)
        now = self.sim.clock()
        self.sim.submits.append(
            ReceivedSubmit(
                system_id=self.system_id,
                source_addr=submit.source_addr,
                source_addr_ton=submit.source_addr_ton,
                source_addr_npi=submit.source_addr_npi,
                destination_addr=submit.destination_addr,
                dest_addr_ton=submit.dest_addr_ton,
                dest_addr_npi=submit.dest_addr_npi,
                esm_class=submit.esm_class,
                data_coding=submit.data_coding,
                registered_delivery=submit.registered_delivery,
                short_message=submit.short_message,
                text=text,
                concat=concat,
                tlvs=submit.tlvs,
                message_id=message_id,
                sequence_number=sequence,
                received_at=now,
            )
        )
        pending: _PendingReceipt | None = None
        if not behaviour.no_receipts and _receipt_wanted(
            submit.registered_delivery, behaviour.is_failure
        ):
            pending = _PendingReceipt(
                system_id=self.system_id,
                message_id=message_id,
                source_addr=submit.source_addr,
                source_addr_ton=submit.source_addr_ton,
                source_addr_npi=submit.source_addr_npi,
                destination_addr=submit.destination_addr,
                dest_addr_ton=submit.dest_addr_ton,
                dest_addr_npi=submit.dest_addr_npi,
                submitted_at=now,
                text=text if text is not None else "",
                stat=behaviour.final_state,
                error_code=behaviour.error_code,
                copies=2 if behaviour.duplicate_receipts else 1,
            )
        if pending is not None and behaviour.receipt_first:
            self.sim._deliver(pending)
            pending = None
        ok = self.send(encode_pdu(resp_id, ESME_ROK, sequence, cstring(message_id)))
        if pending is not None:
            self.sim._schedule(pending)
        return ok


class SmscSimulator:
    """A loopback SMPP 3.4 SMSC: start it, point an ESME at ``.port``, read ``.submits``.

    ``credentials`` maps system_id to password. Receipts go out
    ``receipt_delay`` seconds after the submit to a receiver or transceiver
    session of the submitter's system_id; when none is bound they are parked
    and sent as soon as one binds. A receipt answered with an error status, or
    still unanswered when its session ends, is sent again after
    ``redelivery_delay`` seconds, as SMSCs do. ``clock`` stamps records and receipt dates.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: Mapping[str, str] | None = None,
        receipt_delay: float = 0.05,
        behaviour: Behaviour | None = None,
        system_id: str = "BSENDSIM",
        clock: Callable[[], datetime] | None = None,
        record_limit: int | None = None,
        redelivery_delay: float = 0.5,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the simulator binds only to loopback, not {host!r}")
        self.host = host
        self.port = port
        self.credentials: Mapping[str, str] = dict(
            credentials if credentials is not None else {"bsend": "secret"}
        )
        self.receipt_delay = receipt_delay
        #: Wait before resending a receipt answered with an error or left unanswered.
        self.redelivery_delay = redelivery_delay
        #: The current misbehaviour; replace it at runtime to change what happens next.
        self.behaviour: Behaviour = behaviour if behaviour is not None else Behaviour()
        self.system_id = system_id
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        #: Every accepted submit_sm, in arrival order.
        self.submits: Recorded[ReceivedSubmit] = Recorded(record_limit)
        #: Every receipt deliver_sm written to a session.
        self.receipts: Recorded[SentReceipt] = Recorded(record_limit)
        #: Every deliver_sm_resp received for a receipt.
        self.receipt_responses: Recorded[ReceiptResponse] = Recorded(record_limit)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sessions: list[_Session] = []
        self._arrivals: dict[str, deque[float]] = {}
        self._ids = itertools.count(1_000_000_001)
        self._parked: dict[str, list[_PendingReceipt]] = {}
        self._due: list[tuple[float, int, _PendingReceipt]] = []
        self._due_order = itertools.count()
        self._due_cond = threading.Condition(self._lock)
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SmscSimulator:
        """Bind the listening socket (``port`` 0 picks a free one) and start serving."""
        if self._listener is not None:
            raise RuntimeError("the simulator is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        listener.settimeout(_POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self.stopping.clear()
        self._threads = [
            threading.Thread(target=self._accept_loop, name="smsc-listener", daemon=True),
            threading.Thread(target=self._receipt_loop, name="smsc-receipts", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every session, and join all threads."""
        self.stopping.set()
        with self._due_cond:
            self._due_cond.notify_all()
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        for session in sessions:
            session.thread.join()
        self._listener = None
        self._threads = []

    def __enter__(self) -> SmscSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def session_count(self) -> int:
        """Sessions currently connected."""
        with self._lock:
            return len(self._sessions)

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self.stopping.is_set():
            try:
                sock, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            session = _Session(self, sock)
            with self._lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                self._sessions.append(session)
            session.thread.start()

    def _forget(self, session: _Session) -> None:
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
        with session._seq_lock:
            unanswered = list(session._awaiting.values())
            session._awaiting.clear()
        # Like a real SMSC, a receipt never acknowledged goes out again on the next bind.
        for pending in unanswered:
            self._schedule(pending, self.redelivery_delay)

    def _admit(self, system_id: str, behaviour: Behaviour) -> int:
        """Admit the submit under its system_id's per-second caps; the refusal status, if any."""
        now = time.monotonic()
        with self._lock:
            # Only admitted submits count: a cap limits what gets through, so an
            # ESME that backs off is served again within the second.
            arrivals = self._arrivals.setdefault(system_id, deque())
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            rate = len(arrivals) + 1
            if behaviour.throttle_tps is not None and rate > behaviour.throttle_tps:
                return ESME_RTHROTTLED
            if behaviour.window_limit is not None and rate > behaviour.window_limit:
                return ESME_RMSGQFUL
            arrivals.append(now)
        return ESME_ROK

    def _next_message_id(self, behaviour: Behaviour) -> str:
        with self._lock:
            n = next(self._ids)
        return format(n, "x") if behaviour.id_format == "hex" else str(n)

    def _receiver_for(self, system_id: str) -> _Session | None:
        with self._lock:
            for session in self._sessions:
                if (
                    session.system_id == system_id
                    and session.can_receive
                    and not session.closed.is_set()
                ):
                    return session
        return None

    def _deliver(self, pending: _PendingReceipt) -> None:
        """Send the receipt's copies now, or park it until a receiver binds."""
        for sent in range(pending.copies):
            session = self._receiver_for(pending.system_id)
            if session is None or not session.send_receipt(pending):
                left = evolve(pending, copies=pending.copies - sent)
                with self._lock:
                    self._parked.setdefault(pending.system_id, []).append(left)
                return

    def _flush_parked(self, system_id: str) -> None:
        with self._lock:
            parked = self._parked.pop(system_id, [])
        for pending in parked:
            self._deliver(pending)

    def _schedule(self, pending: _PendingReceipt, delay: float | None = None) -> None:
        with self._due_cond:
            due = time.monotonic() + (self.receipt_delay if delay is None else delay)
            heapq.heappush(self._due, (due, next(self._due_order), pending))
            self._due_cond.notify_all()

    def _receipt_loop(self) -> None:
        while True:
            with self._due_cond:
                while not self.stopping.is_set():
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        break
                    timeout = self._due[0][0] - now if self._due else None
                    self._due_cond.wait(timeout)
                if self.stopping.is_set():
                    return
                _due, _order, pending = heapq.heappop(self._due)
            self._deliver(pending)
