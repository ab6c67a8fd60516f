"""build_submissions + send_submission over real TCP against the local SMSC.

One bound smpplib transmitter per test, used from the test thread only: it
writes the submits, then reads one ``submit_sm_resp`` per submit with
``read_once`` (a transmitter gets no receipts, so nothing else arrives).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import smpplib.client

from bharatsend_core.adapters.smpp import (
    Behaviour,
    ReceivedSubmit,
    SmscSimulator,
    SubmitPdu,
    WireSettings,
    build_submissions,
    send_submission,
)
from bharatsend_core.domain.encoding import segment
from bharatsend_core.domain.message import Message

WAIT = 2.0
NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
PE_ID = "1201159876543210987"
TEMPLATE_ID = "1207161234567890123"
HINDI = "आपका OTP 482913 है। इसे किसी से साझा न करें।"
LONG = "Your order 48291 has shipped. Track it at https://acme.example/t/48291 {ref} " * 5


def message(content: str, header: str = "ACMEOT") -> Message:
    seg = segment(content, max_segments=255)
    return Message.accept(
        id="msg-1",
        tenant_id="t-1",
        phone="+919876543210",
        content=content,
        template_id=TEMPLATE_ID,
        header=header,
        entity_id=PE_ID,
        category="transactional",
        encoding=seg.encoding.value,
        segments=seg.segments,
        now=NOW,
        validity=timedelta(minutes=10),
    )


class Transmitter:
    """A bound smpplib transmitter that collects every submit_sm_resp it reads."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client(
            "127.0.0.1", port, timeout=WAIT, allow_unknown_opt_params=True
        )
        self.responses: list[Any] = []
        # Error responses also reach the sent handler once this one does not raise.
        self.client.set_error_pdu_handler(lambda pdu: None)
        self.client.set_message_sent_handler(lambda pdu, **_: self.responses.append(pdu))
        self.client.connect()
        self.client.bind_transmitter(system_id="bsend", password="secret")

    def send_all(self, pdus: tuple[SubmitPdu, ...]) -> list[Any]:
        """Send every PDU, then read their responses; return them keyed in send order."""
        before = len(self.responses)
        sent = [send_submission(self.client, pdu) for pdu in pdus]
        while len(self.responses) < before + len(sent):
            self.client.read_once()
        by_sequence = {resp.sequence: resp for resp in self.responses}
        return [by_sequence[pdu.sequence] for pdu in sent]

    def close(self) -> None:
        self.client.unbind()
        self.client.disconnect()


@pytest.fixture
def sim() -> Iterator[SmscSimulator]:
    with SmscSimulator(receipt_delay=0.02) as simulator:
        yield simulator


@pytest.fixture
def esme(sim: SmscSimulator) -> Iterator[Transmitter]:
    client = Transmitter(sim.port)
    yield client
    client.close()


def submit(
    sim: SmscSimulator, esme: Transmitter, msg: Message, reference: int = 0x42
) -> tuple[ReceivedSubmit, ...]:
    pdus = build_submissions(msg, WireSettings(), reference=reference, now=NOW)
    responses = esme.send_all(pdus)
    assert [r.status for r in responses] == [0] * len(pdus)
    assert all(r.message_id for r in responses)
    return sim.submits.wait_for(len(pdus), timeout=WAIT)


def assert_common(got: ReceivedSubmit) -> None:
    assert got.source_addr == "ACMEOT"
    assert (got.source_addr_ton, got.source_addr_npi) == (5, 0)
    assert got.destination_addr == "919876543210"
    assert (got.dest_addr_ton, got.dest_addr_npi) == (1, 1)
    assert got.registered_delivery == 1
    assert dict(got.tlvs) == {0x1400: PE_ID.encode(), 0x1401: TEMPLATE_ID.encode()}


def test_single_gsm_message_arrives_with_dlt_tlvs(sim: SmscSimulator, esme: Transmitter) -> None:
    (got,) = submit(sim, esme, message("482913 is your OTP. Do not share it. -ACME {x}"))
    assert_common(got)
    assert got.text == "482913 is your OTP. Do not share it. -ACME {x}"
    assert got.concat is None
    assert got.esm_class == 0
    assert got.data_coding == 0


def test_three_part_message_arrives_as_one_concatenated_set(
    sim: SmscSimulator, esme: Transmitter
) -> None:
    msg = message(LONG)
    assert msg.segments == 3
    got = submit(sim, esme, msg, reference=0xA7)
    assert [g.concat for g in got] == [(0xA7, 3, 1), (0xA7, 3, 2), (0xA7, 3, 3)]
    assert [g.text for g in got] == list(segment(LONG, max_segments=255).parts)
    assert "".join(g.text or "" for g in got) == LONG
    for g in got:
        assert_common(g)
        assert g.esm_class == 0x40
        assert g.data_coding == 0


def test_hindi_message_arrives_as_ucs2(sim: SmscSimulator, esme: Transmitter) -> None:
    (got,) = submit(sim, esme, message(HINDI))
    assert_common(got)
    assert got.text == HINDI
    assert got.data_coding == 8
    assert got.concat is None


def test_long_hindi_message_parts_join_back(sim: SmscSimulator, esme: Transmitter) -> None:
    text = HINDI * 4
    got = submit(sim, esme, message(text), reference=3)
    assert len(got) == 3
    assert [g.concat for g in got] == [(3, 3, 1), (3, 3, 2), (3, 3, 3)]
    assert all(g.data_coding == 8 for g in got)
    assert "".join(g.text or "" for g in got) == text


def test_simulator_requiring_dlt_tlvs_accepts_them(sim: SmscSimulator, esme: Transmitter) -> None:
    sim.behaviour = Behaviour(require_tlvs=(0x1400, 0x1401))
    got = submit(sim, esme, message(LONG))
    assert len(got) == 3
    assert all(dict(g.tlvs) == {0x1400: PE_ID.encode(), 0x1401: TEMPLATE_ID.encode()} for g in got)


def test_simulator_requiring_a_chain_tlv_refuses_a_route_without_it(
    sim: SmscSimulator, esme: Transmitter
) -> None:
    sim.behaviour = Behaviour(require_tlvs=(0x1400, 0x1401, 0x1402))
    pdus = build_submissions(message("482913 is your OTP"), WireSettings(), reference=1, now=NOW)
    (resp,) = esme.send_all(pdus)
    assert resp.status == 0xC4  # ESME_RMISSINGOPTPARAM
    assert len(sim.submits) == 0

    chained = WireSettings(dlt_tlvs={"pe_id": 0x1400, "template_id": 0x1401, "chain": 0x1402})
    pdus = build_submissions(
        message("482913 is your OTP"), chained, reference=1, now=NOW, chain_hash="ab12"
    )
    (resp,) = esme.send_all(pdus)
    assert resp.status == 0
    (got,) = sim.submits.wait_for(1, timeout=WAIT)
    assert got.tlvs[0x1402] == b"ab12"


def test_nul_terminated_tlvs_and_numeric_header(sim: SmscSimulator, esme: Transmitter) -> None:
    settings = WireSettings(tlv_nul_terminated=True)
    pdus = build_submissions(message("Hi there", header="56161"), settings, reference=1, now=NOW)
    (resp,) = esme.send_all(pdus)
    assert resp.status == 0
    (got,) = sim.submits.wait_for(1, timeout=WAIT)
    assert got.source_addr == "56161"
    assert (got.source_addr_ton, got.source_addr_npi) == (1, 1)
    assert dict(got.tlvs) == {0x1400: PE_ID.encode() + b"\0", 0x1401: TEMPLATE_ID.encode() + b"\0"}
