"""Behaviour of phone-number parsing: what people type in, one E.164 value out."""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bharatsend_core.domain import phone
from bharatsend_core.domain.errors import (
    BharatSendError,
    InvalidArgument,
    InvalidPhoneNumber,
    UnsupportedDestination,
)
from bharatsend_core.domain.phone import (
    NumberType,
    PhoneNumber,
    is_valid_indian_mobile,
    parse_phone,
)

# phonenumbers loads metadata lazily, so the first example can be slow: never a deadline.
PROPERTY = settings(deadline=None)

IN_AND_US = frozenset({"IN", "US"})

# ----------------------------------------------------------------------- accepted

ACCEPTED = [
    # The forms people type, all for one Airtel-series number.
    ("9876543210", "+919876543210"),
    ("09876543210", "+919876543210"),
    ("919876543210", "+919876543210"),
    ("+919876543210", "+919876543210"),
    ("+91 98765 43210", "+919876543210"),
    ("+91 98765-43210", "+919876543210"),
    ("+91-98765-43210", "+919876543210"),
    ("(+91) 98765 43210", "+919876543210"),
    ("(+91)-9876543210", "+919876543210"),
    ("0091 98765 43210", "+919876543210"),
    ("+91.98765.43210", "+919876543210"),
    ("91 98765 43210", "+919876543210"),
    ("+91 098765 43210", "+919876543210"),
    ("098765 43210", "+919876543210"),
    ("  +91 98765 43210\n", "+919876543210"),
    ("\u00a0+91\u00a098765\u00a043210\u00a0", "+919876543210"),
    ("+91\t98765 43210", "+919876543210"),
    ("\u202a+91 98765 43210\u202c", "+919876543210"),  # bidi marks from a contacts app
    ("+91 98765\u201343210", "+919876543210"),  # en dash from a word processor
    ("＋９１ ９８７６５ ４３２１０", "+919876543210"),  # full-width, from an East Asian IME
    ("९८७६५४३२१०", "+919876543210"),  # Devanagari digits
    # Several operators' series and all three leading digits 6-9.
    ("98200 12345", "+919820012345"),  # Vodafone
    ("9812345678", "+919812345678"),  # Idea
    ("70123 45678", "+917012345678"),  # Jio
    ("6291234567", "+916291234567"),  # Jio, 6-series
    ("9448012345", "+919448012345"),  # BSNL
    ("8765432101", "+918765432101"),  # BSNL, fixed_line_or_mobile in metadata
    ("+91 6012345678", "+916012345678"),  # valid mobile with no operator data
]


@pytest.mark.parametrize(("raw", "e164"), ACCEPTED)
def test_common_forms_normalise_to_e164(raw: str, e164: str) -> None:
    number = parse_phone(raw)
    assert number.e164 == e164
    assert number.region == "IN"
    assert number.country_code == 91
    assert number.national_number == e164[3:]
    assert number.number_type in {NumberType.MOBILE, NumberType.FIXED_LINE_OR_MOBILE}


def test_parsed_number_carries_every_canonical_form() -> None:
    number = parse_phone("+91 98765 43210")
    assert number == PhoneNumber(
        e164="+919876543210",
        region="IN",
        country_code=91,
        national_number="9876543210",
        number_type=NumberType.MOBILE,
        operator=number.operator,
    )
    assert number.msisdn == "919876543210"
    assert str(number) == "+919876543210"
    assert f"{number}" == "+919876543210"


@pytest.mark.parametrize("raw", ["+919876543210", "+917012345678", "+919820012345"])
def test_operator_hint_is_present_for_typical_series(raw: str) -> None:
    operator = parse_phone(raw).operator
    assert operator
    assert operator.strip() == operator


def test_operator_is_none_when_series_is_unknown() -> None:
    assert parse_phone("+916012345678").operator is None


# ----------------------------------------------------------------------- rejected

REJECTED = [
    # Not a number at all.
    ("", InvalidPhoneNumber),
    ("   ", InvalidPhoneNumber),
    ("\u00a0\u00a0", InvalidPhoneNumber),
    ("+", InvalidPhoneNumber),
    ("---", InvalidPhoneNumber),
    ("()", InvalidPhoneNumber),
    ("9" * 33, InvalidPhoneNumber),
    ("+91 98765 43210" + " " * 10 + "0000000", InvalidPhoneNumber),
    # Letters: vanity numbers, typos, extensions.
    ("1-800-FLOWERS", InvalidPhoneNumber),
    ("+91 98765 4321O", InvalidPhoneNumber),  # capital O, not zero
    ("98765 43210 ext 12", InvalidPhoneNumber),
    ("98765 43210 x12", InvalidPhoneNumber),
    ("+919876543210;ext=1", InvalidPhoneNumber),
    ("tel:+919876543210", InvalidPhoneNumber),
    # Punctuation phonenumbers would read as extensions, pauses or a second number.
    ("9876543210#", InvalidPhoneNumber),
    ("9876543210,1", InvalidPhoneNumber),
    ("9876543210/9876543211", InvalidPhoneNumber),
    ("98765 43210 / 11", InvalidPhoneNumber),
    ("*9876543210", InvalidPhoneNumber),
    ("++919876543210", InvalidPhoneNumber),
    ("98765+43210", InvalidPhoneNumber),
    ("+91+9876543210", InvalidPhoneNumber),
    # Parseable but not valid.
    ("98765432101", InvalidPhoneNumber),  # 11 digits
    ("987654321", InvalidPhoneNumber),  # 9 digits
    ("91", InvalidPhoneNumber),
    ("0919876543210", InvalidPhoneNumber),
    ("+91 5555555555", InvalidPhoneNumber),
    ("+882 1234 5678", InvalidPhoneNumber),
    ("98765 43210 98765", InvalidPhoneNumber),
    # Valid, but not something we send SMS to.
    ("+915123456789", UnsupportedDestination),  # Indian fixed line
    ("0512 345 6789", UnsupportedDestination),  # the same, typed nationally
    ("+91 1800 123 4567", UnsupportedDestination),  # toll free
    ("+91 140 123 4567", UnsupportedDestination),  # UAN
    ("+91 1600 123456", UnsupportedDestination),  # metadata says mobile; 6-9 rule refuses
    ("+14155552671", UnsupportedDestination),  # US, not allowed by default
    ("+44 7400 123456", UnsupportedDestination),  # UK mobile, not allowed by default
    ("+7 912 345 67 89", UnsupportedDestination),  # Russian mobile, not allowed by default
    ("+800 1234 5678", UnsupportedDestination),  # international freephone
]


@pytest.mark.parametrize(("raw", "error"), REJECTED)
def test_rejected_inputs_raise_the_expected_error(raw: str, error: type[BharatSendError]) -> None:
    with pytest.raises(error) as caught:
        parse_phone(raw)
    assert caught.value.code == error.code
    assert caught.value.code in {"invalid_phone_number", "unsupported_destination"}
    assert caught.value.field == "phone_number"
    assert caught.value.http_status == 422


@pytest.mark.parametrize(("raw", "_error"), REJECTED)
def test_error_messages_never_repeat_the_number(raw: str, _error: type[BharatSendError]) -> None:
    digits = "".join(ch for ch in raw if ch.isdigit())
    with pytest.raises((InvalidPhoneNumber, UnsupportedDestination)) as caught:
        parse_phone(raw)
    if len(digits) >= 5:
        assert digits[-5:] not in str(caught.value.to_dict())


def test_indian_landline_is_refused_with_its_number_type() -> None:
    with pytest.raises(UnsupportedDestination) as caught:
        parse_phone("+915123456789")
    assert caught.value.detail["region"] == "IN"
    assert caught.value.detail["number_type"] == "fixed_line"


def test_invalid_phone_number_says_why_in_detail() -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_phone("1-800-FLOWERS")
    assert caught.value.detail["reason"] == "letters"


INVALID_ARGUMENTS = [
    {"default_region": "in"},
    {"default_region": "XX"},
    {"default_region": ""},
    {"default_region": "001"},
    {"allowed_regions": frozenset()},
    {"allowed_regions": frozenset({"IN", "us"})},
    {"allowed_regions": "IN"},  # a bare string is a set of letters
]


@pytest.mark.parametrize("kwargs", INVALID_ARGUMENTS)
def test_bad_arguments_raise_invalid_argument(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_phone("9876543210", **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_argument"
    assert caught.value.field in {"default_region", "allowed_regions"}


def test_bad_arguments_are_reported_before_the_input_is_looked_at() -> None:
    with pytest.raises(InvalidArgument):
        parse_phone("not a number", allowed_regions=frozenset())


def test_non_text_input_is_an_invalid_phone_number() -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(9876543210)  # type: ignore[arg-type]


# ---------------------------------------------------------------- allowed regions


def test_us_mobile_is_refused_by_default_and_the_message_says_how_to_allow_it() -> None:
    with pytest.raises(UnsupportedDestination) as caught:
        parse_phone("+1 415 555 2671")
    assert caught.value.detail["region"] == "US"
    assert caught.value.detail["number_type"] == "fixed_line_or_mobile"
    assert caught.value.detail["allowed_regions"] == ["IN"]
    assert "allowed_regions" in caught.value.message


def test_us_mobile_is_accepted_when_us_is_allowed() -> None:
    number = parse_phone("+1 (415) 555-2671", allowed_regions=IN_AND_US)
    assert number.e164 == "+14155552671"
    assert number.region == "US"
    assert number.country_code == 1
    assert number.msisdn == "14155552671"
    assert number.number_type is NumberType.FIXED_LINE_OR_MOBILE


def test_default_region_reads_national_numbers_in_that_region() -> None:
    number = parse_phone("(415) 555-2671", default_region="US", allowed_regions=IN_AND_US)
    assert number.e164 == "+14155552671"


def test_indian_numbers_with_country_code_do_not_depend_on_default_region() -> None:
    number = parse_phone("+91 98765 43210", default_region="US")
    assert number == parse_phone("9876543210")


def test_allowing_a_region_does_not_allow_its_landlines() -> None:
    with pytest.raises(UnsupportedDestination):
        parse_phone("+915123456789", allowed_regions=IN_AND_US)


# ------------------------------------------------------------------ the value type


def test_phone_number_refuses_inconsistent_fields() -> None:
    with pytest.raises(InvalidArgument):
        PhoneNumber(
            e164="+919876543210",
            region="IN",
            country_code=91,
            national_number="9876543211",
            number_type=NumberType.MOBILE,
            operator=None,
        )


def test_phone_number_refuses_a_non_e164_string() -> None:
    with pytest.raises(InvalidArgument):
        PhoneNumber(
            e164="09876543210",
            region="IN",
            country_code=91,
            national_number="9876543210",
            number_type=NumberType.MOBILE,
            operator=None,
        )


def test_phone_number_is_hashable_and_equal_by_value() -> None:
    assert {parse_phone("9876543210"), parse_phone("+91 98765 43210")} == {
        parse_phone("0091 98765 43210")
    }


def test_number_type_covers_every_phonenumbers_type() -> None:
    assert set(phone._NUMBER_TYPES) == set(phonenumbers.PhoneNumberType.values())
    assert set(phone._NUMBER_TYPES.values()) == set(NumberType)
    assert str(NumberType.MOBILE) == "mobile"
    assert str(NumberType.FIXED_LINE_OR_MOBILE) == "fixed_line_or_mobile"


def test_public_names_are_pinned() -> None:
    assert sorted(phone.__all__) == [
        "MAX_INPUT_LENGTH",
        "NumberType",
        "OPERATOR_PREFIX_DIGITS",
        "PhoneNumber",
        "is_valid_indian_mobile",
        "parse_phone",
    ]


# ---------------------------------------------------------- is_valid_indian_mobile


@pytest.mark.parametrize("raw", [raw for raw, _ in ACCEPTED])
def test_is_valid_indian_mobile_accepts_what_parse_phone_accepts(raw: str) -> None:
    assert is_valid_indian_mobile(raw) is True


@pytest.mark.parametrize("raw", [raw for raw, _ in REJECTED])
def test_is_valid_indian_mobile_refuses_without_raising(raw: str) -> None:
    assert is_valid_indian_mobile(raw) is False


# --------------------------------------------------------------------- properties

indian_mobile_digits = st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)


def _is_metadata_mobile(digits: str) -> bool:
    parsed = phonenumbers.parse("+91" + digits)
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }


FORMS: list[Callable[[str], str]] = [
    lambda d: d,
    lambda d: "0" + d,
    lambda d: "91" + d,
    lambda d: "+91" + d,
    lambda d: f"+91 {d[:5]} {d[5:]}",
    lambda d: f"+91-{d[:5]}-{d[5:]}",
    lambda d: f"+91.{d[:5]}.{d[5:]}",
    lambda d: f"(+91) {d[:5]} {d[5:]}",
    lambda d: f"0091 {d[:5]} {d[5:]}",
    lambda d: f"0{d[:5]} {d[5:]}",
    lambda d: f"\u00a0 +91 {d} \u00a0",
]


@PROPERTY
@given(digits=indian_mobile_digits, form=st.sampled_from(FORMS))
def test_any_valid_indian_mobile_in_any_common_form_maps_to_one_e164(
    digits: str, form: Callable[[str], str]
) -> None:
    assume(_is_metadata_mobile(digits))
    number = parse_phone(form(digits))
    assert number.e164 == "+91" + digits
    assert number.msisdn == "91" + digits
    assert number.national_number == digits
    assert is_valid_indian_mobile(form(digits))


@PROPERTY
@given(digits=indian_mobile_digits, form=st.sampled_from(FORMS))
def test_normalising_twice_gives_the_same_value(digits: str, form: Callable[[str], str]) -> None:
    assume(_is_metadata_mobile(digits))
    number = parse_phone(form(digits))
    assert parse_phone(number.e164) == number
    assert parse_phone(str(number)) == number
    assert parse_phone(number.national) == number
    assert parse_phone("+" + number.msisdn) == number


phone_like_text = st.text(alphabet="0123456789+-.() \u00a0", max_size=24)


@PROPERTY
@given(raw=st.one_of(phone_like_text, st.text()))
def test_normalising_any_accepted_text_twice_gives_the_same_value(raw: str) -> None:
    try:
        number = parse_phone(raw, allowed_regions=IN_AND_US)
    except (InvalidPhoneNumber, UnsupportedDestination):
        return
    assert parse_phone(number.e164, allowed_regions=IN_AND_US) == number
    assert parse_phone(number.e164, default_region="US", allowed_regions=IN_AND_US) == number


@PROPERTY
@given(
    before=st.text(max_size=20),
    letter=st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo"]),
    after=st.text(max_size=20),
    digits=st.one_of(st.just(""), indian_mobile_digits),
)
def test_any_text_with_a_letter_is_an_invalid_phone_number(
    before: str, letter: str, after: str, digits: str
) -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(before + digits + letter + after)
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(digits + letter)


@PROPERTY
@given(raw=st.one_of(st.text(), phone_like_text))
def test_parse_phone_raises_only_phone_errors_for_arbitrary_text(raw: str) -> None:
    try:
        number = parse_phone(raw)
    except (InvalidPhoneNumber, UnsupportedDestination):
        assert not is_valid_indian_mobile(raw)
        return
    assert number.region == "IN"
    assert number.e164.isascii()
    assert is_valid_indian_mobile(raw)


# ------------------------------------------------------------------ the fast path


def _outcome(fn, raw):  # type: ignore[no-untyped-def]
    try:
        return fn(raw)
    except (InvalidPhoneNumber, UnsupportedDestination) as e:
        return (type(e), e.code)


@given(
    st.text(alphabet="0123456789 +-.()", max_size=20)
    | st.builds(
        lambda prefix, digits, sep: prefix + sep.join([digits[:5], digits[5:]]),
        st.sampled_from(["", "+91", "+91 ", "91", "0", "0091 ", "(+91) ", "+(91)", "9 1", "+9 1"]),
        st.text(alphabet="0123456789", min_size=10, max_size=10),
        st.sampled_from(["", " ", "-", ".", ")(", "  "]),
    )
)
def test_fast_path_gives_the_general_parsers_answer(raw: str) -> None:
    fast = phone._fast_indian_mobile(raw.strip())
    general = _outcome(lambda r: phone._parse_general(r, "IN", frozenset({"IN"})), raw)
    if fast is not None:
        assert fast == general
    assert _outcome(parse_phone, raw) == general


def test_operator_prefixes_fit_the_cache_key() -> None:
    from phonenumbers.carrierdata import CARRIER_DATA

    longest = max(len(k) for k in CARRIER_DATA if k.startswith("91"))
    assert longest - 2 <= phone.OPERATOR_PREFIX_DIGITS
