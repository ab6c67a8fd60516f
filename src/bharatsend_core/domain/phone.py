"""Phone numbers: turn what people type into one E.164 value we can send SMS to.

Every destination enters the system through :func:`parse_phone`, so the rest of
the code only ever sees a :class:`PhoneNumber` that is valid, SMS-capable and in
an allowed region. The rules (DLT.md, "Phone numbers"):

* an Indian destination is ``+91`` followed by 10 digits starting 6-9, of type
  mobile (a valid Indian landline such as ``+915123456789`` is refused);
* only the regions in ``allowed_regions`` are accepted, India-only by default:
  SMS-pumping fraud sends OTPs to premium foreign ranges, and refusing foreign
  numbers unless the caller opts in is the first defence;
* the operator looked up from the number series is only a hint: numbers port
  between operators (MNP) and the series keeps the original operator.

Pure: only phonenumbers' bundled metadata is read; no clock, no randomness. Error
messages describe what is wrong with the input but never repeat the number, so
they are safe to log.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from typing import Final

import phonenumbers
from attrs import field, frozen
from phonenumbers import carrier

from bharatsend_core.domain.errors import (
    InvalidArgument,
    InvalidPhoneNumber,
    UnsupportedDestination,
)

__all__ = [
    "MAX_INPUT_LENGTH",
    "OPERATOR_PREFIX_DIGITS",
    "NumberType",
    "PhoneNumber",
    "is_valid_indian_mobile",
    "parse_phone",
]

#: Longest input (after trimming surrounding whitespace) we try to parse. The
#: longest honest form, ``(+91) 98765 43210``, has 17 characters; anything much
#: longer is junk, two numbers, or an attempt to make the parser work hard.
MAX_INPUT_LENGTH: Final = 32

_FIELD: Final = "phone_number"

_PT = phonenumbers.PhoneNumberType


class NumberType(enum.StrEnum):
    """What kind of line a number is, per phonenumbers' metadata.

    Kept as our own enum so callers (and stored rows, error details) never depend
    on phonenumbers' integer constants. Only :attr:`MOBILE` and
    :attr:`FIXED_LINE_OR_MOBILE` can receive SMS.
    """

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_NUMBER_TYPES: Final[dict[int, NumberType]] = {
    _PT.MOBILE: NumberType.MOBILE,
    _PT.FIXED_LINE: NumberType.FIXED_LINE,
    _PT.FIXED_LINE_OR_MOBILE: NumberType.FIXED_LINE_OR_MOBILE,
    _PT.TOLL_FREE: NumberType.TOLL_FREE,
    _PT.PREMIUM_RATE: NumberType.PREMIUM_RATE,
    _PT.SHARED_COST: NumberType.SHARED_COST,
    _PT.VOIP: NumberType.VOIP,
    _PT.PERSONAL_NUMBER: NumberType.PERSONAL_NUMBER,
    _PT.PAGER: NumberType.PAGER,
    _PT.UAN: NumberType.UAN,
    _PT.VOICEMAIL: NumberType.VOICEMAIL,
    _PT.UNKNOWN: NumberType.UNKNOWN,
}

# Only these line types can receive an SMS. In regions where metadata cannot
# tell mobile from fixed line (US, Canada) numbers are fixed_line_or_mobile.
_SMS_CAPABLE: Final = frozenset({NumberType.MOBILE, NumberType.FIXED_LINE_OR_MOBILE})

# Defence in depth against metadata quirks: phonenumbers calls +91 1600xxxxxx
# (a voice-only series for banks and government callers) a valid mobile.
_INDIAN_MOBILE_RE: Final = re.compile(r"[6-9][0-9]{9}")

# Separators people type between digit groups: ASCII, the Unicode dashes that
# word processors substitute, and the full-width forms of East Asian keyboards.
# Deliberately absent: '/', which phonenumbers reads as "a second number
# follows", and ';', ',', '#', which introduce extensions or pauses.
_SEPARATORS: Final = frozenset(" -.()\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\uff08\uff09")
_PLUS_SIGNS: Final = frozenset("+\uff0b")

_E164_RE: Final = re.compile(r"\+[1-9][0-9]{1,14}")
_KNOWN_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS) | {
    phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
}
_DEFAULT_ALLOWED: Final = frozenset({"IN"})


def _check_e164(instance: PhoneNumber, attribute: object, value: str) -> None:
    if not _E164_RE.fullmatch(value):
        raise InvalidArgument("e164 must be '+' and 2-15 digits", field="e164")


@frozen
class PhoneNumber:
    """A valid, SMS-capable destination in canonical form; build it with :func:`parse_phone`.

    Two values are equal exactly when they describe the same number, because
    every field is derived deterministically from the E.164 form: parsing
    :attr:`e164` again gives an equal value.

    ``operator`` is the operator that the number *series* was allocated to,
    according to phonenumbers' carrier data, or ``None`` when unknown. It is a
    HINT only (for routing preferences or support dashboards): numbers port
    between operators, so it must never decide delivery or billing.
    """

    #: "+919876543210": the canonical form, used as the storage key.
    e164: str = field(validator=_check_e164)
    #: ISO 3166-1 region code, e.g. "IN" ("001" for non-geographic numbers).
    region: str
    #: Country calling code, e.g. 91.
    country_code: int
    #: National significant number, e.g. "9876543210" (keeps meaningful leading zeros).
    national_number: str
    #: Line type per metadata; always mobile or fixed_line_or_mobile from parse_phone.
    number_type: NumberType
    #: Series operator (a hint: numbers port), or None when the series is unknown.
    operator: str | None

    def __attrs_post_init__(self) -> None:
        # The redundant fields must agree, or equality would lie.
        if self.e164 != f"+{self.country_code}{self.national_number}":
            raise InvalidArgument(
                "e164 must equal '+' + country_code + national_number", field="e164"
            )

    @functools.cached_property
    def national(self) -> str:
        """National format as phonenumbers renders it, e.g. "098765 43210", for display.

        Computed on first use: it is presentation only, and formatting costs
        more than the rest of parsing on the fast path.
        """
        number = phonenumbers.PhoneNumber(
            country_code=self.country_code, national_number=int(self.national_number)
        )
        if self.national_number.startswith("0"):
            number.italian_leading_zero = True
            number.number_of_leading_zeros = len(self.national_number) - len(
                self.national_number.lstrip("0")
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)

    @property
    def msisdn(self) -> str:
        """E.164 digits without '+' ("919876543210"): what SMPP ``destination_addr`` carries."""
        return self.e164[1:]

    def __str__(self) -> str:
        """The E.164 form, so f-strings and SQL parameters get the canonical text."""
        return self.e164


def _invalid(message: str, reason: str) -> InvalidPhoneNumber:
    return InvalidPhoneNumber(message, field=_FIELD, detail={"reason": reason})


def _check_arguments(default_region: str, allowed_regions: frozenset[str]) -> None:
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidArgument(
            "default_region must be an upper-case region code phonenumbers knows, such as 'IN'",
            field="default_region",
        )
    if not allowed_regions:
        raise InvalidArgument(
            "allowed_regions must name at least one region, such as frozenset({'IN'})",
            field="allowed_regions",
        )
    # frozenset() also catches a bare string ("IN" -> {"I", "N"}, both unknown).
    unknown = frozenset(allowed_regions) - _KNOWN_REGIONS
    if unknown:
        raise InvalidArgument(
            "allowed_regions holds unknown region codes; use upper-case codes such as 'IN'",
            field="allowed_regions",
            detail={"unknown": sorted(unknown)},
        )


def _clean(raw: str) -> str:
    """Reduce the typed text to digits, separators and one leading '+', or raise.

    We check characters ourselves instead of trusting phonenumbers, which is
    lenient on purpose: it converts letters to keypad digits ("1-800-FLOWERS"),
    reads "ext"/";ext="/"#" as extensions and skips junk before the first digit.
    A destination must be exactly what the user meant, or refused.
    """
    text = raw.strip()
    if not text:
        raise _invalid("phone number is empty", "empty")
    if len(text) > MAX_INPUT_LENGTH:
        raise _invalid(f"phone number is longer than {MAX_INPUT_LENGTH} characters", "too_long")
    if any(ch.isalpha() for ch in text):
        raise _invalid(
            "phone number must not contain letters (no vanity numbers or extensions)", "letters"
        )
    chars: list[str] = []
    seen_digit = False
    seen_plus = False
    for ch in text:
        if ch.isdecimal():
            # Any script's decimal digits (Devanagari ०-९ too); phonenumbers
            # maps them to ASCII, and e164 is always ASCII.
            seen_digit = True
            chars.append(ch)
        elif ch.isspace():
            # Non-breaking and other spaces from copy-paste; phonenumbers
            # rejects tabs and newlines inside a number, we treat them as spaces.
            chars.append(" ")
        elif ch in _SEPARATORS:
            chars.append(ch)
        elif ch in _PLUS_SIGNS:
            if seen_plus or seen_digit:
                raise _invalid("'+' may appear only once, before the digits", "misplaced_plus")
            seen_plus = True
            chars.append("+")
        elif _is_invisible(ch):
            # Bidi marks and zero-width characters that phone contact apps add
            # around copied numbers (U+202A ... U+202C).
            continue
        else:
            raise _invalid(
                "phone number may contain only digits, spaces, '+' and - . ( )", "bad_character"
            )
    if not seen_digit:
        raise _invalid("phone number has no digits", "no_digits")
    return "".join(chars)


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


# The fast path: most traffic is an Indian mobile typed in one of a few plain
# ASCII forms. For those we skip phonenumbers' general parser and check the
# national number against phonenumbers' own metadata pattern for Indian
# mobiles, so the answer is the same (a property test compares both paths).
_IN_METADATA: Final = phonenumbers.PhoneMetadata.metadata_for_region("IN")


def _desc_pattern(desc: phonenumbers.PhoneNumberDesc | None) -> re.Pattern[str] | None:
    if desc is None or desc.national_number_pattern is None:
        return None
    return re.compile(desc.national_number_pattern)


assert _IN_METADATA is not None
_IN_GENERAL: Final = _desc_pattern(_IN_METADATA.general_desc)
_IN_MOBILE: Final = _desc_pattern(_IN_METADATA.mobile)
_IN_FIXED: Final = _desc_pattern(_IN_METADATA.fixed_line)
# phonenumbers tries these types before fixed line and mobile; a number matching
# one of them takes the general path, which classifies it.
_IN_SPECIAL: Final = tuple(
    p
    for p in (
        _desc_pattern(getattr(_IN_METADATA, name))
        for name in (
            "premium_rate",
            "toll_free",
            "shared_cost",
            "voip",
            "personal_number",
            "pager",
            "uan",
            "voicemail",
        )
    )
    if p is not None
)
_FAST_STRIP: Final = str.maketrans("", "", " -.()")
_FAST_FORM: Final = re.compile(r"(?:\+91|0091|91|0)?([6-9][0-9]{9})")
#: phonenumbers' carrier data for +91 uses prefixes of at most 7 characters
#: ("91" + 5 digits), so the series operator depends on 5 national digits only.
OPERATOR_PREFIX_DIGITS: Final = 5


@functools.lru_cache(maxsize=100_000)
def _indian_series_operator(series: str) -> str | None:
    number = phonenumbers.PhoneNumber(country_code=91, national_number=int(series + "00000"))
    return carrier.name_for_number(number, "en") or None


def _fast_indian_mobile(raw: str) -> PhoneNumber | None:
    """The value for a plainly written Indian mobile, or None to take the general path."""
    if not raw.isascii() or raw.count("+") > 1:
        return None
    compact = raw.translate(_FAST_STRIP)
    m = _FAST_FORM.fullmatch(compact)
    if m is None or ("+" in raw and not raw.lstrip(" (").startswith("+")):
        return None
    if not _balanced_parentheses(raw):
        return None
    national = m.group(1)
    if (
        _IN_GENERAL is None
        or _IN_MOBILE is None
        or not _IN_GENERAL.fullmatch(national)
        or not _IN_MOBILE.fullmatch(national)
        or any(p.fullmatch(national) for p in _IN_SPECIAL)
    ):
        return None
    also_fixed = _IN_FIXED is not None and _IN_FIXED.fullmatch(national) is not None
    return PhoneNumber(
        e164="+91" + national,
        region="IN",
        country_code=91,
        national_number=national,
        number_type=NumberType.FIXED_LINE_OR_MOBILE if also_fixed else NumberType.MOBILE,
        operator=_indian_series_operator(national[:OPERATOR_PREFIX_DIGITS]),
    )


def _balanced_parentheses(raw: str) -> bool:
    depth = 0
    for ch in raw:
        if ch == "(":
            depth += 1
            if depth > 1:
                return False
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def parse_phone(
    raw: str,
    *,
    default_region: str = "IN",
    allowed_regions: frozenset[str] = _DEFAULT_ALLOWED,
) -> PhoneNumber:
    """Parse typed text into a canonical :class:`PhoneNumber` we may send SMS to.

    Accepts the forms people type: ``9876543210``, ``09876543210``,
    ``919876543210``, ``+91 98765-43210``, ``(+91) 98765 43210``,
    ``0091 98765 43210``, ``+91.98765.43210``, with surrounding or
    non-breaking spaces. Numbers without a country code are read in
    ``default_region``.

    Raises:
        InvalidPhoneNumber: the text is not one valid number (empty, too long,
            letters, an extension, unparseable, or invalid per metadata).
        UnsupportedDestination: a valid number we will not send to: not a
            mobile, outside ``allowed_regions`` (India-only by default, against
            SMS-pumping fraud), or an Indian number not of the form 6-9 plus 9
            digits.
        InvalidArgument: ``default_region`` is not a known upper-case region
            code, or ``allowed_regions`` is empty or holds unknown codes.

    Idempotent: ``parse_phone(p.e164, allowed_regions=...) == p``.
    """
    _check_arguments(default_region, allowed_regions)
    candidate: object = raw
    if not isinstance(candidate, str):
        raise _invalid("phone number must be text", "not_text")
    if default_region == "IN" and "IN" in allowed_regions and len(raw) <= MAX_INPUT_LENGTH:
        fast = _fast_indian_mobile(raw.strip())
        if fast is not None:
            return fast
    return _parse_general(candidate, default_region, allowed_regions)


def _parse_general(raw: str, default_region: str, allowed_regions: frozenset[str]) -> PhoneNumber:
    """Any number in any region, through phonenumbers' full parser."""
    text = _clean(raw)
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise _invalid("phone number could not be parsed", "unparseable") from None
    if parsed.extension:
        raise _invalid("phone number must not have an extension", "extension")
    if not phonenumbers.is_valid_number(parsed):
        raise _invalid("phone number is not a valid number", "not_valid")

    # Rebuild from the identifying fields only, so nothing from the typed form
    # (raw input, country-code source, carrier code) can leak into the derived
    # strings: equal numbers give equal values.
    number = phonenumbers.PhoneNumber(
        country_code=parsed.country_code,
        national_number=parsed.national_number,
        italian_leading_zero=parsed.italian_leading_zero,
        number_of_leading_zeros=parsed.number_of_leading_zeros,
    )
    region = phonenumbers.region_code_for_number(number) or phonenumbers.UNKNOWN_REGION
    number_type = _NUMBER_TYPES.get(phonenumbers.number_type(number), NumberType.UNKNOWN)
    national_number = phonenumbers.national_significant_number(number)
    detail = {"region": region, "number_type": number_type.value}

    if region not in allowed_regions:
        raise UnsupportedDestination(
            f"numbers in region {region} are not allowed; add {region!r} to allowed_regions "
            "to send there",
            field=_FIELD,
            detail={**detail, "allowed_regions": sorted(allowed_regions)},
        )
    if number_type not in _SMS_CAPABLE:
        raise UnsupportedDestination(
            f"a {number_type.value} number cannot receive SMS; use a mobile number",
            field=_FIELD,
            detail=detail,
        )
    if region == "IN" and not _INDIAN_MOBILE_RE.fullmatch(national_number):
        raise UnsupportedDestination(
            "an Indian mobile number is 10 digits starting with 6, 7, 8 or 9",
            field=_FIELD,
            detail=detail,
        )

    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=region,
        country_code=number.country_code or 0,
        national_number=national_number,
        number_type=number_type,
        operator=carrier.name_for_number(number, "en") or None,
    )


def is_valid_indian_mobile(raw: str) -> bool:
    """True when :func:`parse_phone` would accept ``raw`` as an Indian mobile.

    For form validation and quick filters where an exception is unwelcome;
    use :func:`parse_phone` to learn *why* a number is refused.
    """
    try:
        parse_phone(raw)
    except (InvalidPhoneNumber, UnsupportedDestination):
        return False
    return True
