"""TemplateIndex and the CTA whitelists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharatsend_core.domain.dlt import (
    CallbackWhitelist,
    Category,
    Template,
    TemplateIndex,
    UrlWhitelist,
    compile_template,
    looks_like_cta,
    normalise_callback,
    required_tokens,
)
from bharatsend_core.domain.errors import InvalidArgument

PE = "1101234567890123456"


def template(i: int, body: str) -> Template:
    return Template(str(1000 + i), PE, Category.TRANSACTIONAL, body)


BODIES = [
    "{#numeric#} is your OTP for ACME login. Do not share.",
    "{#numeric#} is your OTP for ACME payment. Do not share.",
    "Dear {#var#}, your order {#alphanumeric#} is shipped.",
    "Dear {#var#}, your order {#alphanumeric#} is delivered.",
    "{#var#}",
    "Hi{#var#}there",
    "Rs.{#numeric#} debited from A/c XX{#numeric#} on {#var#}.",
]
INDEX = TemplateIndex([template(i, b) for i, b in enumerate(BODIES)])


def test_the_index_finds_the_matching_template_with_values() -> None:
    matches = INDEX.find("4821 is your OTP for ACME payment. Do not share.")
    assert [m.template.template_id for m in matches] == ["1001"]  # too long for {#var#}
    assert matches[0].values == ("4821",)
    best = INDEX.best("Dear Anil, your order AB12 is delivered.")
    assert best is not None
    assert best.template.template_id == "1003"


def test_templates_without_required_words_are_always_candidates() -> None:
    assert [m.template.template_id for m in INDEX.find("anything at all")] == ["1004"]
    assert [m.template.template_id for m in INDEX.find("Hi you there")] == ["1005", "1004"]


def test_no_match_gives_an_empty_result() -> None:
    assert INDEX.find("line one\nline two") == ()
    assert INDEX.best("line one\nline two") is None
    assert len(INDEX) == len(BODIES)


def test_required_tokens_skip_words_that_touch_a_placeholder() -> None:
    c = compile_template("Dear {#var#}, your order{#alphanumeric#} is shipped.")
    assert required_tokens(c) == {"Dear", "your", "is", "shipped."}


WORDS = ["OTP", "is", "your", "order", "Rs.", "A/c", "ACME", "code", "-", "Dear", "valid"]


@st.composite
def bodies(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(["{#var#}", "{#numeric#}", "{#alphanumeric#}"])))
        else:
            parts.append(draw(st.sampled_from(WORDS)))
    sep = draw(st.sampled_from([" ", " ", "", ", "]))
    return sep.join(parts)


@settings(max_examples=200)
@given(st.lists(bodies(), min_size=1, max_size=25, unique=True), st.data())
def test_index_finds_exactly_what_a_loop_over_every_template_finds(
    body_list: list[str], data: st.DataObject
) -> None:
    templates = [template(i, b) for i, b in enumerate(body_list)]
    index = TemplateIndex(templates)
    compiled = [compile_template(t.body) for t in templates]
    source = compiled[data.draw(st.integers(0, len(compiled) - 1))]
    values = [
        data.draw(st.sampled_from(["1", "42", "AB1", "x y", "", "OTP", "is your"]))
        for _ in source.placeholders
    ]
    text = source.literals[0] + "".join(
        v + lit for v, lit in zip(values, source.literals[1:], strict=True)
    )
    want = {
        t.template_id for t, c in zip(templates, compiled, strict=True) if c.match(text) is not None
    }
    assert {m.template.template_id for m in index.find(text)} == want


@given(bodies(), st.lists(st.sampled_from(["1", "ab", "x y", "OTP is"]), min_size=6, max_size=6))
def test_every_matching_text_contains_the_required_tokens(body: str, fill: list[str]) -> None:
    c = compile_template(body)
    text = c.literals[0] + "".join(v + lit for v, lit in zip(fill, c.literals[1:], strict=False))
    if c.match(text) is not None:
        assert required_tokens(c) <= set(text.split())


# ---------------------------------------------------------------- whitelists


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://acme.in/t/abc", True),
        ("https://ACME.in/t", True),
        ("acme.in/t/abc", True),  # scheme-less value: any scheme
        ("http://acme.in/t/abc", False),  # the prefix names https
        ("https://acme.in/tracker", False),  # path prefixes end on a segment boundary
        ("https://acme.in.evil.com/t/x", False),
        ("https://evil.com/acme.in/t/", False),
        ("https://user@evil.com/t", False),
        ("https://trk.acme.co/anything", True),
        ("http://trk.acme.co/", True),
        ("https://trk.acme.co:8443/x", False),
        ("not a url", False),
        ("https://acme.in:99999/t", False),
    ],
)
def test_url_whitelist_matches_prefixes(url: str, allowed: bool) -> None:
    whitelist = UrlWhitelist.parse(["https://acme.in/t", "trk.acme.co"])
    assert whitelist.allows(url) is allowed


def test_url_whitelist_refuses_junk_entries() -> None:
    with pytest.raises(InvalidArgument):
        UrlWhitelist.parse(["::::"])


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("18001234567", "+9118001234567"),
        ("1800 123 4567", "+9118001234567"),
        ("+91 98765 43210", "+919876543210"),
        ("9876543210", "+919876543210"),
        ("09876543210", "+919876543210"),
        ("919876543210", "+919876543210"),
        ("12", None),
    ],
)
def test_callback_numbers_are_compared_in_e164(raw: str, e164: str | None) -> None:
    assert normalise_callback(raw) == e164


def test_callback_whitelist() -> None:
    whitelist = CallbackWhitelist.parse(["1800-123-4567"])
    assert whitelist.allows("18001234567")
    assert not whitelist.allows("18001234568")
    with pytest.raises(InvalidArgument):
        CallbackWhitelist.parse(["call us"])


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("visit https://x.in", "url"),
        ("www.example.com", "url"),
        ("bit.ly/abc", "url"),
        ("get app.apk now", "apk"),
        ("call 9876543210", "phone"),
        ("+91 98765 43210", "phone"),
        ("1800 123 4567", "phone"),
        ("Rahul Sharma", None),
        ("482913", None),
        ("12-Nov-2026 10:30", None),
        ("Rs. 1,500.00", None),
    ],
)
def test_untagged_cta_detection(value: str, kind: str | None) -> None:
    assert looks_like_cta(value) == kind
