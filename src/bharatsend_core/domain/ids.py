"""Identifiers: time-sortable, prefixed, and derived (never random in the domain).

A resource id is a prefix and 26 Crockford base32 characters: 48 bits of
milliseconds since the Unix epoch, then 80 random bits (the ULID layout), so
ids sort by creation time and index well. The random bits come from the
``IdGenerator`` port; the domain only formats and checks.
"""

from __future__ import annotations

import re
from typing import Final

from bharatsend_core.domain.errors import InvalidArgument

__all__ = [
    "CROCKFORD",
    "PREFIXES",
    "encode_base32",
    "format_id",
    "is_id",
]

#: Crockford's base32 alphabet, lower case (no i, l, o, u: unambiguous when read aloud).
CROCKFORD: Final = "0123456789abcdefghjkmnpqrstvwxyz"

#: The prefixes of our resource ids.
PREFIXES: Final = frozenset({"msg", "ten", "key", "ep", "evt", "top", "imp"})

_ID_RE: Final = re.compile(r"(?P<prefix>[a-z]{2,4})_(?P<body>[0-9a-hjkmnp-tv-z]{26})")


def encode_base32(value: int, length: int) -> str:
    """``value`` as exactly ``length`` Crockford base32 characters (big-endian)."""
    if value < 0 or value >= 32**length:
        raise InvalidArgument(f"value does not fit {length} base32 characters", field="value")
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))


#: Every pair of Crockford characters, by the 10 bits they stand for: an id's
#: 130 bits are 13 lookups (``base64.b32encode`` is Python code in 3.11, and
#: cost 2.5 times as much).
_PAIRS: Final = tuple(a + b for a in CROCKFORD for b in CROCKFORD)
_PAIR_SHIFTS: Final = tuple(range(120, -1, -10))


def format_id(prefix: str, unix_ms: int, random80: bytes) -> str:
    """A sortable id: ``{prefix}_`` + 10 characters of time + 16 of randomness."""
    if prefix not in PREFIXES:
        raise InvalidArgument(f"unknown id prefix {prefix!r}", field="prefix")
    if len(random80) != 10:
        raise InvalidArgument("an id needs exactly 10 random bytes (80 bits)", field="random80")
    if not 0 <= unix_ms < 2**48:
        raise InvalidArgument("time out of range for an id", field="unix_ms")
    # 10 characters of time (50 bits) + 16 of randomness (80 bits) = 26
    # characters = 130 bits: the value with two leading zero bits, as in ULID.
    value = unix_ms << 80 | int.from_bytes(random80)
    return f"{prefix}_{''.join([_PAIRS[value >> shift & 1023] for shift in _PAIR_SHIFTS])}"


def is_id(value: object, prefix: str) -> bool:
    """Whether ``value`` is a well-formed id with this prefix (a cheap check before a lookup)."""
    if not isinstance(value, str):
        return False
    m = _ID_RE.fullmatch(value)
    return m is not None and m.group("prefix") == prefix
