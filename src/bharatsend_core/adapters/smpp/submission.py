"""Turn a :class:`~bharatsend_core.domain.message.Message` into SMPP ``submit_sm`` PDUs.

:func:`build_submissions` is pure: it segments the content with the domain
(never with ``smpplib.gsm.make_parts``, which can split an escape or a
surrogate pair, SMPP.md §0.4), picks the source TON/NPI from the header kind,
computes the relative ``validity_period`` from ``expires_at`` and builds the
India DLT TLVs (PE ID, template ID, optional chain hash; SMPP.md §1.9, DLT.md
"On the wire"). Its output, :class:`SubmitPdu`, is plain data a test can
compare field by field.

:func:`encode_submission` writes a ``submit_sm`` to bytes itself: the
session's hot path. smpplib's generic encoder costs about 40-70 µs a PDU
(every field looked up by name, the body grown by concatenation, and the
whole PDU hex-encoded for a debug log line that would quote the text), which
was a sixth of a worker's time per message; this one is a few microseconds
and never logs. A test holds it byte for byte equal to smpplib's output.

:func:`send_submission` writes through smpplib instead (tests use it as the
reference). smpplib cannot send vendor TLVs as keyword arguments, so the TLV
block is appended to that one PDU's body (SMPP.md §3, approach A): no
process-wide monkeypatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import Any, Final

import smpplib.smpp
from attrs import field, frozen

from bharatsend_core.adapters.smpp.pdu import SUBMIT_SM, encode_pdu, encode_tlv
from bharatsend_core.domain.encoding import encode_parts, segment
from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.message import Message
from bharatsend_core.domain.routing import DEFAULT_DLT_TLVS

__all__ = [
    "DEFAULT_DLT_TLVS",
    "SubmitPdu",
    "WireSettings",
    "build_submissions",
    "encode_submission",
    "send_submission",
    "validity_period",
]


# SMPP 3.4 §5.3.2: tags 0x1400-0x3FFF are vendor specific; the DLT TLVs live there.
_VENDOR_TAG_MIN = 0x1400
_VENDOR_TAG_MAX = 0x3FFF
_REQUIRED_TLV_KEYS = frozenset({"pe_id", "template_id"})
_TLV_KEYS = _REQUIRED_TLV_KEYS | {"chain"}
_TLV_ORDER = ("pe_id", "template_id", "chain")
_ESM_UDHI = 0x40
# SMPP 3.4 §5.2.8: source_addr is a C-octet string of at most 21 octets incl. NUL.
_MAX_SOURCE_ADDR = 20
_ALPHA_HEADER_LENGTH = 6


def _frozen_tags(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


def _check_tags(_instance: object, _attribute: object, value: Mapping[str, int]) -> None:
    keys = set(value)
    if not _REQUIRED_TLV_KEYS.issubset(keys) or not keys.issubset(_TLV_KEYS):
        raise InvalidArgument(
            "dlt_tlvs must map 'pe_id' and 'template_id' (and optionally 'chain') to tags, "
            f"got keys {sorted(keys)}",
            field="dlt_tlvs",
            detail={"keys": ",".join(sorted(keys))},
        )
    for key, tag in value.items():
        if (
            not isinstance(tag, int)
            or isinstance(tag, bool)
            or not _VENDOR_TAG_MIN <= tag <= _VENDOR_TAG_MAX
        ):
            raise InvalidArgument(
                f"dlt_tlvs[{key!r}] must be a vendor TLV tag 0x1400-0x3FFF, got {tag!r}",
                field="dlt_tlvs",
                detail={"key": key},
            )
    if len(set(value.values())) != len(value):
        raise InvalidArgument(
            "dlt_tlvs tags must be distinct (each DLT identifier needs its own TLV)",
            field="dlt_tlvs",
        )


def _octet(_instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise InvalidArgument(
            f"{attribute.name} must be an int 0-255 (one SMPP octet), got {value!r}",
            field=attribute.name,
        )


def _bool(_instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(
            f"{attribute.name} must be a bool, got {value!r}", field=attribute.name
        )


def _reference_bits(_instance: object, attribute: Any, value: object) -> None:
    if value not in (8, 16) or isinstance(value, bool):
        raise InvalidArgument(
            f"reference_bits must be 8 or 16, got {value!r}", field=attribute.name
        )


@frozen
class WireSettings:
    """How one route puts a message on the wire; aggregators disagree, so all of it is per route.

    The DLT tag map is configurable because one aggregator's PE ID tag is
    another's template tag (SMPP.md §1.9); values go out without a NUL unless
    ``tlv_nul_terminated`` says the aggregator wants one. TON/NPI defaults
    follow DLT.md: alphanumeric headers TON 5 / NPI 0, numbers TON 1 / NPI 1.
    ``reference_bits`` picks the 8- or 16-bit concatenation UDH, which also
    changes the part size (153/67 or 152/66). ``send_validity`` can be turned
    off for an SMSC that rejects a relative ``validity_period``.
    """

    dlt_tlvs: Mapping[str, int] = field(
        default=DEFAULT_DLT_TLVS, converter=_frozen_tags, validator=_check_tags, hash=False
    )
    tlv_nul_terminated: bool = field(default=False, validator=_bool)
    alpha_source_ton: int = field(default=5, validator=_octet)
    alpha_source_npi: int = field(default=0, validator=_octet)
    numeric_source_ton: int = field(default=1, validator=_octet)
    numeric_source_npi: int = field(default=1, validator=_octet)
    dest_ton: int = field(default=1, validator=_octet)
    dest_npi: int = field(default=1, validator=_octet)
    registered_delivery: int = field(default=1, validator=_octet)
    reference_bits: int = field(default=8, validator=_reference_bits)
    send_validity: bool = field(default=True, validator=_bool)


def _frozen_fields(value: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(value))


@frozen
class SubmitPdu:
    """One ``submit_sm`` (one part of a message), as plain data.

    ``fields`` are exactly the smpplib ``submit_sm`` keyword arguments, so the
    sender passes them straight through; ``tlvs`` are the DLT TLVs smpplib
    cannot express, as ``(tag, value)`` in send order. ``part_index`` is the
    0-based :class:`~bharatsend_core.domain.message.Part` index the response
    and receipt belong to. ``short_message`` holds content, so ``fields`` is
    kept out of ``repr``.
    """

    part_index: int
    fields: Mapping[str, object] = field(converter=_frozen_fields, repr=False, hash=False)
    tlvs: tuple[tuple[int, bytes], ...]

    def tlv_bytes(self) -> bytes:
        """The encoded TLV block: tag (2 octets), length (2), value; big-endian (SMPP 3.4 §3.1)."""
        return b"".join(encode_tlv(tag, value) for tag, value in self.tlvs)


def _require_aware(name: str, value: datetime) -> None:
    if type(value) is datetime and value.tzinfo is UTC:
        return  # what storage and the clocks hand out: no offset to compute
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be a timezone-aware datetime", field=name)


def validity_period(remaining: timedelta) -> str:
    """An SMPP 3.4 §7.1.1 relative time ``YYMMDDhhmmss000R`` for ``remaining``.

    Negative durations clamp to zero; fractions of a second are dropped so the
    SMSC never holds a message past its expiry. Days beyond a month are carried
    into 30-day months and 365-day years (the relative format has no calendar),
    and anything past 99 years is capped there.
    """
    total = max(0, int(remaining.total_seconds()))
    last = _LAST_VALIDITY[0]
    if last[0] == total:
        return last[1]
    text = _relative_time(total)
    _LAST_VALIDITY[0] = (total, text)
    return text


#: The last ``validity_period`` (seconds, text): a batch of messages accepted in
#: the same second asks for the same one. One tuple, replaced whole (thread-safe).
_LAST_VALIDITY: Final[list[tuple[int, str]]] = [(-1, "")]


def _relative_time(total: int) -> str:
    minutes, seconds = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    months, days = divmod(days, 30)
    if years > 99:
        years, months, days, hours, minutes, seconds = 99, 11, 29, 23, 59, 59
    return f"{years:02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"


def _source(header: str, settings: WireSettings) -> tuple[int, int]:
    """Source TON/NPI by header kind: 6 letters is alphanumeric, digits are a number."""
    if header.isascii() and header.isalpha() and len(header) == _ALPHA_HEADER_LENGTH:
        return settings.alpha_source_ton, settings.alpha_source_npi
    if header.isascii() and header.isdigit() and len(header) <= _MAX_SOURCE_ADDR:
        return settings.numeric_source_ton, settings.numeric_source_npi
    raise InvalidArgument(
        "the header must be 6 letters (alphanumeric sender) or up to 20 digits (numeric "
        f"sender), got {len(header)} characters",
        field="header",
    )


def _dlt_value(name: str, value: str, *, digits: bool, nul: bool) -> bytes:
    ok = value.isascii() and (value.isdigit() if digits else value.isprintable())
    if not value or not ok:
        kind = "ASCII digits" if digits else "printable ASCII"
        raise InvalidArgument(f"{name} must be non-empty {kind} to go in a DLT TLV", field=name)
    return value.encode("ascii") + (b"\x00" if nul else b"")


def _dlt_tlvs(
    message: Message, settings: WireSettings, chain_hash: str | None
) -> tuple[tuple[int, bytes], ...]:
    nul = settings.tlv_nul_terminated
    values = {
        "pe_id": _dlt_value("entity_id", message.entity_id, digits=True, nul=nul),
        "template_id": _dlt_value("template_id", message.template_id, digits=True, nul=nul),
    }
    if "chain" in settings.dlt_tlvs:
        if chain_hash is None:
            raise InvalidArgument(
                "this route sends the DLT chain hash TLV but no chain_hash was given",
                field="chain_hash",
            )
        values["chain"] = _dlt_value("chain_hash", chain_hash, digits=False, nul=nul)
    return tuple((settings.dlt_tlvs[key], values[key]) for key in _TLV_ORDER if key in values)


def build_submissions(
    message: Message,
    settings: WireSettings,
    *,
    reference: int,
    now: datetime,
    chain_hash: str | None = None,
    parts: Sequence[int] | None = None,
) -> tuple[SubmitPdu, ...]:
    """The ``submit_sm`` PDUs for ``parts`` of ``message`` (default: its pending parts).

    Every PDU of one message shares ``reference`` in its concatenation UDH; the
    caller draws it (no randomness here, so tests and retries are repeatable).
    A retry sends only the parts still pending, with the same reference so the
    handset can join them to the parts it already has. ``chain_hash`` is
    required when the route has a ``chain`` tag and ignored otherwise (routes
    differ; the caller need not know which). Raises :class:`InvalidArgument`
    for a reference out of range, a missing chain hash, a part index outside
    the message, a header or DLT id that cannot go on the wire, or content
    that no longer segments into ``message.segments`` parts.
    """
    _require_aware("now", now)
    max_reference = (1 << settings.reference_bits) - 1
    if isinstance(reference, bool) or not isinstance(reference, int):
        raise InvalidArgument("reference must be an int", field="reference")
    if not 0 <= reference <= max_reference:
        raise InvalidArgument(
            f"a {settings.reference_bits}-bit reference must be between 0 and "
            f"{max_reference}, got {reference!r}",
            field="reference",
            detail={"reference": reference, "reference_bits": settings.reference_bits},
        )
    seg = segment(message.content, max_segments=255, reference_bits=settings.reference_bits)
    if seg.segments != message.segments or seg.encoding.value != message.encoding:
        raise InvalidArgument(
            f"the content now needs {seg.segments} {seg.encoding.value} segments but the "
            f"message was accepted with {message.segments} {message.encoding}; the content "
            "or reference_bits changed",
            field="content",
            detail={"segments": seg.segments, "expected": message.segments},
        )
    indexes = tuple(message.pending_part_indexes if parts is None else parts)
    for index in indexes:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < seg.segments:
            raise InvalidArgument(
                f"part index {index!r} is outside 0..{seg.segments - 1}",
                field="parts",
                detail={"segments": seg.segments},
            )
    if len(set(indexes)) != len(indexes):
        raise InvalidArgument("part indexes must not repeat", field="parts")

    source_ton, source_npi = _source(message.header, settings)
    tlvs = _dlt_tlvs(message, settings, chain_hash)
    payloads = encode_parts(seg, reference)
    common: dict[str, object] = {
        "source_addr_ton": source_ton,
        "source_addr_npi": source_npi,
        "source_addr": message.header,
        "dest_addr_ton": settings.dest_ton,
        "dest_addr_npi": settings.dest_npi,
        "destination_addr": message.phone.removeprefix("+"),
        "esm_class": _ESM_UDHI if seg.is_multipart else 0,
        "data_coding": seg.data_coding,
        "registered_delivery": settings.registered_delivery,
    }
    if settings.send_validity:
        _require_aware("expires_at", message.expires_at)
        common["validity_period"] = validity_period(message.expires_at - now)
    return tuple(
        SubmitPdu(
            part_index=index,
            fields={**common, "short_message": payloads[index]},
            tlvs=tlvs,
        )
        for index in indexes
    )


def send_submission(client: Any, pdu: SubmitPdu) -> object:
    """Write one ``submit_sm`` on a connected, bound smpplib ``Client``; return smpplib's PDU.

    The returned PDU's ``.sequence`` keys the in-flight map: the
    ``submit_sm_resp`` echoes it. The DLT TLVs are appended to this PDU's
    body by wrapping its ``generate_params`` (SMPP.md §3 approach A), which
    is safe because smpplib's ``prep()`` (setting ``sm_length``) runs inside
    it. Does not wait for the response; call it from the thread that owns
    the socket (smpplib has no locking).
    """
    smpp_pdu: Any = smpplib.smpp.make_pdu("submit_sm", client=client, **pdu.fields)
    extra = pdu.tlv_bytes()
    if extra:
        original = smpp_pdu.generate_params

        def generate_params() -> bytes:
            body: bytes = original()
            return body + extra

        smpp_pdu.generate_params = generate_params
    client.send_pdu(smpp_pdu)
    return smpp_pdu


#: The mandatory ``submit_sm`` parameters in wire order (SMPP 3.4 §4.4.1), with
#: smpplib's defaults and, for C-octet strings, their maximum size incl. NUL.
_STRING_MAX: Final = {
    "service_type": 6,
    "source_addr": 21,
    "destination_addr": 21,
    "schedule_delivery_time": 17,
    "validity_period": 17,
}
_OCTETS: Final = frozenset(
    {
        "source_addr_ton",
        "source_addr_npi",
        "dest_addr_ton",
        "dest_addr_npi",
        "esm_class",
        "protocol_id",
        "priority_flag",
        "registered_delivery",
        "replace_if_present_flag",
        "data_coding",
        "sm_default_msg_id",
    }
)
_SUBMIT_FIELDS: Final = frozenset(_STRING_MAX) | _OCTETS | {"short_message"}
_MAX_SHORT_MESSAGE = 254


def _c_octets(pdu: SubmitPdu, name: str) -> bytes:
    value = pdu.fields.get(name) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"submit_sm {name} must be a string", field=name)
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidArgument(f"submit_sm {name} must be ASCII", field=name) from None
    if len(raw) >= _STRING_MAX[name]:
        raise InvalidArgument(
            f"submit_sm {name} is at most {_STRING_MAX[name] - 1} characters", field=name
        )
    return raw + b"\x00"


def _octet_value(pdu: SubmitPdu, name: str) -> int:
    value = pdu.fields.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise InvalidArgument(f"submit_sm {name} must be an int 0-255", field=name)
    return value


def encode_submission(pdu: SubmitPdu, sequence: int) -> bytes:
    """The whole ``submit_sm`` PDU for ``pdu`` with ``sequence``: header, body, DLT TLVs.

    ``fields`` may hold any mandatory ``submit_sm`` parameter (absent ones are
    0 or empty, as smpplib sends them); anything else must go in ``tlvs``.
    Raises :class:`InvalidArgument` for an unknown field, a string that is not
    ASCII or too long (smpplib would silently cut it), or a short message over
    254 octets.
    """
    unknown = pdu.fields.keys() - _SUBMIT_FIELDS
    if unknown:
        raise InvalidArgument(
            f"not a submit_sm parameter: {', '.join(sorted(unknown))}; optional parameters "
            "go in tlvs",
            field="fields",
        )
    short = pdu.fields.get("short_message") or b""
    if isinstance(short, str):
        short = short.encode("latin-1")
    if not isinstance(short, bytes) or len(short) > _MAX_SHORT_MESSAGE:
        raise InvalidArgument(
            f"short_message is bytes of at most {_MAX_SHORT_MESSAGE} octets",
            field="short_message",
        )
    octet = partial(_octet_value, pdu)
    body = b"".join(
        (
            _c_octets(pdu, "service_type"),
            bytes((octet("source_addr_ton"), octet("source_addr_npi"))),
            _c_octets(pdu, "source_addr"),
            bytes((octet("dest_addr_ton"), octet("dest_addr_npi"))),
            _c_octets(pdu, "destination_addr"),
            bytes((octet("esm_class"), octet("protocol_id"), octet("priority_flag"))),
            _c_octets(pdu, "schedule_delivery_time"),
            _c_octets(pdu, "validity_period"),
            bytes(
                (
                    octet("registered_delivery"),
                    octet("replace_if_present_flag"),
                    octet("data_coding"),
                    octet("sm_default_msg_id"),
                    len(short),
                )
            ),
            short,
            pdu.tlv_bytes(),
        )
    )
    return encode_pdu(SUBMIT_SM, 0, sequence, body)
