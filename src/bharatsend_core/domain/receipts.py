"""Delivery receipts: SMPP ``deliver_sm`` receipt text and TLVs in, a :class:`Receipt` out.

Sans-I/O (STYLE.md rule 7): the functions here take ``bytes``/``str`` and plain
TLV values and return frozen values. No socket, clock or logging; the SMPP
session hands us what smpplib decoded and answers ``deliver_sm`` itself.

**Text.** SMPP 3.4 Appendix B gives a template,
``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
stat:DDDDDDD err:E text:...``, but calls it vendor-specific, and aggregators
vary it: ``Text:``, 12-digit dates, 24-hex or UUID ids, zero-padded ids,
``stat:ACKED``, fields in another order, extra vendor fields. So, as Jasmin
does, every field is found by its own small regex and the whole template is
never required. Keys are case-insensitive and must start the receipt or
follow whitespace, ``,`` or ``;``. ``text:`` is the receipt's last field: it
runs to the end, and the other fields are searched only *before* it, so the
echo of the message text can never forge an id or a state.

**TLVs win over text** (SMPP.md §0.6, §1.4): ``receipted_message_id``
(0x001E, C-string), ``message_state`` (0x0427, 1 octet, the table in
:data:`MESSAGE_STATES`) and ``network_error_code`` (0x0423, 3 octets: network
type, then a 2-octet error). A receipt text carried in ``message_payload``
with an empty ``short_message`` is read the same way.

**Failure.** :class:`~bharatsend_core.domain.errors.ReceiptParseError` is the
only exception that leaves :func:`parse_receipt`, whatever the input; it is
raised when neither TLVs nor text give both an id and a state. Anything less
serious (a bad date, a malformed TLV, text and TLV disagreeing) is dropped to
``None`` and described in :attr:`Receipt.warnings`, which never quote the
message text.

**Ids** (SMPP.md §1.8): keep the raw id; match exact first, then through the
route's :class:`IdMode`, the idea of Kannel's ``msg-id-type``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType

from attrs import field, frozen

from bharatsend_core.domain.errors import ReceiptParseError
from bharatsend_core.domain.message import ReceiptOutcome

__all__ = [
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

# --------------------------------------------------------------------------- stats

_STATS: Mapping[str, ReceiptOutcome] = MappingProxyType(
    {
        "DELIVRD": ReceiptOutcome.DELIVERED,
        "DELIVERED": ReceiptOutcome.DELIVERED,
        "UNDELIV": ReceiptOutcome.UNDELIVERED,
        "UNDELIVERABLE": ReceiptOutcome.UNDELIVERED,
        "DELETED": ReceiptOutcome.UNDELIVERED,
        "UNKNOWN": ReceiptOutcome.UNDELIVERED,
        "FAILED": ReceiptOutcome.UNDELIVERED,
        # SMPP 5.0 message_state 9: the SMSC skipped the message; it will not arrive.
        "SKIPPED": ReceiptOutcome.UNDELIVERED,
        "EXPIRED": ReceiptOutcome.EXPIRED,
        "REJECTD": ReceiptOutcome.REJECTED,
        "REJECTED": ReceiptOutcome.REJECTED,
        "ENROUTE": ReceiptOutcome.ENROUTE,
        # Kannel treats these non-standard stats as buffered (SMPP.md §1.4).
        "ACCEPTD": ReceiptOutcome.BUFFERED,
        "ACCEPTED": ReceiptOutcome.BUFFERED,
        "ACKED": ReceiptOutcome.BUFFERED,
        "BUFFRED": ReceiptOutcome.BUFFERED,
        "BUFFERD": ReceiptOutcome.BUFFERED,
        "BUFFERED": ReceiptOutcome.BUFFERED,
    }
)

#: ``message_state`` TLV value -> (receipt stat, outcome); SMPP 3.4 §5.2.28.
#: 1-8 are SMPP 3.4; 9 (SKIPPED) is SMPP 5.0 and seen from newer SMSCs.
MESSAGE_STATES: Mapping[int, tuple[str, ReceiptOutcome]] = MappingProxyType(
    {
        1: ("ENROUTE", ReceiptOutcome.ENROUTE),
        2: ("DELIVRD", ReceiptOutcome.DELIVERED),
        3: ("EXPIRED", ReceiptOutcome.EXPIRED),
        4: ("DELETED", ReceiptOutcome.UNDELIVERED),
        5: ("UNDELIV", ReceiptOutcome.UNDELIVERED),
        6: ("ACCEPTD", ReceiptOutcome.BUFFERED),
        7: ("UNKNOWN", ReceiptOutcome.UNDELIVERED),
        8: ("REJECTD", ReceiptOutcome.REJECTED),
        9: ("SKIPPED", ReceiptOutcome.UNDELIVERED),
    }
)


def _is_nonzero_error(error_code: str | None) -> bool:
    return error_code is not None and error_code.strip().strip("0") != ""


def normalise_stat(stat: str, *, error_code: str | None = None) -> ReceiptOutcome:
    """Map a receipt ``stat`` (any case) to a :class:`ReceiptOutcome`.

    Known stats follow SMPP 3.4 Appendix B plus the vendor spellings Kannel
    accepts (``ACKED``, ``BUFFRED``, ``BUFFERD`` are buffered). An unknown stat
    is ``undelivered`` only when ``error_code`` is non-zero: the carrier then
    told us it failed, just in its own words. With no error we cannot tell a
    success from a failure, so guessing would corrupt billing and reports;
    :class:`ReceiptParseError` is raised instead and the session should log
    the PDU.
    """
    key = stat.strip().upper()
    outcome = _STATS.get(key)
    if outcome is not None:
        return outcome
    if _is_nonzero_error(error_code):
        return ReceiptOutcome.UNDELIVERED
    raise ReceiptParseError(
        "unknown receipt stat with no error code; add it to the route's stat table "
        "or ask the aggregator what it means",
        field="stat",
        detail={"stat": key[:16]},
    )


# --------------------------------------------------------------------------- receipt


@frozen
class Receipt:
    """One delivery receipt, normalised, with the carrier's raw values kept.

    Raw values (``message_id``, ``stat``, ``error_code``) are kept because ids
    and error codes are per-aggregator dialects: matching and DLT mapping
    happen later with the route's tables. ``text`` is the echo of the message
    (possibly an OTP), so it is ``repr=False`` and never appears in warnings.
    """

    #: The carrier's id exactly as received (TLV or text); see :func:`normalise_message_id`.
    message_id: str
    #: The raw stat (``DELIVRD``...) or the one derived from ``message_state``.
    stat: str
    #: The normalised outcome the message state machine consumes.
    outcome: ReceiptOutcome
    #: The raw ``err:`` value or the decoded ``network_error_code``; ``"000"`` is kept.
    error_code: str | None = None
    #: ``submit date`` as an aware datetime in the route's timezone, or None.
    submitted_at: datetime | None = None
    #: ``done date`` as an aware datetime in the route's timezone, or None.
    done_at: datetime | None = None
    #: ``dlvrd:``; unreliable in the wild (``dlvrd:000`` with ``stat:DELIVRD``).
    delivered_parts: int | None = None
    #: ``sub:``.
    submitted_parts: int | None = None
    #: The receipt's ``text:`` field; never logged.
    text: str | None = field(default=None, repr=False)
    #: Where the fields came from: ``"tlv"``, ``"text"`` or ``"mixed"``.
    source: str = "text"
    #: Where ``message_id`` came from (``"tlv"`` or ``"text"``): the TLV carries the
    #: ``submit_sm_resp`` spelling, the text ``id:`` the receipt spelling.
    id_source: str = "text"
    #: Non-fatal problems (bad dates, malformed TLVs, conflicts); never quote ``text``.
    warnings: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        """True when the error code is present and not all zeros (``000``, ``0``)."""
        return _is_nonzero_error(self.error_code)


# --------------------------------------------------------------------------- parsing


def _key(literal: str) -> str:
    """``literal``, where it starts the receipt or follows a separator (``msgid:`` is not
    ``id:``).

    The literal comes first and the boundary is checked looking back from its
    end, so the regex engine scans for the literal instead of trying a
    boundary assertion at every position (a whole parse: 22 -> 12 us).
    """
    return f"{literal}(?<=(?<![^\\s,;]){literal})"


_FLAGS = re.IGNORECASE | re.ASCII
_ID_RE = re.compile(_key("id:") + r"([0-9A-Za-z_-]+)", _FLAGS)
_SUB_RE = re.compile(_key("sub:") + r"(\d+)", _FLAGS)
_DLVRD_RE = re.compile(_key("dlvrd:") + r"(\d+)", _FLAGS)
_SUBMIT_RE = re.compile(_key("submit") + r"[ _]?date:(\d+)", _FLAGS)
_DONE_RE = re.compile(_key("done") + r"[ _]?date:(\d+)", _FLAGS)
_STAT_RE = re.compile(_key("stat:") + r"([A-Za-z_]+)", _FLAGS)
_ERR_RE = re.compile(_key("err:") + r"([0-9A-Za-z]+)", _FLAGS)
_TEXT_RE = re.compile(_key("text:"), _FLAGS)

_MAX_COUNT_DIGITS = 6
_MAX_ID_LENGTH = 64


def _decode(raw: bytes | bytearray | str, what: str) -> str:
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            # Receipts are ASCII; latin-1 never fails and keeps the ASCII keys readable.
            text = bytes(raw).decode("latin-1")
    else:
        raise ReceiptParseError(
            f"{what} must be bytes or str, got {type(raw).__name__}", field=what
        )
    return text.rstrip("\x00")


def _parse_date(value: str, key: str, tz: tzinfo, warnings: list[str]) -> datetime | None:
    # Appendix B says YYMMDDhhmm; many SMSCs add seconds. Years are 20YY: a
    # receipt is about a message sent moments ago.
    if len(value) not in (10, 12):
        warnings.append(f"{key}: {len(value)} digits, expected YYMMDDhhmm[ss]; ignored")
        return None
    second = int(value[10:12]) if len(value) == 12 else 0
    try:
        return datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            second,
            tzinfo=tz,
        )
    except ValueError:
        warnings.append(f"{key}: {value!r} is not a valid date; ignored")
        return None


def _parse_count(value: str, key: str, warnings: list[str]) -> int | None:
    if len(value) > _MAX_COUNT_DIGITS:
        warnings.append(f"{key}: {len(value)} digits is not a part count; ignored")
        return None
    return int(value)


def _tlv_id(value: object, warnings: list[str]) -> str | None:
    if isinstance(value, bytes | bytearray):
        # A C-string: the value ends at the first NUL.
        raw = bytes(value).split(b"\x00", 1)[0]
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            warnings.append("receipted_message_id TLV is not ASCII; ignored")
            return None
    elif isinstance(value, str):
        text = value.split("\x00", 1)[0]
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        text = str(value) if value.bit_length() < 256 else ""
    else:
        warnings.append("receipted_message_id TLV has an unusable type; ignored")
        return None
    text = text.strip()
    if not text:
        return None
    if not text.isprintable() or len(text) > _MAX_ID_LENGTH:
        warnings.append("receipted_message_id TLV is not a printable id; ignored")
        return None
    return text


def _tlv_state(value: object, warnings: list[str]) -> tuple[str, ReceiptOutcome] | None:
    state: int | None = None
    if isinstance(value, bool):
        state = None
    elif isinstance(value, int):
        state = value
    elif isinstance(value, bytes | bytearray):
        if len(value) == 1:
            state = value[0]
        elif value.strip(b"\x00 ").isdigit() and len(value) < 4:
            state = int(value.strip(b"\x00 "))
    elif isinstance(value, str) and value.strip().isdecimal() and len(value) < 4:
        state = int(value.strip())
    entry = MESSAGE_STATES.get(state) if state is not None else None
    if entry is None:
        warnings.append("message_state TLV is not 1-9; ignored")
    return entry


def _tlv_network_error(value: object, warnings: list[str]) -> str | None:
    # SMPP 3.4 §5.3.2.31: octet 1 is the network type (1 ANSI-136, 2 IS-95,
    # 3 GSM...), octets 2-3 the network's error code, big-endian.
    if isinstance(value, bytes | bytearray):
        if len(value) == 3:
            return str(int.from_bytes(value[1:3], "big"))
        warnings.append("network_error_code TLV is not 3 octets; ignored")
        return None
    # An int or str is taken as already decoded by the SMPP library.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 24:
        return str(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isalnum():
        return value.strip()[:16]
    warnings.append("network_error_code TLV has an unusable value; ignored")
    return None


def _search(pattern: re.Pattern[str], head: str) -> str | None:
    match = pattern.search(head)
    return match.group(1) if match else None


def parse_receipt(
    short_message: bytes | str,
    *,
    tlvs: Mapping[str, bytes | int | str] | None = None,
    tz: tzinfo = UTC,
) -> Receipt:
    """Parse one delivery receipt from its ``short_message`` and TLVs.

    ``tlvs`` maps smpplib's TLV names (``receipted_message_id``,
    ``message_state``, ``network_error_code``, ``message_payload``) to their
    values; other names are ignored. TLVs win over the text. The text is
    ``short_message``, or ``message_payload`` when ``short_message`` is blank.
    Dates are read in ``tz`` (the aggregator's clock; many Indian SMSCs use
    IST) and returned aware.

    Raises :class:`ReceiptParseError` when no id or no state can be found,
    and for nothing else.
    """
    if tlvs is None:
        tlvs = {}
    if not isinstance(tlvs, Mapping):
        raise ReceiptParseError("tlvs must be a mapping of TLV name to value", field="tlvs")
    warnings: list[str] = []
    text = _decode(short_message, "short_message")
    if not text.strip() and "message_payload" in tlvs:
        payload = tlvs["message_payload"]
        text = _decode(payload, "message_payload") if not isinstance(payload, int) else ""

    # Split off the echoed message text first: only the head holds fields.
    text_match = _TEXT_RE.search(text)
    head = text[: text_match.start()] if text_match else text
    echo = text[text_match.end() :] if text_match else None

    text_id = _search(_ID_RE, head)
    text_stat = _search(_STAT_RE, head)
    text_err = _search(_ERR_RE, head)

    tlv_id = (
        _tlv_id(tlvs["receipted_message_id"], warnings) if "receipted_message_id" in tlvs else None
    )
    tlv_state = _tlv_state(tlvs["message_state"], warnings) if "message_state" in tlvs else None
    tlv_err = (
        _tlv_network_error(tlvs["network_error_code"], warnings)
        if "network_error_code" in tlvs
        else None
    )

    used_tlv = tlv_id is not None or tlv_state is not None or tlv_err is not None
    error_code = tlv_err if tlv_err is not None else text_err
    message_id = tlv_id if tlv_id is not None else text_id
    if message_id is None:
        raise ReceiptParseError(
            "delivery receipt has no message id (no receipted_message_id TLV, no id: field)",
            field="id",
        )
    if tlv_id is not None and text_id is not None and tlv_id != text_id:
        # Common and harmless: hex in the TLV, decimal or truncated in the text.
        warnings.append("id: differs from receipted_message_id; the TLV wins")

    if tlv_state is not None:
        stat, outcome = tlv_state
        if text_stat is not None and _STATS.get(text_stat.upper()) not in (None, outcome):
            warnings.append("stat: conflicts with message_state; the TLV wins")
    elif text_stat is not None:
        stat, outcome = text_stat, normalise_stat(text_stat, error_code=error_code)
        if text_stat.upper() not in _STATS:
            warnings.append("unknown stat with a non-zero error; taken as undelivered")
    else:
        raise ReceiptParseError(
            "delivery receipt has no state (no message_state TLV, no stat: field)", field="stat"
        )

    submit_date = _search(_SUBMIT_RE, head)
    done_date = _search(_DONE_RE, head)
    sub = _search(_SUB_RE, head)
    dlvrd = _search(_DLVRD_RE, head)
    used_text = any(
        value is not None
        for value in (
            text_id if tlv_id is None else None,
            text_stat if tlv_state is None else None,
            text_err if tlv_err is None else None,
            submit_date,
            done_date,
            sub,
            dlvrd,
            echo,
        )
    )
    source = "mixed" if used_tlv and used_text else ("tlv" if used_tlv else "text")
    return Receipt(
        message_id=message_id,
        stat=stat,
        outcome=outcome,
        error_code=error_code,
        submitted_at=_parse_date(submit_date, "submit date", tz, warnings) if submit_date else None,
        done_at=_parse_date(done_date, "done date", tz, warnings) if done_date else None,
        delivered_parts=_parse_count(dlvrd, "dlvrd", warnings) if dlvrd else None,
        submitted_parts=_parse_count(sub, "sub", warnings) if sub else None,
        text=echo,
        source=source,
        id_source="tlv" if tlv_id is not None else "text",
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- ids


class IdMode(enum.StrEnum):
    """How one aggregator spells message ids; chosen per route (Kannel's ``msg-id-type``).

    The ``submit_sm_resp`` id (and the ``receipted_message_id`` TLV, which
    SMPP 3.4 says repeats it) is the *response* spelling; the text ``id:`` is
    the *receipt* spelling. The canonical form is the receipt spelling.
    """

    #: Plain string comparison: the default, and right for most aggregators.
    EXACT = "exact"
    #: Case and leading zeros do not matter (zero-padded or upper-case hex ids).
    LOWER_NO_ZEROS = "lower_no_zeros"
    #: Responses are hex, receipts decimal: ``0A1B2C3D`` is ``169552957``.
    HEX_TO_DECIMAL = "hex_to_decimal"
    #: Responses are decimal, receipts hex: ``169552957`` is ``a1b2c3d``.
    DECIMAL_TO_HEX = "decimal_to_hex"


_HEX_RE = re.compile(r"[0-9A-Fa-f]{1,64}")
_DEC_RE = re.compile(r"[0-9]{1,64}")


def _lower_no_zeros(raw: str) -> str:
    return raw.lower().lstrip("0") or ("0" if raw else "")


def normalise_message_id(raw: str, *, mode: IdMode = IdMode.EXACT) -> str:
    """The canonical form of a *response-spelled* id under ``mode``.

    ``EXACT`` returns ``raw``; ``LOWER_NO_ZEROS`` lower-cases and strips
    leading zeros (``"000"`` -> ``"0"``). The two conversions return the
    receipt spelling (``HEX_TO_DECIMAL``: ``"0A1B2C3D"`` -> ``"169552957"``;
    ``DECIMAL_TO_HEX``: the reverse, lower-case). A conversion is not
    idempotent by nature (``"169552957"`` read as hex is another number), but
    its result is a fixed point of ``LOWER_NO_ZEROS``. An id that is not in
    the expected base (a UUID, say) falls back to ``LOWER_NO_ZEROS``, so it
    still matches itself and never raises.
    """
    if mode is IdMode.EXACT:
        return raw
    if mode is IdMode.HEX_TO_DECIMAL and _HEX_RE.fullmatch(raw):
        return str(int(raw, 16))
    if mode is IdMode.DECIMAL_TO_HEX and _DEC_RE.fullmatch(raw):
        return format(int(raw, 10), "x")
    return _lower_no_zeros(raw)


def _receipt_side(raw: str, mode: IdMode) -> str:
    return raw if mode is IdMode.EXACT else _lower_no_zeros(raw)


def ids_match(response_id: str, receipt_id: str, mode: IdMode = IdMode.EXACT) -> bool:
    """True when a ``submit_sm_resp`` id and a receipt's text ``id:`` name one message.

    Exact equality always matches (SMPP.md §1.8: match exact first); then the
    response id is converted with ``mode`` and compared with the receipt id
    under ``LOWER_NO_ZEROS``.
    """
    if response_id == receipt_id:
        return True
    return normalise_message_id(response_id, mode=mode) == _receipt_side(receipt_id, mode)


def dedup_key(route: str, receipt: Receipt, mode: IdMode = IdMode.EXACT) -> tuple[str, str, str]:
    """``(route, canonical id, outcome)``: equal for the same receipt delivered twice.

    The id is canonicalised by where it came from: a TLV id has the response
    spelling and is converted with ``mode``; a text id is already the receipt
    spelling. So under ``HEX_TO_DECIMAL`` a receipt identified by the TLV
    ``0A1B2C3D`` and a copy identified by ``id:169552957`` share one key.
    """
    if receipt.id_source == "tlv":
        canonical = normalise_message_id(receipt.message_id, mode=mode)
    else:
        canonical = _receipt_side(receipt.message_id, mode)
    return (route, canonical, receipt.outcome.value)


# --------------------------------------------------------------------------- DLT


def _dlt_defaults() -> dict[int, str]:
    table: dict[int, str] = {}
    # DLT.md "Receipt error codes from DLT scrubbing"; reasons reuse the dlt_* error codes.
    table.update(dict.fromkeys(range(600, 606), "dlt_entity_invalid"))
    table.update(dict.fromkeys(range(610, 620), "dlt_chain_invalid"))
    table.update(dict.fromkeys(range(620, 626), "dlt_header_invalid"))
    table.update(dict.fromkeys(range(630, 638), "dlt_template_invalid"))
    table[633] = "dlt_template_mismatch"
    table[635] = "dlt_variable_too_long"
    table[642] = "dlt_cta_not_whitelisted"
    table[650] = "dlt_dnd_blocked"
    table[651] = "dlt_promotional_window"
    table[660] = "dlt_consent_missing"
    table[670] = "dlt_scrubbing_failed"
    return table


#: Receipt ``err`` code -> failure reason for DLT scrubbing rejections (the
#: operators' numbering). Routes whose vendor renumbers pass their own table.
DEFAULT_DLT_ERRORS: Mapping[int, str] = MappingProxyType(_dlt_defaults())

#: A vendor renumbering seen from Indian aggregators (DLT.md, SMPP.md §1.4):
#: merge it per route, ``{**DEFAULT_DLT_ERRORS, **VENDOR_DLT_ERRORS_EXAMPLE}``.
#: Not a default: 408 or 453 mean other things elsewhere.
VENDOR_DLT_ERRORS_EXAMPLE: Mapping[int, str] = MappingProxyType(
    {
        453: "dlt_template_unknown",  # template not allotted to the entity
        454: "dlt_header_unknown",  # sender (header) not allotted
        408: "dlt_dnd_blocked",  # DND / preference
    }
)


@frozen
class DltRejection:
    """A receipt error code recognised as a DLT scrubbing rejection.

    ``reason`` is a stable string (mostly a ``dlt_*`` error code) that
    reports and webhooks group by; ``code`` is the carrier's number, kept
    because the same reason can have several codes.
    """

    #: The carrier's error code as a number.
    code: int
    #: The stable reason, e.g. ``"dlt_template_mismatch"``.
    reason: str

    @classmethod
    def from_error_code(
        cls, error_code: str | None, table: Mapping[int, str] = DEFAULT_DLT_ERRORS
    ) -> DltRejection | None:
        """The rejection for ``error_code`` under ``table``, or None when it is not one."""
        if error_code is None:
            return None
        digits = error_code.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            return None
        code = int(digits)
        reason = table.get(code)
        return cls(code=code, reason=reason) if reason is not None else None


def dlt_reason(error_code: str | None, table: Mapping[int, str] = DEFAULT_DLT_ERRORS) -> str | None:
    """The stable DLT failure reason for a receipt error code, or None.

    ``"633"`` -> ``"dlt_template_mismatch"`` with the default table;
    ``"000"``, vendor codes missing from ``table`` and non-numeric codes give None.
    """
    rejection = DltRejection.from_error_code(error_code, table)
    return rejection.reason if rejection is not None else None
