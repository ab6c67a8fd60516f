"""Building submit_sm PDUs from a Message: pure, no sockets (SMPP.md §1.2, §1.9, §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import smpplib.client
import smpplib.command
import smpplib.smpp
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.adapters.smpp import submission
from bharatsend_core.adapters.smpp.submission import (
    SubmitPdu,
    WireSettings,
    build_submissions,
    encode_submission,
    validity_period,
)
from bharatsend_core.domain.encoding import (
    decode_gsm7,
    decode_ucs2,
    parse_udh_concat,
    segment,
)
from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.message import Message, Part, PartStatus

NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
PE_ID = "1201159876543210987"
TEMPLATE_ID = "1207161234567890123"
HINDI = "आपका OTP 482913 है। इसे किसी से साझा न करें।"


def message(content: str = "482913 is your OTP. -ACME", **overrides: object) -> Message:
    seg = segment(content, max_segments=255)
    values: dict[str, object] = {
        "id": "msg-1",
        "tenant_id": "t-1",
        "phone": "+919876543210",
        "content": content,
        "template_id": TEMPLATE_ID,
        "header": "ACMEOT",
        "entity_id": PE_ID,
        "category": "transactional",
        "encoding": seg.encoding.value,
        "segments": seg.segments,
        "now": NOW,
        "validity": timedelta(minutes=10),
    }
    values.update(overrides)
    return Message.accept(**values)  # type: ignore[arg-type]


def build(
    msg: Message, settings: WireSettings | None = None, **kw: object
) -> tuple[SubmitPdu, ...]:
    kw.setdefault("reference", 0x42)
    kw.setdefault("now", NOW)
    return build_submissions(msg, settings or WireSettings(), **kw)  # type: ignore[arg-type]


def decoded(pdu: SubmitPdu) -> str:
    raw = pdu.fields["short_message"]
    assert isinstance(raw, bytes)
    if pdu.fields["esm_class"] == 0x40:
        parsed = parse_udh_concat(raw)
        assert parsed is not None
        raw = parsed[3]
    return decode_gsm7(raw) if pdu.fields["data_coding"] == 0 else decode_ucs2(raw)


# --------------------------------------------------------------------------- fields


def test_single_gsm_part_has_every_submit_sm_field() -> None:
    (pdu,) = build(message())
    assert pdu.part_index == 0
    assert dict(pdu.fields) == {
        "source_addr_ton": 5,
        "source_addr_npi": 0,
        "source_addr": "ACMEOT",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "919876543210",
        "esm_class": 0,
        "data_coding": 0,
        "short_message": b"482913 is your OTP. -ACME",
        "registered_delivery": 1,
        "validity_period": "000000001000000R",
    }
    assert pdu.tlvs == ((0x1400, PE_ID.encode()), (0x1401, TEMPLATE_ID.encode()))


def test_hindi_goes_as_ucs2_utf16be() -> None:
    (pdu,) = build(message(HINDI))
    assert pdu.fields["data_coding"] == 8
    assert pdu.fields["esm_class"] == 0
    assert pdu.fields["short_message"] == HINDI.encode("utf-16-be")


def test_three_part_gsm_message_shares_the_reference_with_sequence_1_to_3() -> None:
    text = "".join(str(i % 10) for i in range(400))
    msg = message(text)
    assert msg.segments == 3
    pdus = build(msg, reference=0x42)
    assert [p.part_index for p in pdus] == [0, 1, 2]
    for n, pdu in enumerate(pdus, start=1):
        raw = pdu.fields["short_message"]
        assert isinstance(raw, bytes)
        assert raw[:6] == bytes((0x05, 0x00, 0x03, 0x42, 3, n))
        assert pdu.fields["esm_class"] == 0x40
        assert pdu.fields["data_coding"] == 0
    assert "".join(decoded(p) for p in pdus) == text
    assert [len(p.fields["short_message"]) for p in pdus] == [6 + 153, 6 + 153, 6 + 94]  # type: ignore[arg-type]


def test_extension_character_at_a_part_boundary_is_not_split() -> None:
    text = "1" * 152 + "{" + "1" * 12
    pdus = build(message(text))
    assert len(pdus) == 2
    first = pdus[0].fields["short_message"]
    assert isinstance(first, bytes)
    assert not first.endswith(b"\x1b")
    assert [decoded(p) for p in pdus] == ["1" * 152, "{" + "1" * 12]
    assert "".join(decoded(p) for p in pdus) == text


def test_sixteen_bit_reference_uses_the_8_04_udh() -> None:
    settings = WireSettings(reference_bits=16)
    text = "a" * 200
    pdus = build(message(text), settings, reference=0x1234)
    raw = pdus[0].fields["short_message"]
    assert isinstance(raw, bytes)
    assert raw[:7] == bytes((0x06, 0x08, 0x04, 0x12, 0x34, 2, 1))
    assert "".join(decoded(p) for p in pdus) == text


@pytest.mark.parametrize(
    ("header", "ton", "npi"),
    [("ACMEOT", 5, 0), ("acmeot", 5, 0), ("56161", 1, 1), ("919800012345", 1, 1)],
)
def test_source_ton_npi_follow_the_header_kind(header: str, ton: int, npi: int) -> None:
    (pdu,) = build(message(header=header))
    assert (pdu.fields["source_addr_ton"], pdu.fields["source_addr_npi"]) == (ton, npi)
    assert pdu.fields["source_addr"] == header


def test_route_settings_override_ton_npi_and_registered_delivery() -> None:
    settings = WireSettings(
        alpha_source_ton=0, alpha_source_npi=1, dest_ton=2, dest_npi=9, registered_delivery=0
    )
    (pdu,) = build(message(), settings)
    assert pdu.fields["source_addr_ton"] == 0
    assert pdu.fields["source_addr_npi"] == 1
    assert pdu.fields["dest_addr_ton"] == 2
    assert pdu.fields["dest_addr_npi"] == 9
    assert pdu.fields["registered_delivery"] == 0
    numeric = WireSettings(numeric_source_ton=3, numeric_source_npi=0)
    (pdu,) = build(message(header="56161"), numeric)
    assert (pdu.fields["source_addr_ton"], pdu.fields["source_addr_npi"]) == (3, 0)


@pytest.mark.parametrize("header", ["ACME", "ACMEOT1", "AC-MEO", "ÄCMEOT", "1" * 21, ""])
def test_a_header_that_cannot_go_on_the_wire_is_refused(header: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(message(header=header))
    assert info.value.field == "header"


# --------------------------------------------------------------------------- TLVs


def test_tlv_bytes_are_tag_length_ascii_digits_without_nul() -> None:
    msg = message(entity_id="1201", template_id="98765")
    (pdu,) = build(msg)
    assert pdu.tlv_bytes() == (
        bytes.fromhex("1400 0004") + b"1201" + bytes.fromhex("1401 0005") + b"98765"
    )


def test_tlv_bytes_with_nul_when_the_route_asks() -> None:
    msg = message(entity_id="1201", template_id="98765")
    (pdu,) = build(msg, WireSettings(tlv_nul_terminated=True))
    assert pdu.tlvs == ((0x1400, b"1201\x00"), (0x1401, b"98765\x00"))
    assert pdu.tlv_bytes() == (
        bytes.fromhex("1400 0005") + b"1201\x00" + bytes.fromhex("1401 0006") + b"98765\x00"
    )


def test_swapped_tags_and_chain_hash() -> None:
    settings = WireSettings(dlt_tlvs={"pe_id": 0x1401, "template_id": 0x1400, "chain": 0x1402})
    msg = message(entity_id="11", template_id="22")
    (pdu,) = build(msg, settings, chain_hash="abc123")
    assert pdu.tlvs == ((0x1401, b"11"), (0x1400, b"22"), (0x1402, b"abc123"))
    assert pdu.tlv_bytes().endswith(bytes.fromhex("1402 0006") + b"abc123")


def test_chain_hash_is_ignored_when_the_route_has_no_chain_tag() -> None:
    (pdu,) = build(message(), chain_hash="abc123")
    assert [tag for tag, _ in pdu.tlvs] == [0x1400, 0x1401]


def test_chain_required_by_the_route_but_missing_is_refused() -> None:
    settings = WireSettings(dlt_tlvs={"pe_id": 0x1400, "template_id": 0x1401, "chain": 0x1402})
    with pytest.raises(InvalidArgument) as info:
        build(message(), settings)
    assert info.value.field == "chain_hash"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"entity_id": "12A4"}, "entity_id"), ({"template_id": "१२३"}, "template_id")],
)
def test_dlt_ids_must_be_ascii_digits(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(message(**overrides))
    assert info.value.field == field


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (timedelta(minutes=10), "000000001000000R"),
        (timedelta(hours=2, minutes=3, seconds=4, milliseconds=999), "000000020304000R"),
        (timedelta(days=1, hours=1), "000001010000000R"),
        (timedelta(days=400), "010105000000000R"),
        (timedelta(seconds=-5), "000000000000000R"),
        (timedelta(0), "000000000000000R"),
        (timedelta(days=365 * 150), "991129235959000R"),
    ],
)
def test_validity_period_is_a_relative_smpp_time(remaining: timedelta, expected: str) -> None:
    assert validity_period(remaining) == expected


@given(st.lists(st.integers(-10, 10**10), min_size=1, max_size=20))
def test_validity_period_does_not_depend_on_what_was_asked_before(seconds: list[int]) -> None:
    # It remembers its last answer: alternating values must not get a stale one.
    alone = {s: submission._relative_time(max(0, s)) for s in set(seconds)}
    for s in seconds + seconds[::-1]:
        assert validity_period(timedelta(seconds=s)) == alone[s]
        assert validity_period(timedelta(seconds=s, microseconds=999_999)) == alone[s]


def test_validity_is_counted_from_now_and_clamped_at_zero() -> None:
    msg = message()
    (pdu,) = build(msg, now=NOW + timedelta(minutes=7, seconds=30))
    assert pdu.fields["validity_period"] == "000000000230000R"
    (pdu,) = build(msg, now=NOW + timedelta(hours=1))
    assert pdu.fields["validity_period"] == "000000000000000R"


def test_validity_is_omitted_when_the_route_says_so() -> None:
    (pdu,) = build(message(), WireSettings(send_validity=False))
    assert "validity_period" not in pdu.fields


# --------------------------------------------------------------------------- parts


def test_a_retry_sends_only_the_pending_parts_with_the_same_reference() -> None:
    text = "x" * 400
    msg = message(text)
    submitted = Part(1, status=PartStatus.SUBMITTED, carrier_message_id="c-2", submitted_at=NOW)
    retry = attrs.evolve(msg, parts=(msg.parts[0], submitted, msg.parts[2]))
    pdus = build(retry, reference=7)
    assert [p.part_index for p in pdus] == [0, 2]
    heads = [p.fields["short_message"][:6] for p in pdus]  # type: ignore[index]
    assert heads == [bytes((5, 0, 3, 7, 3, 1)), bytes((5, 0, 3, 7, 3, 3))]


def test_explicit_parts_are_built_in_the_order_given() -> None:
    pdus = build(message("y" * 400), parts=[2, 0])
    assert [p.part_index for p in pdus] == [2, 0]
    assert build(message("y" * 400), parts=[]) == ()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("bits", "reference"), [(8, -1), (8, 256), (16, 65536), (16, -1), (8, True)]
)
def test_reference_out_of_range_is_refused(bits: int, reference: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(message(), WireSettings(reference_bits=bits), reference=reference)
    assert info.value.field == "reference"


def test_sixteen_bit_reference_is_allowed_up_to_65535() -> None:
    (pdu,) = build(message(), WireSettings(reference_bits=16), reference=65535)
    assert pdu.part_index == 0


def test_content_that_no_longer_matches_the_segment_count_is_refused() -> None:
    msg = attrs.evolve(message("short"), content="z" * 200)
    with pytest.raises(InvalidArgument) as info:
        build(msg)
    assert info.value.field == "content"


def test_changed_encoding_is_refused() -> None:
    msg = attrs.evolve(message("short"), content="₹ short")
    with pytest.raises(InvalidArgument) as info:
        build(msg)
    assert info.value.field == "content"


@pytest.mark.parametrize("parts", [[3], [-1], [0, 0]])
def test_bad_part_indexes_are_refused(parts: list[int]) -> None:
    with pytest.raises(InvalidArgument) as info:
        build(message("y" * 400), parts=parts)
    assert info.value.field == "parts"


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        build(message(), now=datetime(2025, 1, 15, 10, 0))
    assert info.value.field == "now"


@pytest.mark.parametrize(
    "tlvs",
    [
        {"pe_id": 0x1400},
        {"pe_id": 0x1400, "template_id": 0x1401, "tm_id": 0x1402},
        {"pe_id": 0x1400, "template_id": 0x1400},
        {"pe_id": 0x13FF, "template_id": 0x1401},
        {"pe_id": 0x1400, "template_id": 0x4000},
        {"pe_id": 0x1400, "template_id": True},
    ],
)
def test_wire_settings_refuse_bad_tag_maps(tlvs: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument) as info:
        WireSettings(dlt_tlvs=tlvs)
    assert info.value.field == "dlt_tlvs"


@pytest.mark.parametrize(
    "overrides",
    [
        {"alpha_source_ton": 256},
        {"dest_npi": -1},
        {"registered_delivery": True},
        {"reference_bits": 12},
        {"send_validity": 1},
        {"tlv_nul_terminated": "yes"},
    ],
)
def test_wire_settings_refuse_bad_values(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        WireSettings(**overrides)  # type: ignore[arg-type]


def test_values_are_frozen_and_content_stays_out_of_repr() -> None:
    settings = WireSettings()
    (pdu,) = build(message("secret 482913"))
    assert "482913" not in repr(pdu)
    with pytest.raises(TypeError):
        pdu.fields["source_addr"] = "X"  # type: ignore[index]
    with pytest.raises(TypeError):
        settings.dlt_tlvs["pe_id"] = 1  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.reference_bits = 16  # type: ignore[misc]


# --------------------------------------------------------------------------- encode_submission

_ASCII = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E))
# The mandatory one-octet parameters, as smpplib itself defines submit_sm
# (sm_length is computed from the text, never given).
_MANDATORY = smpplib.command.SubmitSM.params_order[
    : smpplib.command.SubmitSM.params_order.index("short_message")
]
_SMPPLIB_OCTETS = [
    name
    for name in _MANDATORY
    if smpplib.command.SubmitSM.params[name].type is int and name != "sm_length"
]


def smpplib_bytes(pdu: SubmitPdu, sequence: int) -> bytes:
    """What smpplib itself writes for the same fields and TLVs (the reference)."""
    client = smpplib.client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)
    reference: Any = smpplib.smpp.make_pdu("submit_sm", client=client, **pdu.fields)
    reference.sequence = sequence
    params = reference.generate_params
    reference.generate_params = lambda: params() + pdu.tlv_bytes()
    return bytes(reference.generate())


@given(
    octets=st.fixed_dictionaries(
        {}, optional={name: st.integers(0, 255) for name in _SMPPLIB_OCTETS}
    ),
    strings=st.fixed_dictionaries(
        {},
        optional={
            "service_type": _ASCII.filter(lambda s: len(s) <= 5),
            "source_addr": _ASCII.filter(lambda s: len(s) <= 20),
            "destination_addr": _ASCII.filter(lambda s: len(s) <= 20),
            "validity_period": _ASCII.filter(lambda s: len(s) <= 16),
            "schedule_delivery_time": _ASCII.filter(lambda s: len(s) <= 16),
        },
    ),
    short=st.binary(max_size=254),
    tlvs=st.lists(st.tuples(st.integers(0x1400, 0x3FFF), st.binary(max_size=40)), max_size=3),
    sequence=st.integers(1, 0x7FFFFFFF),
)
def test_encode_submission_writes_what_smpplib_writes(
    octets: dict[str, int],
    strings: dict[str, str],
    short: bytes,
    tlvs: list[tuple[int, bytes]],
    sequence: int,
) -> None:
    pdu = SubmitPdu(
        part_index=0, fields={**octets, **strings, "short_message": short}, tlvs=tuple(tlvs)
    )
    assert encode_submission(pdu, sequence) == smpplib_bytes(pdu, sequence)


def test_encode_submission_matches_smpplib_for_built_messages() -> None:
    for content in ("482913 is your OTP. -ACME", "x" * 400, HINDI):
        for i, pdu in enumerate(build_submissions(message(content), WireSettings(), reference=9,
                                                  now=NOW)):  # fmt: skip
            assert encode_submission(pdu, 100 + i) == smpplib_bytes(pdu, 100 + i)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"message_payload": b"x"}, "fields"),
        ({"source_addr": "A" * 21}, "source_addr"),
        ({"destination_addr": "९१९८"}, "destination_addr"),
        ({"destination_addr": 919876543210}, "destination_addr"),
        ({"esm_class": 256}, "esm_class"),
        ({"data_coding": True}, "data_coding"),
        ({"short_message": b"x" * 255}, "short_message"),
    ],
)
def test_encode_submission_refuses_what_smpplib_would_cut_or_garble(
    fields: dict[str, object], field: str
) -> None:
    pdu = SubmitPdu(part_index=0, fields={"short_message": b"hi", **fields}, tlvs=())
    with pytest.raises(InvalidArgument) as refused:
        encode_submission(pdu, 1)
    assert refused.value.field == field
