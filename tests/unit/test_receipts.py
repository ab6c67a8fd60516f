"""Delivery receipt parsing, id matching and DLT reasons (domain/receipts.py)."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain import receipts as rc
from bharatsend_core.domain.errors import ReceiptParseError, ValidationError
from bharatsend_core.domain.message import ReceiptOutcome
from bharatsend_core.domain.receipts import (
    DEFAULT_DLT_ERRORS,
    MESSAGE_STATES,
    VENDOR_DLT_ERRORS_EXAMPLE,
    DltRejection,
    IdMode,
    Receipt,
    dedup_key,
    dlt_reason,
    ids_match,
    normalise_message_id,
    normalise_stat,
    parse_receipt,
)

IST = timezone(timedelta(hours=5, minutes=30), "IST")

APPENDIX_B = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 "
    b"stat:DELIVRD err:000 text:Your OTP is 482913"
)
SMPPLIB_19 = (
    "id:03a37b2756fb8fe70005a15c sub:001 dlvrd:000 submit date:160330083551 "
    "done date:160330083552 stat:DELIVRD err:000 text:"
)


# --------------------------------------------------------------------------- vectors


def test_appendix_b_template_parses_every_field() -> None:
    r = parse_receipt(APPENDIX_B)
    assert r.message_id == "0123456789"
    assert r.stat == "DELIVRD"
    assert r.outcome is ReceiptOutcome.DELIVERED
    assert r.error_code == "000"
    assert not r.is_error
    assert r.submitted_at == datetime(2024, 3, 15, 12, 30, tzinfo=UTC)
    assert r.done_at == datetime(2024, 3, 15, 12, 31, tzinfo=UTC)
    assert r.submitted_parts == 1
    assert r.delivered_parts == 1
    assert r.text == "Your OTP is 482913"
    assert r.source == "text"
    assert r.id_source == "text"
    assert r.warnings == ()


def test_capital_text_key_variant_is_read() -> None:
    r = parse_receipt("id:42 sub:001 dlvrd:001 stat:DELIVRD err:000 Text:hello")
    assert r.text == "hello"


def test_twelve_digit_dates_with_seconds_and_24_hex_ids_from_smpplib_19() -> None:
    r = parse_receipt(SMPPLIB_19)
    assert r.message_id == "03a37b2756fb8fe70005a15c"
    assert r.submitted_at == datetime(2016, 3, 30, 8, 35, 51, tzinfo=UTC)
    assert r.done_at == datetime(2016, 3, 30, 8, 35, 52, tzinfo=UTC)
    assert r.delivered_parts == 0  # dlvrd:000 with DELIVRD: seen in the wild, outcome wins
    assert r.outcome is ReceiptOutcome.DELIVERED
    assert r.text == ""


def test_dates_are_read_in_the_given_timezone_and_are_aware() -> None:
    r = parse_receipt(APPENDIX_B, tz=IST)
    assert r.done_at is not None
    assert r.done_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert r.done_at.astimezone(UTC) == datetime(2024, 3, 15, 7, 1, tzinfo=UTC)


def test_uuid_ids_are_kept_whole() -> None:
    uid = "3f2b8a1e-9c4d-4e5f-8a6b-7c8d9e0f1a2b"
    r = parse_receipt(f"id:{uid} sub:001 dlvrd:001 stat:UNDELIV err:001 text:x")
    assert r.message_id == uid
    assert r.outcome is ReceiptOutcome.UNDELIVERED
    assert r.is_error


def test_zero_padded_ids_are_kept_raw() -> None:
    r = parse_receipt("id:0000012345 stat:DELIVRD err:000")
    assert r.message_id == "0000012345"
    assert normalise_message_id(r.message_id, mode=IdMode.LOWER_NO_ZEROS) == "12345"


@pytest.mark.parametrize(
    ("err", "reason"),
    [("453", "dlt_template_unknown"), ("454", "dlt_header_unknown"), ("408", "dlt_dnd_blocked")],
)
def test_indian_vendor_err_codes_map_through_a_per_route_table(err: str, reason: str) -> None:
    r = parse_receipt(f"id:77 sub:001 dlvrd:000 stat:REJECTD err:{err} text:")
    assert r.outcome is ReceiptOutcome.REJECTED
    assert r.error_code == err
    assert dlt_reason(r.error_code) is None  # not in the default table
    assert dlt_reason(r.error_code, {**DEFAULT_DLT_ERRORS, **VENDOR_DLT_ERRORS_EXAMPLE}) == reason


@pytest.mark.parametrize("stat", ["ACKED", "BUFFRED", "BUFFERD", "ACCEPTD", "acked"])
def test_non_standard_buffered_stats_are_intermediate(stat: str) -> None:
    r = parse_receipt(f"id:1 stat:{stat} err:000")
    assert r.outcome is ReceiptOutcome.BUFFERED
    assert not r.outcome.is_final
    assert r.stat == stat


def test_fields_in_any_order_with_unknown_vendor_fields_and_upper_case_keys() -> None:
    r = parse_receipt(
        "STAT:EXPIRED vendor:abc ERR:000 Done Date:2401020304 ID:99 Submit Date:2401010000 "
        "DLVRD:000 SUB:002 text:later"
    )
    assert r.message_id == "99"
    assert r.outcome is ReceiptOutcome.EXPIRED
    assert r.done_at == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    assert r.submitted_at == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert r.submitted_parts == 2


def test_message_text_cannot_forge_id_or_state() -> None:
    r = parse_receipt("id:5 stat:UNDELIV err:021 text:id:6 stat:DELIVRD")
    assert r.message_id == "5"
    assert r.outcome is ReceiptOutcome.UNDELIVERED


def test_key_inside_another_word_is_not_a_field() -> None:
    with pytest.raises(ReceiptParseError):
        parse_receipt("msgid:5 stat:DELIVRD")


def test_tlv_only_receipt_with_empty_short_message() -> None:
    r = parse_receipt(
        b"",
        tlvs={
            "receipted_message_id": b"0A1B2C3D\x00",
            "message_state": 2,
            "network_error_code": b"\x03\x00\x00",
        },
    )
    assert r.message_id == "0A1B2C3D"
    assert r.stat == "DELIVRD"
    assert r.outcome is ReceiptOutcome.DELIVERED
    assert r.error_code == "0"
    assert not r.is_error
    assert r.source == "tlv"
    assert r.id_source == "tlv"
    assert r.text is None
    assert r.submitted_at is None


def test_tlvs_override_conflicting_text_and_say_so() -> None:
    r = parse_receipt(
        "id:169552957 stat:DELIVRD err:000 text:",
        tlvs={
            "receipted_message_id": "0A1B2C3D",
            "message_state": b"\x08",
            "network_error_code": b"\x03\x02\x85",
        },
    )
    assert r.message_id == "0A1B2C3D"
    assert r.outcome is ReceiptOutcome.REJECTED
    assert r.stat == "REJECTD"
    assert r.error_code == str(0x0285)
    assert r.source == "mixed"
    assert any("TLV wins" in w for w in r.warnings)


def test_network_error_code_is_type_octet_then_two_octet_code() -> None:
    r = parse_receipt(b"id:1 stat:UNDELIV", tlvs={"network_error_code": b"\x03\x01\xf9"})
    assert r.error_code == "505"
    assert r.is_error


def test_malformed_tlvs_are_warnings_and_text_is_used() -> None:
    r = parse_receipt(
        "id:1 stat:DELIVRD err:000",
        tlvs={"message_state": 42, "network_error_code": b"\x01", "receipted_message_id": b""},
    )
    assert r.outcome is ReceiptOutcome.DELIVERED
    assert r.error_code == "000"
    assert r.message_id == "1"
    assert len(r.warnings) == 2


def test_message_payload_carries_the_text_when_short_message_is_empty() -> None:
    r = parse_receipt(b"", tlvs={"message_payload": b"id:12 stat:EXPIRED err:000 text:x"})
    assert r.message_id == "12"
    assert r.outcome is ReceiptOutcome.EXPIRED
    assert r.source == "text"


def test_trailing_nul_of_a_c_string_short_message_is_dropped() -> None:
    assert parse_receipt(b"id:1 stat:DELIVRD text:hi\x00").text == "hi"


@pytest.mark.parametrize(
    ("state", "stat", "outcome"),
    [(n, s, o) for n, (s, o) in sorted(MESSAGE_STATES.items())],
)
def test_message_state_table_follows_smpp_34(
    state: int, stat: str, outcome: ReceiptOutcome
) -> None:
    r = parse_receipt(b"", tlvs={"receipted_message_id": "x", "message_state": state})
    assert (r.stat, r.outcome) == (stat, outcome)
    assert normalise_stat(stat) is outcome


def test_bad_dates_become_none_with_a_warning() -> None:
    r = parse_receipt("id:1 submit date:2413451230 done date:24031 stat:DELIVRD err:000 text:x")
    assert r.submitted_at is None
    assert r.done_at is None
    assert len(r.warnings) == 2
    assert r.outcome is ReceiptOutcome.DELIVERED


@pytest.mark.parametrize(
    "raw",
    [b"", "", "stat:DELIVRD err:000", "id:1 err:000 text:stat:DELIVRD", "hello", "id: stat:X"],
)
def test_no_id_or_no_state_raises_receipt_parse_error(raw: bytes | str) -> None:
    with pytest.raises(ReceiptParseError) as info:
        parse_receipt(raw)
    assert isinstance(info.value, ValidationError)
    assert info.value.code == "receipt_parse_error"
    assert info.value.http_status == 422


def test_non_bytes_inputs_raise_receipt_parse_error() -> None:
    with pytest.raises(ReceiptParseError):
        parse_receipt(None)  # type: ignore[arg-type]
    with pytest.raises(ReceiptParseError):
        parse_receipt("id:1 stat:DELIVRD", tlvs=[1, 2])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- stats


@pytest.mark.parametrize(
    ("stat", "outcome"),
    [
        ("DELIVRD", ReceiptOutcome.DELIVERED),
        ("UNDELIV", ReceiptOutcome.UNDELIVERED),
        ("DELETED", ReceiptOutcome.UNDELIVERED),
        ("UNKNOWN", ReceiptOutcome.UNDELIVERED),
        ("FAILED", ReceiptOutcome.UNDELIVERED),
        ("EXPIRED", ReceiptOutcome.EXPIRED),
        ("REJECTD", ReceiptOutcome.REJECTED),
        ("REJECTED", ReceiptOutcome.REJECTED),
        ("ENROUTE", ReceiptOutcome.ENROUTE),
        ("delivrd", ReceiptOutcome.DELIVERED),
    ],
)
def test_normalise_stat_vectors(stat: str, outcome: ReceiptOutcome) -> None:
    assert normalise_stat(stat) is outcome


def test_unknown_stat_with_a_non_zero_error_is_undelivered() -> None:
    assert normalise_stat("WEIRDST", error_code="021") is ReceiptOutcome.UNDELIVERED
    r = parse_receipt("id:1 stat:WEIRDST err:021")
    assert r.outcome is ReceiptOutcome.UNDELIVERED
    assert r.stat == "WEIRDST"
    assert r.warnings


@pytest.mark.parametrize("err", [None, "000", "0", ""])
def test_unknown_stat_without_an_error_is_refused(err: str | None) -> None:
    with pytest.raises(ReceiptParseError):
        normalise_stat("WEIRDST", error_code=err)


def test_unknown_stat_without_error_makes_the_receipt_unparseable() -> None:
    with pytest.raises(ReceiptParseError):
        parse_receipt("id:1 stat:WEIRDST err:000")


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("raw", "mode", "expected"),
    [
        ("0A1B2C3D", IdMode.EXACT, "0A1B2C3D"),
        ("0A1B2C3D", IdMode.LOWER_NO_ZEROS, "a1b2c3d"),
        ("0A1B2C3D", IdMode.HEX_TO_DECIMAL, "169552957"),
        ("169552957", IdMode.DECIMAL_TO_HEX, "a1b2c3d"),
        ("000", IdMode.LOWER_NO_ZEROS, "0"),
        ("03a37b2756fb8fe70005a15c", IdMode.HEX_TO_DECIMAL, str(0x03A37B2756FB8FE70005A15C)),
        ("3F2B8A1E-9C4D", IdMode.HEX_TO_DECIMAL, "3f2b8a1e-9c4d"),  # not hex: fallback
        ("ab12", IdMode.DECIMAL_TO_HEX, "ab12"),  # not decimal: fallback
        ("", IdMode.LOWER_NO_ZEROS, ""),
    ],
)
def test_normalise_message_id_vectors(raw: str, mode: IdMode, expected: str) -> None:
    assert normalise_message_id(raw, mode=mode) == expected


def test_ids_match_kannel_example_hex_response_decimal_receipt() -> None:
    assert ids_match("0A1B2C3D", "169552957", IdMode.HEX_TO_DECIMAL)
    assert ids_match("169552957", "0a1b2c3d", IdMode.DECIMAL_TO_HEX)
    assert not ids_match("0A1B2C3D", "169552957", IdMode.EXACT)
    assert not ids_match("0A1B2C3D", "169552958", IdMode.HEX_TO_DECIMAL)


def test_ids_match_exact_first_and_padding_under_lower_no_zeros() -> None:
    assert ids_match("abc", "abc", IdMode.HEX_TO_DECIMAL)
    assert ids_match("00012345", "12345", IdMode.LOWER_NO_ZEROS)
    assert not ids_match("00012345", "12345", IdMode.EXACT)


_ID_CHARS = st.text(alphabet="0123456789abcdefABCDEF-_xyzXYZ", min_size=1, max_size=40)


@given(raw=_ID_CHARS)
def test_normalise_message_id_is_idempotent_for_exact_and_lower_no_zeros(raw: str) -> None:
    for mode in (IdMode.EXACT, IdMode.LOWER_NO_ZEROS):
        once = normalise_message_id(raw, mode=mode)
        assert normalise_message_id(once, mode=mode) == once


@given(raw=_ID_CHARS, mode=st.sampled_from(IdMode))
def test_every_mode_lands_on_a_fixed_point_of_its_receipt_side_form(raw: str, mode: IdMode) -> None:
    # Conversions cannot be idempotent (169552957 read as hex is another number);
    # their output is canonical: normalising it as a receipt id changes nothing.
    once = normalise_message_id(raw, mode=mode)
    receipt_mode = IdMode.EXACT if mode is IdMode.EXACT else IdMode.LOWER_NO_ZEROS
    assert normalise_message_id(once, mode=receipt_mode) == once
    assert ids_match(raw, once, mode)


@given(n=st.integers(min_value=0, max_value=2**96), pad=st.integers(0, 6), upper=st.booleans())
def test_hex_and_decimal_spellings_round_trip(n: int, pad: int, upper: bool) -> None:
    hex_id = "0" * pad + (format(n, "X") if upper else format(n, "x"))
    dec = normalise_message_id(hex_id, mode=IdMode.HEX_TO_DECIMAL)
    assert dec == str(n)
    assert normalise_message_id(dec, mode=IdMode.DECIMAL_TO_HEX) == format(n, "x")
    assert ids_match(hex_id, "0" * pad + str(n), IdMode.HEX_TO_DECIMAL)


@given(
    n=st.integers(min_value=0, max_value=2**64),
    pad=st.integers(0, 4),
    outcome=st.sampled_from(["DELIVRD", "UNDELIV", "ENROUTE"]),
)
def test_dedup_keys_equal_for_hex_tlv_and_decimal_text_spellings_under_hex_to_decimal(
    n: int, pad: int, outcome: str
) -> None:
    via_tlv = parse_receipt(
        f"stat:{outcome}", tlvs={"receipted_message_id": ("0" * pad + format(n, "X")).encode()}
    )
    via_text = parse_receipt(f"id:{'0' * pad}{n} stat:{outcome}")
    mode = IdMode.HEX_TO_DECIMAL
    assert dedup_key("route-a", via_tlv, mode) == dedup_key("route-a", via_text, mode)
    assert dedup_key("route-a", via_text, mode)[1:] == (str(n), normalise_stat(outcome).value)
    assert dedup_key("route-b", via_text, mode) != dedup_key("route-a", via_text, mode)


def test_dedup_key_separates_outcomes_of_one_message() -> None:
    enroute = parse_receipt("id:1 stat:ENROUTE")
    delivered = parse_receipt("id:1 stat:DELIVRD")
    assert dedup_key("r", enroute) != dedup_key("r", delivered)
    assert dedup_key("r", delivered) == ("r", "1", "delivered")


# --------------------------------------------------------------------------- DLT


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        ("600", "dlt_entity_invalid"),
        ("605", "dlt_entity_invalid"),
        ("610", "dlt_chain_invalid"),
        ("619", "dlt_chain_invalid"),
        ("620", "dlt_header_invalid"),
        ("625", "dlt_header_invalid"),
        ("630", "dlt_template_invalid"),
        ("633", "dlt_template_mismatch"),
        ("635", "dlt_variable_too_long"),
        ("637", "dlt_template_invalid"),
        ("642", "dlt_cta_not_whitelisted"),
        ("650", "dlt_dnd_blocked"),
        ("651", "dlt_promotional_window"),
        ("660", "dlt_consent_missing"),
        ("670", "dlt_scrubbing_failed"),
        ("000", None),
        ("606", None),
        ("638", None),
        (None, None),
        ("abc", None),
        ("", None),
    ],
)
def test_dlt_reason_default_table(err: str | None, reason: str | None) -> None:
    assert dlt_reason(err) == reason


def test_dlt_rejection_keeps_the_carrier_code() -> None:
    assert DltRejection.from_error_code("633") == DltRejection(633, "dlt_template_mismatch")
    assert DltRejection.from_error_code("633", {}) is None


# --------------------------------------------------------------------------- properties

_KEYS = {
    "id": "id",
    "sub": "sub",
    "dlvrd": "dlvrd",
    "submit": "submit date",
    "done": "done date",
    "stat": "stat",
    "err": "err",
}


@st.composite
def _receipt_fields(draw: st.DrawFn) -> dict[str, Any]:
    seconds = draw(st.booleans())
    dates = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
    return {
        "id": draw(st.text(alphabet="0123456789abcdefABCDEF-_", min_size=1, max_size=36)),
        "sub": draw(st.integers(0, 999)),
        "dlvrd": draw(st.integers(0, 999)),
        "submit": draw(dates).replace(microsecond=0),
        "done": draw(dates).replace(microsecond=0),
        "seconds": seconds,
        "stat": draw(st.sampled_from(sorted(rc._STATS))),
        "err": draw(st.from_regex(r"[0-9A-Z]{1,3}", fullmatch=True)),
        "order": draw(st.permutations(sorted(_KEYS))),
        "extra": draw(st.booleans()),
        "text": draw(st.one_of(st.none(), st.text(max_size=20))),
        "case": draw(st.sampled_from([str.lower, str.upper, str.title])),
    }


def _format(f: dict[str, Any], key: str) -> str:
    value = f[key]
    if key in ("submit", "done"):
        return str(value.strftime("%y%m%d%H%M%S" if f["seconds"] else "%y%m%d%H%M"))
    if key in ("sub", "dlvrd"):
        return f"{value:03d}"
    return str(value)


@given(f=_receipt_fields(), tz=st.sampled_from([UTC, IST]))
def test_a_generated_receipt_text_parses_back_to_its_fields(f: dict[str, Any], tz: Any) -> None:
    words = [f"{f['case'](_KEYS[k])}:{_format(f, k)}" for k in f["order"]]
    if f["extra"]:
        words.insert(1, "vendor_x:123")
    raw = " ".join(words)
    if f["text"] is not None:
        raw += f" text:{f['text']}"
    r = parse_receipt(raw.encode(), tz=tz)
    assert r.message_id == f["id"]
    assert r.stat == f["stat"]
    assert r.outcome is rc._STATS[f["stat"]]
    assert r.error_code == f["err"]
    assert r.submitted_parts == f["sub"]
    assert r.delivered_parts == f["dlvrd"]
    submit = f["submit"] if f["seconds"] else f["submit"].replace(second=0)
    done = f["done"] if f["seconds"] else f["done"].replace(second=0)
    assert r.submitted_at == submit.replace(tzinfo=tz)
    assert r.done_at == done.replace(tzinfo=tz)
    assert r.text == (None if f["text"] is None else f["text"].rstrip("\x00"))
    assert r.warnings == ()


_TLV_VALUES = st.one_of(st.binary(max_size=12), st.integers(), st.text(max_size=12))
_TLV_NAMES = st.sampled_from(
    ["receipted_message_id", "message_state", "network_error_code", "message_payload", "other"]
)


@given(
    raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)),
    tlvs=st.one_of(st.none(), st.dictionaries(_TLV_NAMES, _TLV_VALUES, max_size=5)),
)
def test_fuzzed_input_only_ever_raises_receipt_parse_error(
    raw: bytes | str, tlvs: dict[str, Any] | None
) -> None:
    try:
        r = parse_receipt(raw, tlvs=tlvs)
    except ReceiptParseError:
        return
    assert r.message_id
    assert isinstance(r.outcome, ReceiptOutcome)
    assert r.source in ("tlv", "text", "mixed")


_FIELDISH = st.lists(
    st.sampled_from(
        [
            "id:",
            "stat:",
            "err:",
            "sub:",
            "dlvrd:",
            "submit date:",
            "done date:",
            "text:",
            "Text:",
            " ",
            "DELIVRD",
            "WEIRD",
            "0",
            "9",
            "99999999999999",
            "ab",
            "-",
            "\x00",
            "é",
        ]
    ),
    max_size=30,
).map("".join)


@given(raw=_FIELDISH, tlvs=st.dictionaries(_TLV_NAMES, _TLV_VALUES, max_size=5))
def test_fuzzed_receipt_like_text_only_ever_raises_receipt_parse_error(
    raw: str, tlvs: dict[str, Any]
) -> None:
    with contextlib.suppress(ReceiptParseError):
        parse_receipt(raw, tlvs=tlvs, tz=IST)


# The key patterns as first written: a boundary assertion, then the key. The
# parser's own put the literal first (faster); both must find the same field.
_BOUNDARY_FIRST = {
    "_ID_RE": r"id:([0-9A-Za-z_-]+)",
    "_SUB_RE": r"sub:(\d+)",
    "_DLVRD_RE": r"dlvrd:(\d+)",
    "_SUBMIT_RE": r"submit[ _]?date:(\d+)",
    "_DONE_RE": r"done[ _]?date:(\d+)",
    "_STAT_RE": r"stat:([A-Za-z_]+)",
    "_ERR_RE": r"err:([0-9A-Za-z]+)",
    "_TEXT_RE": r"text:",
}
_SEPARATED = st.lists(
    _FIELDISH | st.sampled_from([",", ";", "\t", "\n", "msg", "x", "_", "submit_date:", "Stat:"]),
    max_size=8,
).map("".join)


@given(raw=_SEPARATED)
def test_key_patterns_find_what_the_boundary_first_patterns_find(raw: str) -> None:
    for name, body in _BOUNDARY_FIRST.items():
        reference = re.compile(r"(?:^|(?<=[\s,;]))" + body, re.IGNORECASE | re.ASCII)
        ours = getattr(rc, name)
        want, got = reference.search(raw), ours.search(raw)
        assert (want and (want.span(), want.groups())) == (got and (got.span(), got.groups())), name


@given(text=st.text(min_size=1, max_size=40))
def test_receipt_text_never_appears_in_repr(text: str) -> None:
    r = Receipt(message_id="1", stat="DELIVRD", outcome=ReceiptOutcome.DELIVERED, text=text)
    assert "text=" not in repr(r)
    parsed = parse_receipt("id:1 stat:DELIVRD text:SECRET-OTP-482913")
    assert "SECRET" not in repr(parsed)
    assert all("SECRET" not in w for w in parsed.warnings)


def test_public_names_are_pinned_and_documented() -> None:
    assert sorted(rc.__all__) == sorted(
        [
            "DEFAULT_DLT_ERRORS",
            "MESSAGE_STATES",
            "VENDOR_DLT_ERRORS_EXAMPLE",
            "DltRejection",
            "IdMode",
            "Receipt",
            "dedup_key",
            "dlt_reason",
            "ids_match",
            "normalise_message_id",
            "normalise_stat",
            "parse_receipt",
        ]
    )
    for name in rc.__all__:
        obj = getattr(rc, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name
