"""SMS text encoding and segmentation: GSM-7 or UCS-2, single or concatenated.

Pure functions over ``str`` and ``bytes``; no I/O, clock or randomness (the
concatenation reference is passed in by the caller).

* **GSM-7** is the GSM 03.38 / 3GPP TS 23.038 §6.2.1 default alphabet (127
  characters plus the escape 0x1B) and its extension table (§6.2.1.1), reached
  by the escape. An extension character costs 2 septets. SMPP carries GSM-7
  *unpacked*, one septet per octet, so the encoders here never pack.
* **UCS-2** (``data_coding`` 8) is sent as UTF-16BE, as SMSCs and handsets do:
  a character outside the BMP (most emoji) is a surrogate pair, 2 units.
  One character outside GSM-7 makes the whole message UCS-2.
* **Segment sizes** (3GPP TS 23.040 §9.2.3.16, 140 octets of user data): a
  single message holds 160 septets or 70 units. A concatenated part loses the
  user data header (§9.2.3.24.1: 6 octets with an 8-bit reference; §9.2.3.24.8:
  7 octets with a 16-bit reference), leaving 153 / 67 or 152 / 66 units.

A part never ends between an escape and its extension character, nor between
the two halves of a surrogate pair: both are indivisible 2-unit items. Filling
parts greedily in order is then optimal (the usual exchange argument for
contiguous bin packing), so :func:`segment` returns the fewest parts possible.
"""

from __future__ import annotations

import enum
import operator
from bisect import bisect_right
from itertools import accumulate

from attrs import field, frozen

from bharatsend_core.domain.errors import (
    ContentTooLong,
    EmptyContent,
    InvalidArgument,
    InvalidContent,
)

__all__ = [
    "GSM7_BASIC_CHARS",
    "GSM7_ESCAPE",
    "GSM7_EXTENSION_CHARS",
    "MAX_SEGMENTS_LIMIT",
    "Encoding",
    "Segmentation",
    "decode_gsm7",
    "decode_ucs2",
    "detect_encoding",
    "encode_gsm7",
    "encode_parts",
    "encode_text",
    "encode_ucs2",
    "first_non_gsm7",
    "gsm7_units",
    "parse_udh_concat",
    "segment",
    "ucs2_units",
    "udh_concat",
]


class Encoding(enum.StrEnum):
    """The two encodings a message can go out in; the value is a stable name."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding`` value: 0 (SMSC default, GSM 03.38) or 8 (UCS-2)."""
        return 0 if self is Encoding.GSM7 else 8

    @property
    def max_single_units(self) -> int:
        """Units one unconcatenated message holds: 160 septets or 70 UTF-16 units."""
        return 160 if self is Encoding.GSM7 else 70

    def max_part_units(self, reference_bits: int = 8) -> int:
        """Units one concatenated part holds after its UDH (153/67, or 152/66 for 16-bit)."""
        _check_reference_bits(reference_bits)
        return _PART_UNITS[self, reference_bits]


#: The escape septet that selects the extension table (3GPP TS 23.038 §6.2.1.1).
GSM7_ESCAPE = 0x1B

#: The highest ``max_segments``: the UDH total-parts field is one octet (TS 23.040 §9.2.3.24.1).
MAX_SEGMENTS_LIMIT = 255

# TS 23.038 §6.2.1, in code order 0x00..0x7F, eight rows of sixteen. 0x1B is the
# escape, not a character; "\x1b" only holds its place and is dropped below.
_GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1: the extension table; each is sent as 0x1B + code.
_GSM7_EXTENSION_TABLE: dict[str, int] = {
    "\f": 0x0A,  # form feed (page break)
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_GSM7_BASIC_CODES: dict[str, int] = {
    char: code for code, char in enumerate(_GSM7_BASIC_TABLE) if code != GSM7_ESCAPE
}

#: The 127 characters of the GSM 03.38 default alphabet (1 septet each).
GSM7_BASIC_CHARS: frozenset[str] = frozenset(_GSM7_BASIC_CODES)

#: The 10 characters of the GSM 03.38 extension table (2 septets each: escape + code).
GSM7_EXTENSION_CHARS: frozenset[str] = frozenset(_GSM7_EXTENSION_TABLE)

_GSM7_ALL: frozenset[str] = GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS

# str.translate tables, built once: text -> septet string -> bytes, and back.
_ENCODE_GSM7: dict[int, str] = {ord(c): chr(code) for c, code in _GSM7_BASIC_CODES.items()}
_ENCODE_GSM7.update(
    {ord(c): chr(GSM7_ESCAPE) + chr(code) for c, code in _GSM7_EXTENSION_TABLE.items()}
)
_DECODE_GSM7_BASIC: dict[int, str] = {code: c for c, code in _GSM7_BASIC_CODES.items()}
_DECODE_GSM7_EXTENSION: dict[int, str] = {code: c for c, code in _GSM7_EXTENSION_TABLE.items()}

_PART_UNITS: dict[tuple[Encoding, int], int] = {
    (Encoding.GSM7, 8): 153,
    (Encoding.GSM7, 16): 152,
    (Encoding.UCS2, 8): 67,
    (Encoding.UCS2, 16): 66,
}

_BMP_MAX = "\uffff"


def _check_reference_bits(reference_bits: int) -> None:
    if reference_bits not in (8, 16):
        raise InvalidArgument(
            f"reference_bits must be 8 or 16, got {reference_bits!r}",
            field="reference_bits",
            detail={"reference_bits": reference_bits},
        )


def _check_reference(reference: int, reference_bits: int) -> None:
    _check_reference_bits(reference_bits)
    max_reference = (1 << reference_bits) - 1
    if not 0 <= reference <= max_reference:
        raise InvalidArgument(
            f"a {reference_bits}-bit reference must be between 0 and {max_reference}, "
            f"got {reference!r}",
            field="reference",
            detail={"reference": reference, "reference_bits": reference_bits},
        )


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


# ----------------------------------------------------------------------------- counting


def first_non_gsm7(text: str) -> tuple[int, str] | None:
    """The code-point offset and character of the first character outside GSM 03.38.

    ``None`` when the whole text is GSM-7. Used to explain why a message went
    out as UCS-2 (e.g. a curly apostrophe at offset 17).
    """
    if _GSM7_ALL.issuperset(text):
        return None
    for offset, char in enumerate(text):
        if char not in _GSM7_ALL:
            return offset, char
    return None  # pragma: no cover - unreachable: the superset check failed


def detect_encoding(text: str) -> Encoding:
    """GSM-7 when every character is in GSM 03.38 (basic or extension), else UCS-2."""
    return Encoding.GSM7 if _GSM7_ALL.issuperset(text) else Encoding.UCS2


def _gsm7_units(text: str, chars: set[str]) -> int | None:
    if chars <= GSM7_BASIC_CHARS:
        return len(text)
    if chars <= _GSM7_ALL:
        return len(text) + sum(text.count(c) for c in chars & GSM7_EXTENSION_CHARS)
    return None


def gsm7_units(text: str) -> int | None:
    """Septets the text needs in GSM-7 (escapes included), or ``None`` if it is not GSM-7."""
    return _gsm7_units(text, set(text))


def ucs2_units(text: str) -> int:
    """UTF-16 code units the text needs in UCS-2 (a non-BMP character counts 2).

    A lone surrogate counts 1 here; :func:`segment` rejects it.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _strict_ucs2_units(text: str) -> int:
    try:
        return len(text.encode("utf-16-le")) // 2
    except UnicodeEncodeError as e:
        raise _lone_surrogate(e.start) from None


def _lone_surrogate(offset: int) -> InvalidContent:
    return InvalidContent(
        f"the text has an unpaired UTF-16 surrogate at offset {offset} (a broken emoji, "
        "often from a JSON '\\ud83d' escape); send the full character",
        field="content",
        detail={"offset": offset},
    )


# ----------------------------------------------------------------------------- segmentation


@frozen
class Segmentation:
    """How a message text goes out: its encoding, size and the text of each part.

    Built by :func:`segment`. ``text`` and ``parts`` hold message content and
    are kept out of ``repr`` so they never reach a log.
    """

    text: str = field(repr=False)
    encoding: Encoding
    units: int
    segments: int
    parts: tuple[str, ...] = field(repr=False)
    part_units: tuple[int, ...]
    reference_bits: int = 8

    def __attrs_post_init__(self) -> None:
        _check_reference_bits(self.reference_bits)
        if not (self.segments == len(self.parts) == len(self.part_units)):
            raise InvalidArgument(
                "segments, parts and part_units must have the same length",
                field="parts",
                detail={
                    "segments": self.segments,
                    "parts": len(self.parts),
                    "part_units": len(self.part_units),
                },
            )

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding`` for every part (0 GSM-7, 8 UCS-2)."""
        return self.encoding.data_coding

    @property
    def is_multipart(self) -> bool:
        """True when the message is concatenated (each part carries a UDH, UDHI set)."""
        return self.segments > 1


def _split_greedy(
    text: str, capacity: int, heavy: frozenset[str]
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Cut ``text`` into the fewest parts of at most ``capacity`` units.

    Characters in ``heavy`` cost 2 units and the rest 1; no character is ever
    cut. Each part takes as many whole characters as fit (greedy is optimal).
    """
    n = len(text)
    # prefix[i] = units of text[:i], built at C speed: i + number of heavy chars before i.
    prefix: list[int] = list(
        map(operator.add, range(n + 1), accumulate(map(heavy.__contains__, text), initial=0))
    )
    parts: list[str] = []
    units: list[int] = []
    start = 0
    while start < n:
        # The furthest end whose units fit; a heavy char costs 2 <= capacity, so end > start.
        end = bisect_right(prefix, prefix[start] + capacity, start + 1) - 1
        parts.append(text[start:end])
        units.append(prefix[end] - prefix[start])
        start = end
    return tuple(parts), tuple(units)


def _split_uniform(text: str, capacity: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Cut ``text`` whose characters all cost 1 unit into slices of ``capacity``."""
    parts = tuple(text[i : i + capacity] for i in range(0, len(text), capacity))
    return parts, tuple(len(p) for p in parts)


def segment(text: str, *, max_segments: int = 10, reference_bits: int = 8) -> Segmentation:
    """Choose the encoding and split ``text`` into SMS parts.

    One message when it fits 160 septets (GSM-7) or 70 units (UCS-2); otherwise
    concatenated parts of at most 153/67 units (8-bit reference) or 152/66
    (16-bit reference), never cutting an escape pair or a surrogate pair.

    Raises :class:`EmptyContent` for ``""``, :class:`InvalidContent` for an
    unpaired surrogate, :class:`ContentTooLong` when more than ``max_segments``
    parts are needed, and :class:`InvalidArgument` for ``max_segments``
    outside 1..255 or ``reference_bits`` other than 8 or 16.
    """
    if not 1 <= max_segments <= MAX_SEGMENTS_LIMIT:
        raise InvalidArgument(
            f"max_segments must be between 1 and {MAX_SEGMENTS_LIMIT}, got {max_segments!r}",
            field="max_segments",
            detail={"max_segments": max_segments, "limit": MAX_SEGMENTS_LIMIT},
        )
    _check_reference_bits(reference_bits)
    if not text:
        raise EmptyContent(
            "the message text is empty; send at least one character", field="content"
        )

    chars = set(text)
    gsm_units = _gsm7_units(text, chars)
    if gsm_units is not None:
        encoding = Encoding.GSM7
        units = gsm_units
        heavy = frozenset(chars & GSM7_EXTENSION_CHARS) if units != len(text) else frozenset()
    else:
        encoding = Encoding.UCS2
        units = _strict_ucs2_units(text)
        heavy = frozenset(c for c in chars if c > _BMP_MAX) if units != len(text) else frozenset()

    if units <= encoding.max_single_units:
        return Segmentation(
            text=text,
            encoding=encoding,
            units=units,
            segments=1,
            parts=(text,),
            part_units=(units,),
            reference_bits=reference_bits,
        )

    capacity = _PART_UNITS[encoding, reference_bits]
    if heavy:
        parts, part_units = _split_greedy(text, capacity, heavy)
    else:
        parts, part_units = _split_uniform(text, capacity)
    if len(parts) > max_segments:
        raise ContentTooLong(
            f"the message needs {len(parts)} segments ({units} {encoding.value} units) but the "
            f"limit is {max_segments}; shorten the text or raise max_segments",
            field="content",
            detail={
                "segments": len(parts),
                "limit": max_segments,
                "units": units,
                "encoding": encoding.value,
            },
        )
    return Segmentation(
        text=text,
        encoding=encoding,
        units=units,
        segments=len(parts),
        parts=parts,
        part_units=part_units,
        reference_bits=reference_bits,
    )


# ----------------------------------------------------------------------------- byte codecs


def encode_gsm7(text: str) -> bytes:
    """GSM 03.38 septets, unpacked (one per octet, as SMPP sends them).

    An extension character becomes the escape 0x1B followed by its code.
    Raises :class:`InvalidContent` for a character outside GSM 03.38.
    """
    if not _GSM7_ALL.issuperset(text):
        found = first_non_gsm7(text)
        offset, char = found if found is not None else (0, "")
        raise InvalidContent(
            f"character {_codepoint(char)} at offset {offset} is not in the GSM 03.38 "
            "alphabet; send the message as UCS-2",
            field="content",
            detail={"offset": offset, "codepoint": _codepoint(char)},
        )
    return text.translate(_ENCODE_GSM7).encode("ascii")


def decode_gsm7(data: bytes) -> str:
    """Unpacked GSM 03.38 septets back to text (the inverse of :func:`encode_gsm7`).

    Per TS 23.038 §6.2.1.1, an escape followed by a code the extension table
    does not define decodes as that code's basic character, and the reserved
    escape-escape pair decodes as a space. A lone escape at the very end (a
    truncated pair) also decodes as a space. An octet above 0x7F is not a
    septet and raises :class:`InvalidContent`.
    """
    if not data.isascii():
        offset = next(i for i, octet in enumerate(data) if octet > 0x7F)
        raise InvalidContent(
            f"octet 0x{data[offset]:02X} at offset {offset} is not a GSM 03.38 septet",
            field="content",
            detail={"offset": offset},
        )
    if GSM7_ESCAPE not in data:
        return data.decode("ascii").translate(_DECODE_GSM7_BASIC)
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        octet = data[i]
        if octet != GSM7_ESCAPE:
            out.append(_DECODE_GSM7_BASIC[octet])
            i += 1
        elif i + 1 == n:
            out.append(" ")  # truncated pair: show a space rather than fail
            i += 1
        else:
            code = data[i + 1]
            if code == GSM7_ESCAPE:
                out.append(" ")  # §6.2.1.1: reserved escape to a further table, shown as space
            else:
                # §6.2.1.1: a code the extension table lacks shows its basic character.
                out.append(_DECODE_GSM7_EXTENSION.get(code, _DECODE_GSM7_BASIC[code]))
            i += 2
    return "".join(out)


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE octets (``data_coding`` 8); a non-BMP character is a surrogate pair.

    Raises :class:`InvalidContent` for an unpaired surrogate in ``text``.
    """
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as e:
        raise _lone_surrogate(e.start) from None


def decode_ucs2(data: bytes) -> str:
    """UTF-16BE octets back to text (the inverse of :func:`encode_ucs2`).

    Strict: an odd length or an unpaired surrogate raises :class:`InvalidContent`
    (join the payloads of all parts first if a sender split a pair).
    """
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as e:
        raise InvalidContent(
            f"the octets are not valid UTF-16BE at offset {e.start} ({e.reason})",
            field="content",
            detail={"offset": e.start},
        ) from None


def encode_text(text: str, encoding: Encoding) -> bytes:
    """The ``short_message`` octets of ``text`` in ``encoding`` (no UDH)."""
    if encoding is Encoding.GSM7:
        return encode_gsm7(text)
    return encode_ucs2(text)


# ----------------------------------------------------------------------------- UDH


def udh_concat(reference: int, total: int, sequence: int, *, reference_bits: int = 8) -> bytes:
    """The concatenation user data header (TS 23.040 §9.2.3.24.1 and §9.2.3.24.8).

    8-bit reference: ``05 00 03 RR TT NN``; 16-bit: ``06 08 04 RR RR TT NN``.
    ``total`` is the number of parts (1..255), ``sequence`` counts from 1.
    """
    _check_reference(reference, reference_bits)
    if not 1 <= total <= MAX_SEGMENTS_LIMIT:
        raise InvalidArgument(
            f"total must be between 1 and {MAX_SEGMENTS_LIMIT}, got {total!r}",
            field="total",
            detail={"total": total},
        )
    if not 1 <= sequence <= total:
        raise InvalidArgument(
            f"sequence must be between 1 and total ({total}), got {sequence!r}",
            field="sequence",
            detail={"sequence": sequence, "total": total},
        )
    if reference_bits == 8:
        return bytes((0x05, 0x00, 0x03, reference, total, sequence))
    return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, sequence))


def parse_udh_concat(data: bytes) -> tuple[int, int, int, bytes] | None:
    """Read the concatenation IE from a ``short_message`` that starts with a UDH.

    Returns ``(reference, total, sequence, payload)`` where ``payload`` is the
    octets after the UDH, or ``None`` when the header is malformed or has no
    usable concatenation IE. Other IEs are skipped; if the IE repeats, the last
    wins; one with total 0, sequence 0 or sequence > total is ignored
    (TS 23.040 §9.2.3.24.1).
    """
    if not data:
        return None
    end = 1 + data[0]  # UDHL counts the octets after itself
    if end > len(data):
        return None
    found: tuple[int, int, int] | None = None
    i = 1
    while i < end:
        if i + 2 > end:
            return None
        iei, length = data[i], data[i + 1]
        if i + 2 + length > end:
            return None
        body = data[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3:
            reference, total, sequence = body[0], body[1], body[2]
        elif iei == 0x08 and length == 4:
            reference, total, sequence = (body[0] << 8) | body[1], body[2], body[3]
        else:
            i += 2 + length
            continue
        if 1 <= sequence <= total:
            found = (reference, total, sequence)
        i += 2 + length
    if found is None:
        return None
    return (*found, data[end:])


def encode_parts(seg: Segmentation, reference: int) -> tuple[bytes, ...]:
    """The ``short_message`` octets of every part, ready for ``submit_sm``.

    A single segment is just the encoded text. A multipart message gets the
    concatenation UDH (set UDHI, ``esm_class |= 0x40``) before each encoded
    part. ``reference`` is chosen by the caller; it is validated even for a
    single segment so a bad value fails the same way every time.
    """
    _check_reference(reference, seg.reference_bits)
    if seg.segments == 1:
        return (encode_text(seg.text, seg.encoding),)
    return tuple(
        udh_concat(reference, seg.segments, n, reference_bits=seg.reference_bits)
        + encode_text(part, seg.encoding)
        for n, part in enumerate(seg.parts, start=1)
    )
