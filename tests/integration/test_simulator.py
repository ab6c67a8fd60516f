"""The SMSC simulator over real TCP, driven by smpplib as the ESME.

Each test client has one I/O thread that owns the socket (SMPP.md §3,
"Threading"): it runs queued sends, then ``poll()``s for incoming PDUs.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import smpplib.client
import smpplib.exceptions
import smpplib.smpp

from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator
from bharatsend_core.domain.encoding import encode_gsm7, encode_ucs2, udh_concat
from bharatsend_core.domain.receipts import ReceiptOutcome, parse_receipt

WAIT = 2.0


class RecordingClient(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client, also queueing every PDU it reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: queue.Queue[Any] = queue.Queue()

    def read_pdu(self) -> Any:
        pdu = super().read_pdu()
        self.seen.put(pdu)
        return pdu


class Esme:
    """A bound smpplib client with a single I/O thread and queues of what arrived."""

    def __init__(self, port: int, mode: str = "transceiver", **bind: str) -> None:
        self.client = RecordingClient("127.0.0.1", port, allow_unknown_opt_params=True)
        self.responses: queue.Queue[Any] = queue.Queue()
        self.receipts: queue.Queue[Any] = queue.Queue()
        self.order: list[str] = []
        self.closed = threading.Event()
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self.client.set_error_pdu_handler(lambda pdu: None)
        self.client.set_message_sent_handler(self._sent)
        self.client.set_message_received_handler(self._received)
        self.client.connect()
        getattr(self.client, f"bind_{mode}")(
            system_id=bind.get("system_id", "bsend"), password=bind.get("password", "secret")
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sent(self, pdu: Any, **_: Any) -> None:
        self.order.append("resp")
        self.responses.put(pdu)

    def _received(self, pdu: Any, **_: Any) -> int:
        self.order.append("receipt")
        self.receipts.put(pdu)
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job, future = self._jobs.get(timeout=0.005)
            except queue.Empty:
                pass
            else:
                try:
                    future.set_result(job())
                except Exception as e:
                    future.set_exception(e)
            try:
                self.client.poll(auto_send_enquire_link=False)
            except (smpplib.exceptions.ConnectionError, OSError, ValueError):
                self.closed.set()
                return

    def call(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` on the I/O thread and return its result."""
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future.result(timeout=WAIT)

    def submit(self, tlvs: dict[int, bytes] | None = None, **fields: Any) -> Any:
        """Send one submit_sm; ``tlvs`` are raw extra TLVs (SMPP.md §3 Approach A)."""
        params: dict[str, Any] = {
            "source_addr_ton": 5,
            "source_addr_npi": 0,
            "source_addr": "BSENDX",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "919876543210",
            "registered_delivery": 1,
            "data_coding": 0,
        }
        params.update(fields)

        def job() -> Any:
            pdu = smpplib.smpp.make_pdu("submit_sm", client=self.client, **params)
            if tlvs:
                original = pdu.generate_params
                extra = b"".join(struct.pack(">HH", t, len(v)) + v for t, v in tlvs.items())
                pdu.generate_params = lambda: original() + extra
            self.client.send_pdu(pdu)
            return pdu

        return self.call(job)

    def send_command(self, name: str) -> Any:
        def job() -> Any:
            pdu = smpplib.smpp.make_pdu(name, client=self.client)
            self.client.send_pdu(pdu)
            return pdu

        return self.call(job)

    def wait_seen(self, command: str) -> Any:
        while True:
            pdu = self.client.seen.get(timeout=WAIT)
            if pdu.command == command:
                return pdu

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self.client.disconnect()


@pytest.fixture
def sim() -> Iterator[SmscSimulator]:
    with SmscSimulator(receipt_delay=0.02) as simulator:
        yield simulator


@pytest.fixture
def esme(sim: SmscSimulator) -> Iterator[Esme]:
    client = Esme(sim.port)
    yield client
    client.close()


def gsm(text: str) -> bytes:
    return encode_gsm7(text)


def receipt_tlvs(pdu: Any) -> dict[str, Any]:
    return {
        name: getattr(pdu, name)
        for name in ("receipted_message_id", "message_state")
        if getattr(pdu, name, None) is not None
    }


# --------------------------------------------------------------------------- binds


def test_bind_transceiver_with_good_credentials_succeeds(sim: SmscSimulator) -> None:
    client = smpplib.client.Client("127.0.0.1", sim.port, allow_unknown_opt_params=True)
    client.connect()
    try:
        resp = client.bind_transceiver(system_id="bsend", password="secret")
        assert resp.status == 0
        assert resp.system_id == b"BSENDSIM"
    finally:
        client.disconnect()


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("bsend", "wrong", 0x0E), ("nobody", "secret", 0x0F)],
)
def test_bind_with_bad_credentials_is_refused(
    sim: SmscSimulator, system_id: str, password: str, status: int
) -> None:
    client = smpplib.client.Client("127.0.0.1", sim.port, allow_unknown_opt_params=True)
    client.connect()
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            client.bind_transmitter(system_id=system_id, password=password)
        assert info.value.args[1] == status
    finally:
        client.disconnect()


def _read_header(raw: socket.socket) -> tuple[int, int, int, int]:
    header = b""
    while len(header) < 16:
        chunk = raw.recv(16 - len(header))
        assert chunk, "connection closed before a response"
        header += chunk
    length, command_id, status, sequence = struct.unpack(">IIII", header)
    if length > 16:
        raw.recv(length - 16)
    return length, command_id, status, sequence


def test_second_bind_on_one_session_is_already_bound(sim: SmscSimulator) -> None:
    # smpplib refuses a second bind itself, so this speaks raw SMPP.
    body = b"bsend\x00secret\x00\x00\x34\x00\x00\x00"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT) as raw:
        raw.sendall(struct.pack(">IIII", 16 + len(body), 0x09, 0, 1) + body)
        assert _read_header(raw)[1:] == (0x80000009, 0, 1)
        raw.sendall(struct.pack(">IIII", 16 + len(body), 0x09, 0, 2) + body)
        assert _read_header(raw)[1:] == (0x80000009, 0x05, 2)


# --------------------------------------------------------------------------- submits


def test_single_gsm_submit_is_recorded_with_text_and_decimal_id(
    sim: SmscSimulator, esme: Esme
) -> None:
    esme.submit(short_message=gsm("Your OTP is 4821 @ BSEND"), registered_delivery=0)
    resp = esme.responses.get(timeout=WAIT)
    assert resp.status == 0
    (submit,) = sim.submits.wait_for(1)
    assert submit.text == "Your OTP is 4821 @ BSEND"
    assert resp.message_id.decode() == submit.message_id
    assert submit.message_id.isdecimal()
    assert len(submit.message_id) == 10
    assert (submit.source_addr, submit.source_addr_ton, submit.source_addr_npi) == (
        "BSENDX",
        5,
        0,
    )
    assert (submit.destination_addr, submit.dest_addr_ton, submit.dest_addr_npi) == (
        "919876543210",
        1,
        1,
    )
    assert submit.system_id == "bsend"
    assert submit.concat is None


def test_two_part_message_records_udh_concat_info(sim: SmscSimulator, esme: Esme) -> None:
    parts = ["A" * 153, "B" * 10]
    for seq, part in enumerate(parts, start=1):
        esme.submit(
            short_message=udh_concat(0x2A, 2, seq) + gsm(part),
            esm_class=0x40,
            registered_delivery=0,
        )
    recorded = sim.submits.wait_for(2)
    assert [s.concat for s in recorded] == [(0x2A, 2, 1), (0x2A, 2, 2)]
    assert [s.text for s in recorded] == parts
    assert len({s.message_id for s in recorded}) == 2


def test_ucs2_hindi_text_is_decoded(sim: SmscSimulator, esme: Esme) -> None:
    text = "आपका ओटीपी 4821 है"
    esme.submit(short_message=encode_ucs2(text), data_coding=8, registered_delivery=0)
    (submit,) = sim.submits.wait_for(1)
    assert submit.data_coding == 8
    assert submit.text == text


def test_vendor_tlvs_are_recorded(sim: SmscSimulator, esme: Esme) -> None:
    tlvs = {0x1400: b"1101234567890123456", 0x1401: b"1107160000000012345"}
    esme.submit(short_message=gsm("hi"), registered_delivery=0, tlvs=tlvs)
    (submit,) = sim.submits.wait_for(1)
    assert submit.tlvs[0x1400] == tlvs[0x1400]
    assert submit.tlvs[0x1401] == tlvs[0x1401]


# --------------------------------------------------------------------------- receipts


def test_receipt_is_appendix_b_text_and_parses_as_delivered(sim: SmscSimulator, esme: Esme) -> None:
    esme.submit(short_message=gsm("Your OTP is 4821, valid 5 min"))
    resp = esme.responses.get(timeout=WAIT)
    receipt = esme.receipts.get(timeout=WAIT)
    message_id = resp.message_id.decode()
    assert receipt.esm_class == 0x04
    text = receipt.short_message.decode()
    assert text.startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
    assert text.endswith("stat:DELIVRD err:000 text:Your OTP is 4821, va")
    parsed = parse_receipt(receipt.short_message, tlvs=receipt_tlvs(receipt))
    assert parsed.outcome is ReceiptOutcome.DELIVERED
    assert parsed.message_id == message_id
    assert parsed.source == "mixed"
    (ack,) = sim.receipt_responses.wait_for(1)
    assert (ack.message_id, ack.command_status) == (message_id, 0)


def test_hex_ids_in_response_and_receipt(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(id_format="hex")
    esme.submit(short_message=gsm("hex please"))
    message_id = esme.responses.get(timeout=WAIT).message_id.decode()
    assert int(message_id, 16) > 0
    assert not message_id.isdecimal()
    receipt = esme.receipts.get(timeout=WAIT)
    assert parse_receipt(receipt.short_message, tlvs=receipt_tlvs(receipt)).message_id == (
        message_id
    )


def test_failure_state_carries_error_code(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(final_state="UNDELIV", error_code="633")
    esme.submit(short_message=gsm("template drift"))
    receipt = esme.receipts.get(timeout=WAIT)
    assert b"dlvrd:000" in receipt.short_message
    assert b"stat:UNDELIV err:633" in receipt.short_message
    parsed = parse_receipt(receipt.short_message, tlvs=receipt_tlvs(receipt))
    assert parsed.outcome is ReceiptOutcome.UNDELIVERED
    assert parsed.error_code == "633"


def test_failure_only_receipts_skip_successes(sim: SmscSimulator, esme: Esme) -> None:
    esme.submit(short_message=gsm("ok"), registered_delivery=2)
    esme.responses.get(timeout=WAIT)
    sim.behaviour = Behaviour(final_state="EXPIRED")
    esme.submit(short_message=gsm("late"), registered_delivery=2)
    second = esme.responses.get(timeout=WAIT).message_id.decode()
    receipt = esme.receipts.get(timeout=WAIT)
    assert receipt.receipted_message_id.rstrip(b"\x00").decode() == second
    assert esme.receipts.empty()


def test_duplicate_receipts_send_each_twice(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(duplicate_receipts=True)
    esme.submit(short_message=gsm("twice"))
    first = esme.receipts.get(timeout=WAIT)
    second = esme.receipts.get(timeout=WAIT)
    assert first.short_message == second.short_message
    assert first.sequence != second.sequence
    assert len(sim.receipt_responses.wait_for(2)) == 2


def test_receipt_first_arrives_before_submit_response(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(receipt_first=True)
    esme.submit(short_message=gsm("race"))
    receipt = esme.receipts.get(timeout=WAIT)
    resp = esme.responses.get(timeout=WAIT)
    assert esme.order == ["receipt", "resp"]
    assert parse_receipt(receipt.short_message, tlvs=receipt_tlvs(receipt)).message_id == (
        resp.message_id.decode()
    )


def test_no_receipts_sends_none(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(no_receipts=True)
    esme.submit(short_message=gsm("quiet"))
    esme.responses.get(timeout=WAIT)
    with pytest.raises(queue.Empty):
        esme.receipts.get(timeout=0.15)


def test_receipt_waits_for_a_receiver_to_bind(sim: SmscSimulator) -> None:
    transmitter = Esme(sim.port, mode="transmitter")
    try:
        transmitter.submit(short_message=gsm("later"))
        message_id = transmitter.responses.get(timeout=WAIT).message_id.decode()
        receiver = Esme(sim.port, mode="receiver")
        try:
            receipt = receiver.receipts.get(timeout=WAIT)
            assert receipt.receipted_message_id.rstrip(b"\x00").decode() == message_id
        finally:
            receiver.close()
    finally:
        transmitter.close()


# --------------------------------------------------------------------------- refusals


def test_throttling_above_tps(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(throttle_tps=2)
    for _ in range(3):
        esme.submit(short_message=gsm("burst"), registered_delivery=0)
    statuses = [esme.responses.get(timeout=WAIT).status for _ in range(3)]
    assert statuses == [0, 0, 0x58]
    assert len(sim.submits) == 2


def test_window_limit_answers_queue_full(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(window_limit=1)
    for _ in range(2):
        esme.submit(short_message=gsm("burst"), registered_delivery=0)
    statuses = [esme.responses.get(timeout=WAIT).status for _ in range(2)]
    assert statuses == [0, 0x14]


def test_rejected_destination_prefix(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(reject_prefixes=("91140",))
    esme.submit(short_message=gsm("x"), destination_addr="911401234567")
    esme.submit(short_message=gsm("y"), destination_addr="919876543210", registered_delivery=0)
    statuses = [esme.responses.get(timeout=WAIT).status for _ in range(2)]
    assert statuses == [0x0B, 0]
    assert [s.destination_addr for s in sim.submits] == ["919876543210"]


def test_drop_after_closes_the_socket_without_answering(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(drop_after=1)
    esme.submit(short_message=gsm("one"), registered_delivery=0)
    assert esme.responses.get(timeout=WAIT).status == 0
    esme.submit(short_message=gsm("two"), registered_delivery=0)
    assert esme.closed.wait(WAIT)
    assert esme.responses.empty()
    assert len(sim.submits) == 1


def test_require_tlvs_refuses_a_submit_without_them(sim: SmscSimulator, esme: Esme) -> None:
    sim.behaviour = Behaviour(require_tlvs=(0x1400, 0x1401))
    esme.submit(short_message=gsm("no dlt"), tlvs={0x1400: b"1101"})
    esme.submit(
        short_message=gsm("dlt"), tlvs={0x1400: b"1101", 0x1401: b"1107"}, registered_delivery=0
    )
    statuses = [esme.responses.get(timeout=WAIT).status for _ in range(2)]
    assert statuses == [0xC4, 0]
    assert [s.text for s in sim.submits] == ["dlt"]


# --------------------------------------------------------------------------- session


def test_enquire_link_is_answered(esme: Esme) -> None:
    request = esme.send_command("enquire_link")
    resp = esme.wait_seen("enquire_link_resp")
    assert resp.sequence == request.sequence
    assert resp.status == 0


def test_unbind_is_answered_then_closed(sim: SmscSimulator, esme: Esme) -> None:
    request = esme.send_command("unbind")
    resp = esme.wait_seen("unbind_resp")
    assert resp.sequence == request.sequence
    assert esme.closed.wait(WAIT)


def _raw_exchange(port: int, data: bytes) -> tuple[int, int, int, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        raw.sendall(data)
        return _read_header(raw)


def test_unknown_command_gets_generic_nack(sim: SmscSimulator) -> None:
    assert _raw_exchange(sim.port, struct.pack(">IIII", 16, 0x00000077, 0, 7)) == (
        16,
        0x80000000,
        0x03,
        7,
    )


def test_bad_command_length_gets_generic_nack(sim: SmscSimulator) -> None:
    assert _raw_exchange(sim.port, struct.pack(">IIII", 8, 0x00000015, 0, 9)) == (
        16,
        0x80000000,
        0x02,
        9,
    )


def test_submit_before_bind_is_refused(sim: SmscSimulator) -> None:
    body = b"\x00" * 3 + b"\x00" * 2 + b"\x00" + b"\x00" * 3 + b"\x00\x00" + b"\x00" * 5
    pdu = struct.pack(">IIII", 16 + len(body), 0x04, 0, 3) + body
    assert _raw_exchange(sim.port, pdu) == (16, 0x80000004, 0x04, 3)


def test_stop_closes_sessions_and_joins_threads(sim: SmscSimulator) -> None:
    client = Esme(sim.port)
    try:
        sim.stop()
        assert client.closed.wait(WAIT)
        assert sim.session_count == 0
    finally:
        client.close()
