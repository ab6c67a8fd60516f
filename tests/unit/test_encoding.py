"""GSM-7 / UCS-2 encoding and SMS segmentation (domain/encoding.py).

Vectors come from GSM 03.38 (3GPP TS 23.038 §6.2.1), TS 23.040 (UDH), the
boundary cases in SMPP.md §2.5, and facts stated by the public test suites of
TwilioDevEd/message-segment-calculator, jezeniel/smsutil and inkOfPixel/sms-length.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharatsend_core.domain import encoding as enc
from bharatsend_core.domain.encoding import (
    GSM7_BASIC_CHARS,
    GSM7_EXTENSION_CHARS,
    Encoding,
    Segmentation,
    decode_gsm7,
    decode_ucs2,
    detect_encoding,
    encode_gsm7,
    encode_parts,
    encode_text,
    encode_ucs2,
    first_non_gsm7,
    gsm7_units,
    parse_udh_concat,
    segment,
    ucs2_units,
    udh_concat,
)
from bharatsend_core.domain.errors import (
    BharatSendError,
    ContentTooLong,
    EmptyContent,
    InvalidArgument,
    InvalidContent,
)

EMOJI = "😀"  # U+1F600, outside the BMP: a surrogate pair in UTF-16
KA = "क"  # U+0915 DEVANAGARI LETTER KA, one UTF-16 unit

SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
PART = {
    (Encoding.GSM7, 8): 153,
    (Encoding.GSM7, 16): 152,
    (Encoding.UCS2, 8): 67,
    (Encoding.UCS2, 16): 66,
}


def digits(start: int, count: int) -> str:
    """``count`` digits cycling 0-9, starting at digit ``start`` (Twilio-style bodies)."""
    return "".join(str(i % 10) for i in range(start, start + count))


def char_units(char: str, encoding: Encoding) -> int:
    """Reference cost of one character, written independently of the module."""
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION_CHARS else 1
    return 2 if ord(char) > 0xFFFF else 1


# ============================================================================ the alphabet

# TS 23.038 §6.2.1, row by row (0x1B, the escape, is marked None).
BASIC_ROWS: dict[int, list[str | None]] = {
    0x00: ["@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å"],
    0x10: ["Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", None, "Æ", "æ", "ß", "É"],
    0x20: list(" !\"#¤%&'()*+,-./"),
    0x30: list("0123456789:;<=>?"),
    0x40: list("¡ABCDEFGHIJKLMNO"),
    0x50: list("PQRSTUVWXYZÄÖÑÜ§"),
    0x60: list("¿abcdefghijklmno"),
    0x70: list("pqrstuvwxyzäöñüà"),
}
BASIC_CODES = [
    (char, row + i)
    for row, chars in BASIC_ROWS.items()
    for i, char in enumerate(chars)
    if char is not None
]
# TS 23.038 §6.2.1.1, sent as 0x1B + code.
EXTENSION_CODES = [
    ("\f", 0x0A),
    ("^", 0x14),
    ("{", 0x28),
    ("}", 0x29),
    ("\\", 0x2F),
    ("[", 0x3C),
    ("~", 0x3D),
    ("]", 0x3E),
    ("|", 0x40),
    ("€", 0x65),
]
GSM7_ALL = sorted(GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS)


def test_basic_alphabet_has_127_characters_and_the_escape():
    assert len(BASIC_CODES) == 127
    assert {c for c, _ in BASIC_CODES} == GSM7_BASIC_CHARS
    assert enc.GSM7_ESCAPE == 0x1B


@pytest.mark.parametrize(("char", "code"), BASIC_CODES)
def test_basic_character_encodes_to_its_03_38_code(char: str, code: int):
    assert encode_gsm7(char) == bytes([code])
    assert decode_gsm7(bytes([code])) == char


@pytest.mark.parametrize(("char", "code"), EXTENSION_CODES)
def test_extension_character_encodes_as_escape_plus_code_and_costs_two_septets(
    char: str, code: int
):
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == char
    assert gsm7_units(char) == 2
    assert char in GSM7_EXTENSION_CHARS


@pytest.mark.parametrize("char", ["§", "Ç", "¤", "¡", "¿", "Ä", "ñ", "à", "Δ", "Ξ", "ß", "$"])
def test_is_gsm7(char: str):
    assert detect_encoding(char) is Encoding.GSM7
    assert first_non_gsm7(char) is None


@pytest.mark.parametrize(
    "char",
    [
        "`",  # backtick: smpplib maps it to 0x5F, which shows as §
        "ç",  # only the capital Ç is in the table
        "Â",  # sms-length: "special chars are treated as unicode"
        "₹",
        "’",  # curly apostrophe
        "“",
        "á",
        "\x1b",  # the escape is not a character
        "\t",
        "\x00",
        KA,
        EMOJI,
    ],
)
def test_is_not_gsm7_and_forces_ucs2(char: str):
    assert detect_encoding(f"Hello {char} there") is Encoding.UCS2
    assert gsm7_units(char) is None
    assert first_non_gsm7(f"Hello {char} there") == (6, char)
    assert segment(f"Hello {char}").encoding is Encoding.UCS2


def test_first_non_gsm7_reports_the_first_offending_character():
    # Twilio getNonGsmCharacters('más') == ['á']
    assert first_non_gsm7("más") == (1, "á")
    assert first_non_gsm7("don’t use `code`") == (3, "’")
    assert first_non_gsm7("plain {ascii} [text] ~ € |") is None
    assert first_non_gsm7("") is None


def test_encoding_values_and_data_coding():
    assert Encoding.GSM7 == "gsm7"
    assert Encoding.UCS2 == "ucs2"
    assert Encoding.GSM7.data_coding == 0
    assert Encoding.UCS2.data_coding == 8
    assert Encoding.GSM7.max_single_units == 160
    assert Encoding.UCS2.max_single_units == 70
    for (encoding, bits), units in PART.items():
        assert encoding.max_part_units(bits) == units


# ============================================================================ counting


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("simple message", 14),  # sms-length
        ("".join(sorted(GSM7_BASIC_CHARS)), 127),  # sms-length: every basic char, 1 each
        ("^{}\\[~]|€", 18),  # sms-length: every extension char but \f, 2 each
        ("€" * 80, 160),
        ("{@}", 5),
    ],
)
def test_gsm7_units(text: str, septets: int):
    assert gsm7_units(text) == septets
    assert len(encode_gsm7(text)) == septets


@pytest.mark.parametrize(
    ("text", "units"),
    [
        (EMOJI, 2),
        ("@" + EMOJI, 3),  # Twilio charDetails: '@😀' is UCS-2
        (KA * 70, 70),
        ("Â", 1),
        ("क्ष", 3),  # a conjunct is three code points, one unit each
        ("🇮🇳", 4),  # a flag is two regional indicators, both non-BMP
        ("{|^€", 4),  # extension chars cost 1 unit in UCS-2 (Twilio issue #57)
        ("", 0),
    ],
)
def test_ucs2_units(text: str, units: int):
    assert ucs2_units(text) == units


# ============================================================================ segmentation vectors


def test_160_gsm_characters_are_one_segment():
    seg = segment("a" * 160)
    assert (seg.encoding, seg.units, seg.segments) == (Encoding.GSM7, 160, 1)
    assert seg.parts == ("a" * 160,)
    assert seg.part_units == (160,)
    assert not seg.is_multipart
    assert seg.data_coding == 0


def test_161_gsm_characters_are_153_plus_8():
    text = "a" * 161
    seg = segment(text)
    assert seg.segments == 2
    assert seg.is_multipart
    assert seg.part_units == (153, 8)
    # Twilio charDetails: char 152 in segment 0, char 153 in segment 1
    assert seg.parts == (text[:153], text[153:])


def test_70_devanagari_characters_are_one_segment():
    seg = segment(KA * 70)
    assert (seg.encoding, seg.units, seg.segments) == (Encoding.UCS2, 70, 1)
    assert seg.data_coding == 8


def test_71_devanagari_characters_are_two_segments():
    seg = segment(KA * 71)
    assert seg.segments == 2
    assert seg.part_units == (67, 4)


def test_80_euros_are_160_septets_in_one_segment():
    seg = segment("€" * 80)
    assert (seg.encoding, seg.units, seg.segments) == (Encoding.GSM7, 160, 1)


def test_81_euros_split_76_and_5_without_cutting_an_escape():
    seg = segment("€" * 81)
    assert seg.units == 162
    assert seg.parts == ("€" * 76, "€" * 5)
    assert seg.part_units == (152, 10)


def test_extension_character_at_the_boundary_moves_to_the_next_part():
    # SMPP.md §2.5 and smsutil: 152 + 14 septets; smpplib would end part 1 with 0x1B.
    text = "1" * 152 + "{" + "1" * 12
    seg = segment(text)
    assert seg.parts == ("1" * 152, "{" + "1" * 12)
    assert seg.part_units == (152, 14)
    assert not encode_parts(seg, 1)[0].endswith(b"\x1b")


def test_escape_boundary_costs_a_third_part():
    # 306 septets would fit 2 x 153, but the '{' cannot be cut.
    seg = segment("1" * 152 + "{" + "1" * 152)
    assert seg.units == 306
    assert seg.segments == 3
    assert seg.part_units == (152, 153, 1)


def test_surrogate_pair_at_the_boundary_costs_a_third_part():
    seg = segment(KA * 66 + EMOJI + KA * 66)
    assert seg.units == 134
    assert seg.segments == 3
    assert seg.part_units == (66, 67, 1)
    for payload in (encode_ucs2(p) for p in seg.parts):
        assert not 0xDC00 <= int.from_bytes(payload[:2], "big") <= 0xDFFF
        assert not 0xD800 <= int.from_bytes(payload[-2:], "big") <= 0xDBFF


def test_backtick_forces_ucs2():
    seg = segment("run `make`")
    assert seg.encoding is Encoding.UCS2
    assert seg.units == 10


def test_a_single_emoji_is_two_units():
    seg = segment(EMOJI)
    assert (seg.encoding, seg.units, seg.segments) == (Encoding.UCS2, 2, 1)


@pytest.mark.parametrize(
    ("text", "part_units"),
    [
        ("a" * 161, (152, 9)),
        ("a" * 304, (152, 152)),
        ("a" * 305, (152, 152, 1)),
        (KA * 71, (66, 5)),
        (KA * 132, (66, 66)),
        (KA * 133, (66, 66, 1)),
        ("a" * 160, (160,)),
        (KA * 70, (70,)),
    ],
)
def test_16_bit_reference_parts_hold_152_septets_or_66_units(
    text: str, part_units: tuple[int, ...]
):
    seg = segment(text, reference_bits=16)
    assert seg.part_units == part_units
    assert seg.reference_bits == 16


# Twilio message-segment-calculator tests/index.test.js and segments.test.js.
@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("{" + digits(2, 158), Encoding.GSM7, 160, 1),
        ("{" + digits(2, 159), Encoding.GSM7, 161, 2),
        ("😜" + digits(2, 68), Encoding.UCS2, 70, 1),
        ("😜" + digits(2, 69), Encoding.UCS2, 71, 2),
        (digits(1, 307), Encoding.GSM7, 307, 3),
        ("😜" + digits(2, 133), Encoding.UCS2, 135, 3),
        # issue #57: extension chars are 1 unit once a '∞' forces UCS-2
        ("|" * 24 + "{" + "|" * 28 + "∞" + "|" * 10 + "^" + "|" * 5, Encoding.UCS2, 70, 1),
    ],
)
def test_twilio_vectors(text: str, encoding: Encoding, units: int, segments: int):
    seg = segment(text)
    assert (seg.encoding, seg.units, seg.segments) == (encoding, units, segments)


def test_twilio_last_part_holds_a_single_character():
    gsm = segment(digits(1, 307))
    assert gsm.parts[-1] == "7"
    ucs = segment("😜" + digits(2, 133))
    assert ucs.parts[-1] == "4"


# jezeniel/smsutil tests/test_util.py::TestGsmSplit
@pytest.mark.parametrize(
    ("text", "part_lengths", "part_units"),
    [
        ("1" * 160, (160,), (160,)),
        ("1" * 160 + "2" * 10, (153, 17), (153, 17)),
        ("1" * 145 + "{" * 15, (149, 11), (153, 22)),
        ("1" * 152 + "{" + "1" * 12, (152, 13), (152, 14)),
    ],
)
def test_smsutil_vectors(text: str, part_lengths: tuple[int, ...], part_units: tuple[int, ...]):
    seg = segment(text)
    assert tuple(len(p) for p in seg.parts) == part_lengths
    assert seg.part_units == part_units


def test_sms_length_vector_with_extension_chars_needs_three_parts():
    # inkOfPixel/sms-length: 307 septets (two € and accented letters), 3 messages.
    text = (
        "Ultime Ore Al -56%.\n"
        "Se non l'hai ancora fatto, non perdere la tua Ultima Occasione per prendere i tuoi "
        "fantastici Horizon In Edizione Limitata a Soli 34.99€ anzichè 80€\n"
        "La Promo è valida fino a 00.00\n"
        "Consegna Gratuita.\n"
        "Ordinali Subito su https://ysms.me/u/3IAeLge\n"
        "\n"
        "Per Rinunciare https://ysms.me/u/wNT2Bb3"
    )
    seg = segment(text)
    assert (seg.encoding, seg.units, seg.segments) == (Encoding.GSM7, 307, 3)


def test_max_segments_is_inclusive():
    assert segment("a" * 153 * 10).segments == 10
    assert segment("a" * 161, max_segments=2).segments == 2
    assert segment("a" * 153 * 255, max_segments=255).segments == 255


def test_segmentation_repr_never_shows_the_text():
    seg = segment("OTP 482913 " * 20)
    assert "482913" not in repr(seg)
    assert "segments=2" in repr(seg)


# ============================================================================ errors


def test_empty_text_is_empty_content():
    with pytest.raises(EmptyContent) as info:
        segment("")
    assert info.value.code == "empty_content"
    assert info.value.field == "content"


def test_too_many_segments_is_content_too_long_without_the_text():
    text = "OTP 482913 " * 200  # 2200 septets -> 15 parts
    with pytest.raises(ContentTooLong) as info:
        segment(text)
    err = info.value
    assert err.code == "content_too_long"
    assert err.field == "content"
    assert err.detail["segments"] == 15
    assert err.detail["limit"] == 10
    assert "15 segments" in err.message
    assert "limit is 10" in err.message
    assert "482913" not in str(err.to_dict())


def test_content_too_long_counts_the_real_split():
    # 306 septets: naive division says 2, the unsplittable '{' makes it 3.
    with pytest.raises(ContentTooLong) as info:
        segment("1" * 152 + "{" + "1" * 152, max_segments=2)
    assert info.value.detail["segments"] == 3


def test_lone_surrogate_is_invalid_content_with_its_offset():
    with pytest.raises(InvalidContent) as info:
        segment("hi \ud83d there")
    assert info.value.code == "invalid_content"
    assert info.value.field == "content"
    assert info.value.detail["offset"] == 3
    assert "there" not in info.value.message


def test_encode_gsm7_rejects_non_gsm_with_offset_and_code_point():
    with pytest.raises(InvalidContent) as info:
        encode_gsm7("Pay ₹500")
    assert info.value.detail == {"offset": 4, "codepoint": "U+20B9"}
    assert "500" not in info.value.message


@pytest.mark.parametrize(
    ("call", "error", "code", "field"),
    [
        (lambda: segment(""), EmptyContent, "empty_content", "content"),
        (lambda: segment("a" * 161, max_segments=1), ContentTooLong, "content_too_long", "content"),
        (lambda: segment(KA * 71, max_segments=1), ContentTooLong, "content_too_long", "content"),
        (lambda: segment("a", max_segments=0), InvalidArgument, "invalid_argument", "max_segments"),
        (
            lambda: segment("a", max_segments=256),
            InvalidArgument,
            "invalid_argument",
            "max_segments",
        ),
        (
            lambda: segment("a", reference_bits=7),
            InvalidArgument,
            "invalid_argument",
            "reference_bits",
        ),
        (lambda: segment("a\udc00"), InvalidContent, "invalid_content", "content"),
        (lambda: encode_gsm7("ç"), InvalidContent, "invalid_content", "content"),
        (lambda: encode_ucs2("\ud800"), InvalidContent, "invalid_content", "content"),
        (lambda: decode_ucs2(b"\x00"), InvalidContent, "invalid_content", "content"),
        (lambda: decode_ucs2(b"\xd8\x3d\x00a"), InvalidContent, "invalid_content", "content"),
        (lambda: decode_gsm7(b"ab\x80"), InvalidContent, "invalid_content", "content"),
        (lambda: encode_text("`", Encoding.GSM7), InvalidContent, "invalid_content", "content"),
        (lambda: udh_concat(256, 2, 1), InvalidArgument, "invalid_argument", "reference"),
        (lambda: udh_concat(-1, 2, 1), InvalidArgument, "invalid_argument", "reference"),
        (
            lambda: udh_concat(65536, 2, 1, reference_bits=16),
            InvalidArgument,
            "invalid_argument",
            "reference",
        ),
        (
            lambda: udh_concat(1, 2, 1, reference_bits=12),
            InvalidArgument,
            "invalid_argument",
            "reference_bits",
        ),
        (lambda: udh_concat(1, 0, 1), InvalidArgument, "invalid_argument", "total"),
        (lambda: udh_concat(1, 256, 1), InvalidArgument, "invalid_argument", "total"),
        (lambda: udh_concat(1, 3, 0), InvalidArgument, "invalid_argument", "sequence"),
        (lambda: udh_concat(1, 3, 4), InvalidArgument, "invalid_argument", "sequence"),
        (
            lambda: encode_parts(segment("a" * 200), 256),
            InvalidArgument,
            "invalid_argument",
            "reference",
        ),
        (
            lambda: Encoding.GSM7.max_part_units(9),
            InvalidArgument,
            "invalid_argument",
            "reference_bits",
        ),
    ],
)
def test_every_error_path_raises_a_typed_error_with_its_code(
    call: Callable[[], Any], error: type[BharatSendError], code: str, field: str
):
    with pytest.raises(error) as info:
        call()
    assert info.value.code == code
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_inconsistent_segmentation_value_is_rejected():
    with pytest.raises(InvalidArgument):
        Segmentation(
            text="ab",
            encoding=Encoding.GSM7,
            units=2,
            segments=2,
            parts=("ab",),
            part_units=(2,),
        )


# ============================================================================ byte codecs


def test_encode_gsm7_is_unpacked_one_septet_per_octet():
    # smsutil: encode('{@}') == 1B 28 00 1B 29
    assert encode_gsm7("{@}") == b"\x1b\x28\x00\x1b\x29"
    assert encode_gsm7("Hi!") == b"Hi!"


def test_encode_ucs2_is_utf16_big_endian():
    # smsutil: encode('ちは') == 30 61 30 6F
    assert encode_ucs2("ちは") == b"\x30\x61\x30\x6f"
    assert encode_ucs2(EMOJI) == b"\xd8\x3d\xde\x00"
    assert decode_ucs2(b"\xd8\x3d\xde\x00") == EMOJI


def test_encode_text_dispatches_on_encoding():
    assert encode_text("€", Encoding.GSM7) == b"\x1b\x65"
    assert encode_text("€", Encoding.UCS2) == b"\x20\xac"


def test_escape_before_an_undefined_code_decodes_as_the_basic_character():
    # TS 23.038 §6.2.1.1: show the default-alphabet character for an unknown code.
    assert decode_gsm7(b"\x1bA") == "A"
    assert decode_gsm7(b"x\x1b\x00y") == "x@y"


def test_reserved_and_truncated_escapes_decode_as_space():
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"
    assert decode_gsm7(b"abc\x1b") == "abc "


def test_the_full_alphabet_round_trips():
    # smsutil test_roundtrip, plus the form feed.
    text = "".join(GSM7_ALL)
    assert decode_gsm7(encode_gsm7(text)) == text


# ============================================================================ UDH


def test_udh_concat_8_bit_layout():
    assert udh_concat(0xAB, 3, 1) == bytes.fromhex("050003ab0301")
    assert udh_concat(0, 255, 255) == bytes.fromhex("05000300ffff")


def test_udh_concat_16_bit_layout():
    assert udh_concat(0x1234, 2, 2, reference_bits=16) == bytes.fromhex("06080412340202")


def test_parse_udh_concat_reads_both_layouts_and_returns_the_payload():
    assert parse_udh_concat(udh_concat(7, 3, 2) + b"hello") == (7, 3, 2, b"hello")
    assert parse_udh_concat(udh_concat(300, 4, 4, reference_bits=16) + b"\x00a") == (
        300,
        4,
        4,
        b"\x00a",
    )


def test_parse_udh_concat_skips_other_information_elements():
    # 0x05 application port addressing (4 octets) before the concat IE.
    data = bytes.fromhex("0b05041f4100000003090201") + b"x"
    assert parse_udh_concat(data) == (9, 2, 1, b"x")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05\x00\x03\x01",  # UDHL longer than the data
        b"\x03\x00\x03\x01",  # IE longer than the UDH
        b"\x02\x05\x00",  # no concat IE
        bytes.fromhex("050003010003"),  # sequence > total: ignored (TS 23.040 §9.2.3.24.1)
        bytes.fromhex("050003010200"),  # sequence 0
        bytes.fromhex("050003010000"),  # total 0
        bytes.fromhex("0500040102030400"),  # 0x00 with the wrong length
        b"\x01\x00",  # truncated IE header
    ],
)
def test_parse_udh_concat_returns_none_for_unusable_headers(data: bytes):
    assert parse_udh_concat(data) is None


def test_encode_parts_single_segment_is_the_plain_encoded_text():
    assert encode_parts(segment("Hi {you}"), 0) == (b"Hi \x1b\x28you\x1b\x29",)
    assert encode_parts(segment(KA), 255) == (b"\x09\x15",)


def test_encode_parts_multipart_prefixes_each_part_with_its_udh():
    seg = segment("a" * 161)
    first, second = encode_parts(seg, 0x42)
    assert first == bytes.fromhex("050003420201") + b"a" * 153
    assert second == bytes.fromhex("050003420202") + b"a" * 8
    seg16 = segment("a" * 161, reference_bits=16)
    assert encode_parts(seg16, 0xBEEF)[1] == bytes.fromhex("060804beef0202") + b"a" * 9


# ============================================================================ properties

# Runs of a few characters reach part boundaries far more often than random text.
GSM_RUN_CHARS = "a{€1 ^"
UCS2_RUN_CHARS = f"a{KA}{EMOJI}€" + "🇮"


def runs(alphabet: str) -> st.SearchStrategy[str]:
    """Texts made of runs of characters from ``alphabet`` (0 to ~1000 chars)."""
    run = st.tuples(st.sampled_from(alphabet), st.integers(min_value=1, max_value=90))
    return st.lists(run, min_size=1, max_size=12).map(lambda rs: "".join(c * n for c, n in rs))


gsm_texts = st.one_of(
    st.text(alphabet=GSM7_ALL, min_size=1, max_size=400),
    runs(GSM_RUN_CHARS),
)
ucs2_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=300).map(
        lambda t: t + "₹"
    ),
    runs(UCS2_RUN_CHARS).map(lambda t: KA + t),
)
any_texts = st.one_of(gsm_texts, ucs2_texts)
reference_bits = st.sampled_from([8, 16])


def brute_force_min_parts(text: str, encoding: Encoding, bits: int) -> int:
    """Fewest parts by dynamic programming over every cut between characters."""
    weights = [char_units(c, encoding) for c in text]
    if sum(weights) <= SINGLE[encoding]:
        return 1
    capacity = PART[encoding, bits]
    best = [0] + [math.inf] * len(text)
    for end in range(1, len(text) + 1):
        used = 0
        for start in range(end - 1, -1, -1):
            used += weights[start]
            if used > capacity:
                break
            best[end] = min(best[end], best[start] + 1)
    return int(best[-1])


@given(any_texts, reference_bits)
def test_parts_join_back_to_the_text(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    assert "".join(seg.parts) == text
    assert seg.segments == len(seg.parts) == len(seg.part_units)
    assert all(seg.parts)


@given(any_texts, reference_bits)
def test_every_part_fits_its_size_in_units(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    limit = SINGLE[seg.encoding] if seg.segments == 1 else PART[seg.encoding, bits]
    for part, units in zip(seg.parts, seg.part_units, strict=True):
        assert units == sum(char_units(c, seg.encoding) for c in part)
        assert units <= limit
    assert sum(seg.part_units) == seg.units


@given(gsm_texts, reference_bits)
def test_no_gsm_part_ends_in_an_escape(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    udh_len = 0 if seg.segments == 1 else (6 if bits == 8 else 7)
    for octets, part in zip(encode_parts(seg, 1), seg.parts, strict=True):
        payload = octets[udh_len:]
        assert not payload.endswith(b"\x1b")
        assert decode_gsm7(payload) == part


@given(ucs2_texts, reference_bits)
def test_no_ucs2_part_cuts_a_surrogate_pair(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    assert seg.encoding is Encoding.UCS2
    udh_len = 0 if seg.segments == 1 else (6 if bits == 8 else 7)
    for octets, part in zip(encode_parts(seg, 1), seg.parts, strict=True):
        payload = octets[udh_len:]
        assert not 0xDC00 <= int.from_bytes(payload[:2], "big") <= 0xDFFF
        assert not 0xD800 <= int.from_bytes(payload[-2:], "big") <= 0xDBFF
        assert decode_ucs2(payload) == part


@settings(deadline=None)  # the brute force is quadratic-ish; no timing is asserted anywhere
@given(st.one_of(runs(GSM_RUN_CHARS), runs(UCS2_RUN_CHARS)), reference_bits)
def test_segment_count_is_minimal(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    assert seg.segments == brute_force_min_parts(text, seg.encoding, bits)


@given(any_texts, reference_bits)
def test_every_encoded_part_fits_140_octets(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    for octets in encode_parts(seg, 0):
        assert len(octets) <= 254  # SMPP sm_length
        udh = parse_udh_concat(octets) if seg.is_multipart else None
        udh_octets = len(octets) - len(udh[3]) if udh else 0
        payload_len = len(octets) - udh_octets
        if seg.encoding is Encoding.UCS2:
            assert len(octets) <= 140
        else:
            # TS 23.040 §9.2.3.16: packed, the UDH is padded to a septet boundary
            # and UDH + text must fit 160 septets = 140 octets.
            assert math.ceil(udh_octets * 8 / 7) + payload_len <= 160
            assert math.ceil((math.ceil(udh_octets * 8 / 7) + payload_len) * 7 / 8) <= 140


@given(any_texts, reference_bits, st.integers(min_value=0, max_value=255))
def test_multipart_udh_numbers_the_parts_in_order(text: str, bits: int, reference: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    octets = encode_parts(seg, reference)
    if not seg.is_multipart:
        assert octets == (encode_text(text, seg.encoding),)
        return
    for n, (data, part) in enumerate(zip(octets, seg.parts, strict=True), start=1):
        parsed = parse_udh_concat(data)
        assert parsed is not None
        assert parsed[:3] == (reference, seg.segments, n)
        assert parsed[3] == encode_text(part, seg.encoding)


@given(st.text(alphabet=GSM7_ALL))
def test_gsm7_decode_inverts_encode(text: str):
    assert decode_gsm7(encode_gsm7(text)) == text


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_ucs2_decode_inverts_encode(text: str):
    assert decode_ucs2(encode_ucs2(text)) == text


@given(st.text(alphabet=GSM7_ALL))
def test_gsm7_units_equal_encoded_length(text: str):
    assert gsm7_units(text) == len(encode_gsm7(text))


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_ucs2_units_equal_half_the_encoded_length(text: str):
    assert ucs2_units(text) == len(encode_ucs2(text)) // 2


@given(any_texts, reference_bits)
def test_single_segment_iff_units_fit_160_or_70(text: str, bits: int):
    seg = segment(text, max_segments=255, reference_bits=bits)
    expected_units = (
        gsm7_units(text) if seg.encoding is Encoding.GSM7 else len(encode_ucs2(text)) // 2
    )
    assert seg.units == expected_units
    assert (seg.segments == 1) == (seg.units <= SINGLE[seg.encoding])


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_encoding_is_gsm7_iff_every_character_is_in_03_38(text: str):
    is_gsm = all(c in GSM7_BASIC_CHARS or c in GSM7_EXTENSION_CHARS for c in text)
    assert (detect_encoding(text) is Encoding.GSM7) == is_gsm
    assert (first_non_gsm7(text) is None) == is_gsm
    assert (gsm7_units(text) is not None) == is_gsm
    found = first_non_gsm7(text)
    if found is not None:
        offset, char = found
        assert text[offset] == char
        assert all(c in GSM7_ALL for c in text[:offset])


@given(any_texts, st.integers(min_value=1, max_value=12))
def test_too_many_parts_raise_content_too_long_with_the_count(text: str, limit: int):
    full = segment(text, max_segments=255)
    if full.segments <= limit:
        assert segment(text, max_segments=limit) == full
    else:
        with pytest.raises(ContentTooLong) as info:
            segment(text, max_segments=limit)
        assert info.value.detail["segments"] == full.segments
        assert info.value.detail["limit"] == limit


@given(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=50),
    st.characters(categories=("Cs",)),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=50),
)
def test_a_lone_surrogate_anywhere_is_invalid_content_at_its_offset(
    before: str, surrogate: str, after: str
):
    with pytest.raises(InvalidContent) as info:
        segment(before + surrogate + after)
    assert info.value.detail["offset"] == len(before)


@given(st.binary())
def test_decode_gsm7_raises_only_invalid_content(data: bytes):
    try:
        text = decode_gsm7(data)
    except InvalidContent:
        assert any(octet > 0x7F for octet in data)
    else:
        assert detect_encoding(text) is Encoding.GSM7


@given(st.binary())
def test_decode_ucs2_raises_only_invalid_content(data: bytes):
    try:
        text = decode_ucs2(data)
    except InvalidContent:
        pass
    else:
        assert encode_ucs2(text) == data


@given(st.binary())
def test_parse_udh_concat_never_raises(data: bytes):
    parsed = parse_udh_concat(data)
    if parsed is not None:
        reference, total, sequence, payload = parsed
        assert 1 <= sequence <= total <= 255
        assert 0 <= reference <= 0xFFFF
        assert data.endswith(payload)


@given(
    reference_bits.flatmap(
        lambda bits: st.tuples(
            st.just(bits),
            st.integers(min_value=0, max_value=(1 << bits) - 1),
            st.integers(min_value=1, max_value=255),
        )
    ),
    st.data(),
    st.binary(max_size=140),
)
def test_udh_concat_round_trips_through_parse(
    bits_ref_total: tuple[int, int, int], data: st.DataObject, payload: bytes
):
    bits, reference, total = bits_ref_total
    sequence = data.draw(st.integers(min_value=1, max_value=total))
    header = udh_concat(reference, total, sequence, reference_bits=bits)
    assert len(header) == (6 if bits == 8 else 7)
    assert parse_udh_concat(header + payload) == (reference, total, sequence, payload)


# ============================================================================ module surface


def test_all_names_exist_and_public_callables_are_documented():
    for name in enc.__all__:
        obj = getattr(enc, name)
        if callable(obj):
            assert obj.__doc__, name
    assert set(enc.__all__) >= {
        "Encoding",
        "Segmentation",
        "segment",
        "detect_encoding",
        "gsm7_units",
        "ucs2_units",
        "first_non_gsm7",
        "encode_gsm7",
        "decode_gsm7",
        "encode_ucs2",
        "decode_ucs2",
        "encode_text",
        "udh_concat",
        "parse_udh_concat",
        "encode_parts",
    }
