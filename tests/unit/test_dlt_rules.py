"""DLT validation of a message and registration checks of templates (DLT.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain.dlt import (
    IST,
    Category,
    ContentType,
    DltPolicy,
    Entity,
    Header,
    Recipient,
    Registry,
    Severity,
    TelemarketerChain,
    Template,
    check_template,
    validate,
)
from bharatsend_core.domain.errors import ERROR_CODES, DltViolation, InvalidArgument

PE = "1101234567890123456"
OTHER_PE = "1101234567890000000"
NOON_IST = datetime(2026, 11, 23, 12, 0, tzinfo=IST)

OTP = Template(
    template_id="1107161234567890123",
    entity_id=PE,
    category=Category.TRANSACTIONAL,
    body="{#numeric#} is your OTP for ACME login. Valid for 10 minutes. -ACME",
    headers={"ACMEBK"},
)
ORDER = Template(
    template_id="1107160000000000002",
    entity_id=PE,
    category=Category.SERVICE_IMPLICIT,
    body="Order {#alphanumeric#} shipped. Track {#url#} or call {#cbn#}. Note: {#var#} -ACME",
    headers={"ACMEBK"},
)
PROMO = Template(
    template_id="1107160000000000003",
    entity_id=PE,
    category=Category.PROMOTIONAL,
    body="Flat {#numeric#}% off at ACME this weekend! To opt out reply STOP",
    headers={"512345"},
)
EXPLICIT = attrs.evolve(PROMO, template_id="1107160000000000004", category="service_explicit")
UNICODE = Template(
    template_id="1107160000000000005",
    entity_id=PE,
    category=Category.TRANSACTIONAL,
    body="आपका OTP {#numeric#} है। -ACME",
    content_type=ContentType.UNICODE,
    headers={"ACMEBK"},
)

REGISTRY = Registry(
    entities=[Entity(PE, "Acme Bank"), Entity(OTHER_PE, "Other")],
    headers=[
        Header("ACMEBK", PE, Category.TRANSACTIONAL),
        Header("ACMEOL", PE, Category.TRANSACTIONAL, active=False),
        Header("OTHERS", OTHER_PE, Category.TRANSACTIONAL),
        Header("512345", PE, Category.PROMOTIONAL),
        Header("ACMESV", PE, Category.SERVICE_IMPLICIT),
    ],
    templates=[
        OTP,
        ORDER,
        PROMO,
        EXPLICIT,
        UNICODE,
        attrs.evolve(OTP, template_id="1107160000000000006", active=False),
        attrs.evolve(OTP, template_id="1107160000000000007", entity_id="1109999999999999999"),
        attrs.evolve(OTP, template_id="1107160000000000008", headers={"ACMEBK", "OTHERS"}),
        attrs.evolve(OTP, template_id="1107160000000000009", headers={"512345"}),
    ],
    url_whitelist=["https://acme.in/t", "trk.acme.co"],
    callback_whitelist=["1800 123 4567", "+91 98765 43210"],
)

OTP_TEXT = "482913 is your OTP for ACME login. Valid for 10 minutes. -ACME"
ORDER_TEXT = (
    "Order AB12 shipped. Track https://acme.in/t/9x or call 18001234567. Note: fragile -ACME"
)


def check(**overrides: object) -> object:
    args: dict[str, object] = {
        "header": "ACMEBK",
        "template_id": OTP.template_id,
        "text": OTP_TEXT,
        "now": NOON_IST,
    }
    args.update(overrides)
    registry = args.pop("registry", REGISTRY)
    return validate(registry, **args)  # type: ignore[arg-type]


def test_a_compliant_message_gets_a_verdict_with_its_values() -> None:
    verdict = check()
    assert verdict.pe_id == PE  # type: ignore[attr-defined]
    assert verdict.template_id == OTP.template_id  # type: ignore[attr-defined]
    assert verdict.values == ("482913",)  # type: ignore[attr-defined]
    assert verdict.warnings == ()  # type: ignore[attr-defined]
    assert "482913" not in repr(verdict)


def test_ctas_on_the_whitelists_pass() -> None:
    verdict = check(template_id=ORDER.template_id, text=ORDER_TEXT)
    assert verdict.values == ("AB12", "https://acme.in/t/9x", "18001234567", "fragile")  # type: ignore[attr-defined]


def test_a_unicode_template_accepts_ucs2_text() -> None:
    assert check(template_id=UNICODE.template_id, text="आपका OTP 1234 है। -ACME")


# Every DLT code, reached through the function that enforces it.
def _reg(**kwargs: object) -> Callable[[], object]:
    return lambda: check(**kwargs)


REACH: dict[str, Callable[[], object]] = {
    "dlt_entity_invalid": lambda: Entity("12ab"),
    "dlt_entity_unknown": _reg(template_id="1107160000000000007"),
    "dlt_header_invalid": _reg(header="VM-ACMEBK-S"),
    "dlt_header_unknown": _reg(header="acmebk"),
    "dlt_header_inactive": _reg(header="ACMEOL"),
    "dlt_template_invalid": _reg(template_id="11071612345abc"),
    "dlt_template_unknown": _reg(template_id="1107169999999999999"),
    "dlt_template_inactive": _reg(template_id="1107160000000000006"),
    "dlt_template_header_mismatch": _reg(header="ACMESV"),
    "dlt_header_category_mismatch": _reg(template_id="1107160000000000009", header="512345"),
    "dlt_chain_missing": _reg(policy=DltPolicy(require_chain=True)),
    "dlt_chain_invalid": _reg(chain=TelemarketerChain(OTHER_PE, ("1702000000000000001",))),
    "dlt_template_malformed": lambda: check_template(attrs.evolve(OTP, body="OTP {#Var#} ok")),
    "dlt_template_no_variable": lambda: check_template(
        attrs.evolve(OTP, body="Your account is now active. -ACME")
    ),
    "dlt_template_forbidden_character": lambda: check_template(
        attrs.evolve(OTP, body="OTP <{#numeric#}> for ACME"),
        DltPolicy(forbidden_characters=Severity.ERROR),
    ),
    "dlt_template_double_space": lambda: check_template(
        attrs.evolve(OTP, body="OTP  {#numeric#} for ACME login"),
        DltPolicy(double_space="error"),
    ),
    "dlt_template_too_short": lambda: check_template(
        attrs.evolve(OTP, body="OTP {#numeric#}"), DltPolicy(too_short="error")
    ),
    "dlt_template_mismatch": _reg(text=OTP_TEXT.replace("login", "Login")),
    "dlt_variable_too_long": _reg(text="1" * 31 + OTP_TEXT[6:]),
    "dlt_variable_type": _reg(text="48291x" + OTP_TEXT[6:]),
    "dlt_cta_not_whitelisted": _reg(
        template_id=ORDER.template_id, text=ORDER_TEXT.replace("acme.in/t/", "evil.in/t/")
    ),
    "dlt_untagged_cta": _reg(
        template_id=ORDER.template_id,
        text=ORDER_TEXT.replace("fragile", "see bit.ly/x"),
        policy=DltPolicy(untagged_cta="error"),
    ),
    "dlt_encoding_mismatch": _reg(text=OTP_TEXT.replace("-ACME", "–ACME")),
    "dlt_promotional_window": _reg(
        template_id=PROMO.template_id,
        header="512345",
        text="Flat 20% off at ACME this weekend! To opt out reply STOP",
        now=datetime(2026, 11, 23, 21, 30, tzinfo=IST),
    ),
    "dlt_dnd_blocked": _reg(
        template_id=PROMO.template_id,
        header="512345",
        text="Flat 20% off at ACME this weekend! To opt out reply STOP",
        recipient=Recipient("+919876543210", is_dnd=True),
    ),
    "dlt_consent_missing": _reg(
        template_id=EXPLICIT.template_id,
        header="512345",
        text="Flat 20% off at ACME this weekend! To opt out reply STOP",
        recipient=Recipient("+919876543210"),
    ),
}


def test_every_dlt_code_is_covered_here() -> None:
    dlt_codes = {code for code, cls in ERROR_CODES.items() if issubclass(cls, DltViolation)}
    assert dlt_codes == set(REACH)


@pytest.mark.parametrize("code", sorted(REACH))
def test_every_dlt_code_is_reachable_with_field_and_actionable_message(code: str) -> None:
    with pytest.raises(DltViolation) as info:
        REACH[code]()
    err = info.value
    assert err.code == code
    assert err.http_status == 422
    assert err.field
    assert len(err.message) > 20
    assert "482913" not in err.message  # never the OTP digits
    assert ERROR_CODES[code] is type(err)


def test_a_decorated_header_error_suggests_the_plain_header() -> None:
    with pytest.raises(DltViolation) as info:
        check(header="VM-ACMEBK-S")
    assert "'ACMEBK'" in info.value.message


def test_encoding_mismatch_names_the_character_and_offset() -> None:
    with pytest.raises(DltViolation) as info:
        check(text=OTP_TEXT.replace("-ACME", "’ACME"))
    assert info.value.detail == {"offset": len(OTP_TEXT) - 5, "codepoint": "U+2019"}
    assert "RIGHT SINGLE QUOTATION MARK" in info.value.message


def test_untagged_cta_is_a_warning_by_default_and_can_be_allowed() -> None:
    text = ORDER_TEXT.replace("fragile", "call 9876543210")
    verdict = check(template_id=ORDER.template_id, text=text)
    assert [w.code for w in verdict.warnings] == ["dlt_untagged_cta"]  # type: ignore[attr-defined]
    allowed = check(
        template_id=ORDER.template_id, text=text, policy=DltPolicy(untagged_cta="allow")
    )
    assert allowed.warnings == ()  # type: ignore[attr-defined]


def test_promotional_window_is_in_ist_whatever_the_callers_zone() -> None:
    text = "Flat 20% off at ACME this weekend! To opt out reply STOP"
    kw = {"template_id": PROMO.template_id, "header": "512345", "text": text}
    assert check(now=datetime(2026, 11, 23, 4, 30, tzinfo=UTC), **kw)  # 10:00 IST
    with pytest.raises(DltViolation) as info:
        check(now=datetime(2026, 11, 23, 4, 29, tzinfo=UTC), **kw)  # 09:59 IST
    assert info.value.detail["opens_at"] == "2026-11-23T04:30:00+00:00"
    with pytest.raises(DltViolation) as late:
        check(now=datetime(2026, 11, 23, 15, 30, tzinfo=UTC), **kw)  # 21:00 IST
    assert late.value.detail["opens_at"] == "2026-11-24T04:30:00+00:00"
    early = DltPolicy(promotional_start=time(9, 0))
    assert check(now=datetime(2026, 11, 23, 9, 0, tzinfo=IST), policy=early, **kw)


@given(st.datetimes(timezones=st.just(UTC)))
def test_transactional_messages_are_allowed_at_any_hour(now: datetime) -> None:
    assert check(now=now)


def test_dnd_numbers_with_consent_receive_promotions() -> None:
    text = "Flat 20% off at ACME this weekend! To opt out reply STOP"
    recipient = Recipient("+919876543210", is_dnd=True, has_consent=True)
    assert check(template_id=PROMO.template_id, header="512345", text=text, recipient=recipient)


def test_dnd_is_not_checked_for_transactional_messages() -> None:
    assert check(recipient=Recipient("+919876543210", is_dnd=True))


def test_consent_can_be_required_for_every_promotion() -> None:
    text = "Flat 20% off at ACME this weekend! To opt out reply STOP"
    with pytest.raises(DltViolation) as info:
        check(
            template_id=PROMO.template_id,
            header="512345",
            text=text,
            recipient=Recipient("+919876543210"),
            policy=DltPolicy(require_consent_for_promotional=True),
        )
    assert info.value.code == "dlt_consent_missing"


def test_a_chain_yields_its_sha256_hash() -> None:
    chain = TelemarketerChain(PE, ("1702000000000000001", "1702000000000000002"))
    verdict = check(chain=chain)
    assert chain.value == f"{PE},1702000000000000001,1702000000000000002"
    assert verdict.chain_hash == chain.hash  # type: ignore[attr-defined]
    assert len(chain.hash) == 64
    assert chain.hash == chain.hash.lower()
    assert TelemarketerChain.parse(f"{PE}, 1702000000000000001") == TelemarketerChain(
        PE, ("1702000000000000001",)
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        check(now=datetime(2026, 11, 23, 12, 0))


def test_a_header_linked_to_another_entity_is_a_mismatch() -> None:
    with pytest.raises(DltViolation) as info:
        check(template_id="1107160000000000008", header="OTHERS")
    assert info.value.code == "dlt_template_header_mismatch"


# ----------------------------------------------------------------- registration


def test_registration_warnings_by_default() -> None:
    warnings = check_template(attrs.evolve(OTP, body="OTP  <{#numeric#}>"))
    assert {w.code for w in warnings} == {
        "dlt_template_double_space",
        "dlt_template_forbidden_character",
        "dlt_template_too_short",
    }


def test_promotional_templates_without_opt_out_earn_a_warning() -> None:
    body = "Flat {#numeric#}% off at ACME this weekend!"
    warnings = check_template(attrs.evolve(PROMO, body=body))
    assert [w.code for w in warnings] == ["dlt_opt_out_missing"]
    assert check_template(PROMO) == ()


def test_more_headers_than_allowed_is_refused_unless_the_setting_allows() -> None:
    two = attrs.evolve(OTP, headers={"ACMEBK", "ACMESV"})
    with pytest.raises(DltViolation):
        check_template(two)
    assert check_template(two, DltPolicy(max_headers_per_template=2)) == ()


def test_numeric_headers_are_registered_only_for_promotional() -> None:
    with pytest.raises(DltViolation) as info:
        Header("512345", PE, Category.TRANSACTIONAL)
    assert info.value.code == "dlt_header_category_mismatch"


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        ("Transactional", Category.TRANSACTIONAL),
        ("TXN", Category.TRANSACTIONAL),
        ("Service Implicit", Category.SERVICE_IMPLICIT),
        ("SI", Category.SERVICE_IMPLICIT),
        ("Service-Explicit", Category.SERVICE_EXPLICIT),
        ("se", Category.SERVICE_EXPLICIT),
        ("PML", Category.PROMOTIONAL),
        ("Promotional", Category.PROMOTIONAL),
        ("Govt", Category.GOVERNMENT),
    ],
)
def test_categories_are_read_as_portals_write_them(raw: str, category: Category) -> None:
    assert Category.parse(raw) is category


def test_service_explicit_follows_promotional_rules() -> None:
    assert Category.SERVICE_EXPLICIT.is_promotional
    assert not Category.SERVICE_IMPLICIT.is_promotional


@pytest.mark.parametrize("header", ["ACMEB", "ACMEBKS", "ACME1K", "912345", "51234", "ACMÉBK"])
def test_invalid_headers_are_refused(header: str) -> None:
    with pytest.raises(DltViolation) as info:
        Header(header, PE, Category.PROMOTIONAL if header.isdigit() else Category.TRANSACTIONAL)
    assert info.value.code == "dlt_header_invalid"


@pytest.mark.parametrize("pe_id", ["", "1" * 31, "12 34", "PE123"])
def test_invalid_pe_ids_are_refused(pe_id: str) -> None:
    with pytest.raises(DltViolation) as info:
        Entity(pe_id)
    assert info.value.code == "dlt_entity_invalid"


@pytest.mark.parametrize("pe_id", ["1", "123456789012", "1101234567890123456", "9" * 30])
def test_pe_ids_of_1_to_30_digits_are_accepted(pe_id: str) -> None:
    assert Entity(pe_id).pe_id == pe_id


def test_policy_validates_its_window() -> None:
    with pytest.raises(InvalidArgument):
        DltPolicy(promotional_start=time(21, 0), promotional_end=time(10, 0))
