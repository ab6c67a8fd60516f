"""SmppSession over real TCP against the local SMSC simulator.

Each test runs a simulator and one session; futures and records are waited on
with timeouts, never with fixed sleeps (except the wrong-password test, which
watches the session retry for a fraction of a second).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from bharatsend_core.adapters.smpp import (
    Behaviour,
    ReceiptPdu,
    SmppSession,
    SmscSimulator,
    SubmitOutcome,
    SubmitPdu,
)
from bharatsend_core.adapters.smpp.submission import encode_submission
from bharatsend_core.domain.routing import StatusClass, TokenBucket

WAIT = 3.0


def pdu(destination: str = "919876543210", text: bytes = b"Your OTP is 482913") -> SubmitPdu:
    return SubmitPdu(
        part_index=0,
        fields={
            "source_addr_ton": 5,
            "source_addr_npi": 0,
            "source_addr": "ACMEOT",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": destination,
            "esm_class": 0,
            "data_coding": 0,
            "registered_delivery": 1,
            "short_message": text,
        },
        tlvs=((0x1400, b"1201159876543210987"), (0x1401, b"1207161234567890123")),
    )


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


class Receipts:
    """An on_receipt callback that stores receipts and answers with ``answer``."""

    def __init__(self, answer: int = 0, fail: bool = False) -> None:
        self.items: list[ReceiptPdu] = []
        self.answer = answer
        self.fail = fail

    def __call__(self, receipt: ReceiptPdu) -> int:
        if self.fail:
            raise RuntimeError("database down")
        self.items.append(receipt)
        return self.answer


@pytest.fixture
def sim() -> Iterator[SmscSimulator]:
    with SmscSimulator(receipt_delay=0.02) as simulator:
        yield simulator


def make_session(
    sim: SmscSimulator,
    *,
    password: str = "secret",
    on_receipt: Callable[[ReceiptPdu], int] | None = None,
    **kwargs: object,
) -> SmppSession:
    options: dict[str, object] = {
        "response_timeout": 1.0,
        "reconnect": (0.05, 0.2),
        "jitter": lambda delay: delay,
    }
    options.update(kwargs)
    return SmppSession(
        "127.0.0.1",
        sim.port,
        "bsend",
        password,
        on_receipt=on_receipt or Receipts(),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def started() -> Iterator[list[SmppSession]]:
    sessions: list[SmppSession] = []
    yield sessions
    for session in sessions:
        session.stop(drain_timeout=0.5)


def bound(session: SmppSession, sessions: list[SmppSession]) -> SmppSession:
    sessions.append(session.start())
    wait_until(lambda: session.state == "bound")
    return session


# --------------------------------------------------------------------------- submits


def test_bind_and_submit_one_message(sim: SmscSimulator, started: list[SmppSession]) -> None:
    session = bound(make_session(sim), started)
    outcome = session.submit(pdu()).result(WAIT)
    (received,) = sim.submits.wait_for(1)
    assert outcome == SubmitOutcome(
        status=0, message_id=received.message_id, status_class=None, unknown=False
    )
    assert outcome.ok
    assert received.tlvs[0x1400] == b"1201159876543210987"
    assert session.in_flight == 0
    assert session.binds == 1


def test_window_caps_unanswered_submits(sim: SmscSimulator, started: list[SmppSession]) -> None:
    session = make_session(sim, window=5)
    # Queued before the bind, so the first drain meets a full queue.
    futures = [session.submit(pdu(text=f"message {i}".encode())) for i in range(25)]
    bound(session, started)
    outcomes = [f.result(WAIT) for f in futures]
    assert all(o.ok for o in outcomes)
    assert len({o.message_id for o in outcomes}) == 25
    assert session.max_in_flight == 5
    assert len(sim.submits.wait_for(25)) == 25


def test_a_burst_of_submits_wakes_the_io_thread_once_and_all_go_out(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    session = make_session(sim)  # not started: nobody takes the wake-up yet
    futures = [session.submit(pdu()) for _ in range(50)]
    futures += session.submit_many([pdu() for _ in range(50)])
    assert session._wake_r.recv(4096) == b"\0"  # one byte for the hundred
    session._wake_w.send(b"\0")  # put it back for the I/O thread
    bound(session, started)
    assert all(f.result(WAIT).ok for f in futures)
    assert len(sim.submits.wait_for(100)) == 100
    # Taken by the I/O thread: the next submit wakes it again at once.
    assert session.submit(pdu()).result(WAIT).ok


def test_a_wake_up_written_while_the_io_thread_drains_the_last_one_is_not_lost(
    sim: SmscSimulator,
) -> None:
    session = make_session(sim)  # not started: this test plays the I/O thread
    quiet, _other_end = socket.socketpair()
    session._client = SimpleNamespace(_socket=quiet)  # type: ignore[assignment]
    real = session._wake_r
    drained: list[bytes] = []

    class Racing:
        """The wake-up socket, with a submitter queueing in the middle of the drain."""

        def fileno(self) -> int:
            return real.fileno()

        def recv(self, size: int) -> bytes:
            data = real.recv(size)
            if not drained:
                session._wake()
            drained.append(data)
            return data

    session._wake_r = Racing()  # type: ignore[assignment]
    session._wake()  # the wake-up the I/O thread takes
    session._read(0.0)
    session._wake_r = real
    try:
        waiting = real.recv(4096)
    except BlockingIOError:
        waiting = b""
    # The flag is down, or a byte waits in the pipe: the next submit is seen at once.
    assert not session._wake_pending or waiting
    quiet.close()
    _other_end.close()


def test_throttled_answer_is_classed_and_slows_the_bucket(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    sim.behaviour = Behaviour(throttle_tps=1)
    bucket = TokenBucket.full(rate=100, burst=10, now=time.monotonic())
    session = bound(make_session(sim, tps=bucket, slow_for=30.0), started)
    first, second = (session.submit(pdu()) for _ in range(2))
    assert first.result(WAIT).ok
    throttled = second.result(WAIT)
    assert (throttled.status, throttled.status_class) == (0x58, StatusClass.THROTTLED)
    assert throttled.message_id is None
    assert not throttled.unknown
    assert session.bucket is not None
    assert session.bucket.rate == 50


def test_a_throttle_without_a_rate_cap_pauses_writing(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    sim.behaviour = Behaviour(throttle_tps=1)
    session = bound(make_session(sim), started)
    assert session.submit(pdu()).result(WAIT).ok
    assert session.submit(pdu()).result(WAIT).status == 0x58
    throttled_at = time.monotonic()
    sim.behaviour = Behaviour()
    assert session.submit(pdu()).result(WAIT).ok
    assert time.monotonic() - throttled_at >= 0.04  # held back by the pause, not written at once


def test_rejected_destination_is_permanent(sim: SmscSimulator, started: list[SmppSession]) -> None:
    sim.behaviour = Behaviour(reject_prefixes=("9199",))
    session = bound(make_session(sim), started)
    outcome = session.submit(pdu(destination="919912345678")).result(WAIT)
    assert (outcome.status, outcome.status_class) == (0x0B, StatusClass.PERMANENT)
    assert not outcome.unknown


# --------------------------------------------------------------------------- receipts


def test_receipt_reaches_callback_and_is_acknowledged(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    receipts = Receipts()
    session = bound(make_session(sim, on_receipt=receipts), started)
    outcome = session.submit(pdu()).result(WAIT)
    (response,) = sim.receipt_responses.wait_for(1)
    assert response.command_status == 0
    assert response.message_id == outcome.message_id
    (receipt,) = receipts.items
    assert receipt.receipted_message_id == outcome.message_id
    assert receipt.message_state == 2
    assert receipt.esm_class & 0x3C == 0x04
    assert b"stat:DELIVRD" in receipt.short_message


def test_callback_asking_for_redelivery_is_answered_0x64(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    session = bound(make_session(sim, on_receipt=Receipts(answer=0x64)), started)
    session.submit(pdu()).result(WAIT)
    (response,) = sim.receipt_responses.wait_for(1)
    assert response.command_status == 0x64


def test_callback_raising_is_answered_0x64(sim: SmscSimulator, started: list[SmppSession]) -> None:
    session = bound(make_session(sim, on_receipt=Receipts(fail=True)), started)
    session.submit(pdu()).result(WAIT)
    (response,) = sim.receipt_responses.wait_for(1)
    assert response.command_status == 0x64
    assert session.state == "bound"  # the reader survived
    assert session.submit(pdu()).result(WAIT).ok


# --------------------------------------------------------------------------- links


def test_drop_after_write_is_unknown_then_reconnects(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    sim.behaviour = Behaviour(drop_after=3, no_receipts=True)
    session = bound(make_session(sim), started)
    for _ in range(3):
        assert session.submit(pdu()).result(WAIT).ok
    lost = session.submit(pdu()).result(WAIT)
    assert lost.unknown
    assert lost.status_class is None
    assert lost.message_id is None
    later = session.submit(pdu()).result(WAIT)
    assert later.ok
    assert session.binds == 2
    assert len(sim.submits) == 4  # the dropped one was never recorded


class CutSocket:
    """The session's socket, taking only ``budget`` more bytes of submits, then failing."""

    def __init__(self, sock: socket.socket, budget: int) -> None:
        self._sock = sock
        self.budget = budget

    def send(self, data: bytes | memoryview) -> int:
        if self.budget <= 0:
            raise ConnectionResetError("link reset")
        taken = self._sock.send(bytes(data[: self.budget]))
        self.budget -= taken
        return taken

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def test_write_cut_mid_batch_leaves_whole_pdus_unknown_and_resends_the_rest(
    sim: SmscSimulator, started: list[SmppSession]
) -> None:
    """Submits queued together go out in one write; when it fails part way, a PDU
    that left whole may be at the SMSC (unknown), and the one cut short and those
    behind it are written again after the reconnect (an SMSC ignores part of a PDU)."""
    sim.behaviour = Behaviour(no_receipts=True)
    session = bound(make_session(sim), started)
    pdus = [pdu(text=f"message {i}".encode()) for i in range(3)]
    whole = len(encode_submission(pdus[0], 1))
    session._client._socket = CutSocket(session._client._socket, whole + 5)  # type: ignore[attr-defined]
    first, second, third = session.submit_many(pdus)
    assert first.result(WAIT).unknown
    assert second.result(WAIT).ok
    assert third.result(WAIT).ok
    assert session.binds == 2
    received = sim.submits.wait_for(3)
    assert [r.short_message for r in received] == [p.fields["short_message"] for p in pdus]


def test_wrong_password_keeps_retrying_then_stops(sim: SmscSimulator) -> None:
    session = make_session(sim, password="wrong", reconnect=(0.02, 0.05)).start()
    try:
        queued = session.submit(pdu())
        wait_until(lambda: session.connect_attempts >= 3)
        assert session.state == "connecting"
        assert session.binds == 0
        assert session.last_error is not None
        assert "(14)" in session.last_error  # ESME_RINVPASWD
    finally:
        session.stop(drain_timeout=0.5)
    assert session.state == "stopped"
    assert queued.cancelled()  # never written, so never "unknown"
    assert len(sim.submits) == 0


def test_stop_drains_queue_and_unbinds(sim: SmscSimulator) -> None:
    session = make_session(sim, window=2).start()
    wait_until(lambda: session.state == "bound")
    futures = [session.submit(pdu()) for _ in range(10)]
    session.stop(drain_timeout=WAIT)
    assert session.state == "stopped"
    assert all(f.done() and f.result().ok for f in futures)
    assert session.in_flight == 0
    wait_until(lambda: sim.session_count == 0)
    with pytest.raises(RuntimeError):
        session.submit(pdu())


class SilentSmsc:
    """A one-connection fake SMSC: accepts any bind, never answers submits, scriptable."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept_bind(self) -> None:
        self.conn, _addr = self.listener.accept()
        self.conn.settimeout(WAIT)
        command_id, sequence = self.read()[:2]
        assert command_id == 0x09  # bind_transceiver
        self.write(0x80000009, 0, sequence, b"FAKE\x00")

    def read(self) -> tuple[int, int, int]:
        assert self.conn is not None
        header = self.conn.recv(16, socket.MSG_WAITALL)
        length, command_id, status, sequence = struct.unpack(">IIII", header)
        if length > 16:
            self.conn.recv(length - 16, socket.MSG_WAITALL)
        return command_id, sequence, status

    def write(self, command_id: int, status: int, sequence: int, body: bytes = b"") -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def test_unanswered_submit_unknown_unknown_command_nacked_smsc_unbind_answered() -> None:
    smsc = SilentSmsc()
    session = SmppSession(
        "127.0.0.1",
        smsc.port,
        "bsend",
        "secret",
        response_timeout=0.3,
        reconnect=(5.0, 5.0),
        jitter=lambda delay: delay,
        on_receipt=Receipts(),
    ).start()
    try:
        smsc.accept_bind()
        wait_until(lambda: session.state == "bound")
        future = session.submit(pdu())
        assert smsc.read()[0] == 0x04  # submit_sm arrived; never answered
        assert future.result(WAIT).unknown
        assert session.in_flight == 0
        smsc.write(0x00000103, 0, 77)  # data_sm: not implemented by the session
        assert smsc.read() == (0x80000000, 77, 0x03)  # generic_nack ESME_RINVCMDID
        smsc.write(0x00000006, 0, 78)  # SMSC-initiated unbind
        assert smsc.read() == (0x80000006, 78, 0)  # unbind_resp
        wait_until(lambda: session.state == "connecting")
    finally:
        session.stop(drain_timeout=0.1)
        smsc.close()
    assert session.state == "stopped"
