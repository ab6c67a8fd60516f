"""The SMPP 3.4 wire codec shared by the ESME session and the simulator.

Command ids, command_status values and TLV tags as the spec numbers them, the
16-octet header, and a reader for the field types of §3.1. Sans-I/O: bytes in,
values out. Both ends of our links use this one codec, so they cannot drift
apart.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "BIND_RECEIVER",
    "BIND_TRANSCEIVER",
    "BIND_TRANSMITTER",
    "DELIVER_SM",
    "ENQUIRE_LINK",
    "ENQUIRE_LINK_RESP",
    "ESME_RALYBND",
    "ESME_RINVBNDSTS",
    "ESME_RINVCMDID",
    "ESME_RINVCMDLEN",
    "ESME_RINVDSTADR",
    "ESME_RINVPASWD",
    "ESME_RINVSYSID",
    "ESME_RMISSINGOPTPARAM",
    "ESME_RMSGQFUL",
    "ESME_ROK",
    "ESME_RSUBMITFAIL",
    "ESME_RTHROTTLED",
    "ESME_RX_P_APPN",
    "ESME_RX_T_APPN",
    "GENERIC_NACK",
    "HEADER",
    "MAX_COMMAND_LENGTH",
    "RESP",
    "SUBMIT_SM",
    "SUBMIT_SM_RESP",
    "TAG_MESSAGE_PAYLOAD",
    "TAG_MESSAGE_STATE",
    "TAG_NETWORK_ERROR_CODE",
    "TAG_RECEIPTED_MESSAGE_ID",
    "UNBIND",
    "UNBIND_RESP",
    "Reader",
    "Truncated",
    "cstring",
    "encode_pdu",
    "encode_tlv",
    "frozen_tlvs",
]

# SMPP 3.4 §5.1.2 command ids; a response sets the high bit.
RESP: Final = 0x80000000
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
BIND_TRANSCEIVER: Final = 0x00000009
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015

# SMPP 3.4 §5.1.3 command_status values.
ESME_ROK: Final = 0x00
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RALYBND: Final = 0x05
ESME_RINVDSTADR: Final = 0x0B
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RMSGQFUL: Final = 0x14
ESME_RSUBMITFAIL: Final = 0x45
ESME_RTHROTTLED: Final = 0x58
#: Temporary application error: the SMSC should redeliver (receipt not stored).
ESME_RX_T_APPN: Final = 0x64
#: Permanent application error: the ESME does not accept this PDU.
ESME_RX_P_APPN: Final = 0x65
ESME_RMISSINGOPTPARAM: Final = 0xC4

# TLV tags (SMPP 3.4 §5.3.2).
TAG_RECEIPTED_MESSAGE_ID: Final = 0x001E
TAG_NETWORK_ERROR_CODE: Final = 0x0423
TAG_MESSAGE_PAYLOAD: Final = 0x0424
TAG_MESSAGE_STATE: Final = 0x0427

#: command_length, command_id, command_status, sequence_number (§2.2.1).
HEADER: Final = struct.Struct(">IIII")
_TLV_HEADER: Final = struct.Struct(">HH")
#: Largest PDU accepted: a 64K message_payload plus the fixed fields.
MAX_COMMAND_LENGTH: Final = 0x10000 + 512


class Truncated(Exception):
    """A PDU body ended before one of its fields did (the command_length is wrong)."""


class Reader:
    """Reads the §3.1 field types from a PDU body, front to back."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def octet(self) -> int:
        """One 1-octet integer."""
        if self.pos >= len(self.body):
            raise Truncated
        value = self.body[self.pos]
        self.pos += 1
        return value

    def cstring(self) -> bytes:
        """A C-octet string, without its NUL."""
        end = self.body.find(b"\x00", self.pos)
        if end < 0:
            raise Truncated
        value = self.body[self.pos : end]
        self.pos = end + 1
        return value

    def octets(self, n: int) -> bytes:
        """``n`` raw octets."""
        if self.pos + n > len(self.body):
            raise Truncated
        value = self.body[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        """Every remaining TLV, unknown and vendor tags included, by tag."""
        found: dict[int, bytes] = {}
        while self.pos < len(self.body):
            tag, length = _TLV_HEADER.unpack(self.octets(4))
            found[tag] = self.octets(length)
        return found


def encode_pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    """A whole PDU: header and body."""
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def cstring(value: str) -> bytes:
    """A C-octet string (Latin-1, as smpplib sends them)."""
    return value.encode("latin-1", "replace") + b"\x00"


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One TLV: tag (2 octets), length (2), value; big-endian."""
    return _TLV_HEADER.pack(tag, len(value)) + value


def frozen_tlvs(value: Mapping[int, bytes]) -> Mapping[int, bytes]:
    """A read-only copy of a TLV map (for frozen values)."""
    return MappingProxyType(dict(value))
