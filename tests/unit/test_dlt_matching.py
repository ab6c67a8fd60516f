"""DLT template compilation and matching (DLT.md, "Templates and matching")."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bharatsend_core.domain.dlt import (
    PlaceholderKind,
    PlaceholderLimits,
    compile_template,
)
from bharatsend_core.domain.dlt.matching import _BAD_CHARS, _FORM, CompiledTemplate
from bharatsend_core.domain.errors import (
    DltTemplateMalformed,
    DltTemplateMismatch,
    DltVariableTooLong,
    DltVariableType,
    DltViolation,
    InvalidArgument,
)

OTP = compile_template("{#var#} is your OTP for ACME login. Valid for 10 minutes. -ACME")


def render(compiled: CompiledTemplate, values: tuple[str, ...]) -> str:
    """Put values back into a template: the inverse of a match."""
    out = [compiled.literals[0]]
    for value, literal in zip(values, compiled.literals[1:], strict=True):
        out += [value, literal]
    return "".join(out)


def brute_force(compiled: CompiledTemplate, text: str) -> tuple[str, ...] | None:
    """Exhaustive leftmost-shortest search: exponential, a reference for small inputs."""
    lits, phs = compiled.literals, compiled.placeholders
    if not phs:
        return () if text == lits[0] else None
    if not text.startswith(lits[0]):
        return None

    def search(i: int, s: int) -> tuple[str, ...] | None:
        ph = phs[i]
        for length in range(ph.min_length, ph.max_length + 1):
            e = s + length
            if e > len(text):
                break
            value = text[s:e]
            if _BAD_CHARS[ph.kind].search(value):
                break
            form = _FORM.get(ph.kind)
            if (form is not None and not form(value)) or not text.startswith(lits[i + 1], e):
                continue
            if i == len(phs) - 1:
                if e + len(lits[i + 1]) == len(text):
                    return (value,)
                continue
            rest = search(i + 1, e + len(lits[i + 1]))
            if rest is not None:
                return (value, *rest)
        return None

    return search(0, len(lits[0]))


# --------------------------------------------------------------------- compiling


def test_compile_splits_literals_and_placeholders() -> None:
    c = compile_template("Dear {#var#}, OTP {#numeric#}.")
    assert c.literals == ("Dear ", ", OTP ", ".")
    assert [p.kind for p in c.placeholders] == [PlaceholderKind.VAR, PlaceholderKind.NUMERIC]
    assert [p.offset for p in c.placeholders] == [5, 18]
    assert c.placeholders[0].label == "placeholder 1 {#var#}"


@pytest.mark.parametrize(
    ("token", "minimum", "maximum"),
    [
        ("{#var#}", 0, 30),
        ("{#numeric#}", 1, 30),
        ("{#number#}", 1, 30),
        ("{#alphanumeric#}", 1, 40),
        ("{#url#}", 1, 30),
        ("{#urlott#}", 1, 30),
        ("{#cbn#}", 1, 20),
        ("{#email#}", 1, 30),
    ],
)
def test_each_placeholder_kind_has_its_default_length_range(
    token: str, minimum: int, maximum: int
) -> None:
    (ph,) = compile_template(f"Code {token} here").placeholders
    assert (ph.min_length, ph.max_length) == (minimum, maximum)


def test_limits_are_configurable() -> None:
    c = compile_template("Hi {#var#}", limits=PlaceholderLimits(var=5))
    assert c.match("Hi abcde") == ("abcde",)
    assert c.match("Hi abcdef") is None
    with pytest.raises(InvalidArgument):
        PlaceholderLimits(var=0)


@pytest.mark.parametrize(
    "body",
    [
        "Your OTP is {#var1#}",
        "Your OTP is {#Var#}",
        "Your OTP is {#VAR#}",
        "Your OTP is #VAR#",
        "Your OTP is #var#",
        "Your OTP is {var}",
        "Your OTP is {# var #}",
        "Your OTP is {#numeric}",
        "Your OTP is {numeric#}",
        "Amount {#amount#} debited",
    ],
)
def test_near_miss_placeholders_are_malformed(body: str) -> None:
    with pytest.raises(DltTemplateMalformed) as info:
        compile_template(body)
    assert info.value.code == "dlt_template_malformed"
    assert info.value.field == "body"
    assert isinstance(info.value.detail["offset"], int)


def test_an_empty_body_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        compile_template("")


# --------------------------------------------------------------------- exactness


def test_regex_metacharacters_in_a_template_are_literals() -> None:
    c = compile_template("Pay Rs.{#numeric#} (incl. GST) [ref]*? ^$ \\d+ |x|")
    assert c.match("Pay Rs.100 (incl. GST) [ref]*? ^$ \\d+ |x|") == ("100",)
    assert c.match("Pay RsX100 (incl. GST) [ref]*? ^$ \\d+ |x|") is None
    assert c.match("Pay Rs.100 (incl. GST) [ref]** ^$ \\d+ |x|") is None


@pytest.mark.parametrize(
    "text",
    [
        "1234 is your otp for ACME login. Valid for 10 minutes. -ACME",  # case
        "1234 is your OTP for ACME login.  Valid for 10 minutes. -ACME",  # double space
        "1234 is your OTP for ACME login. Valid for 10 minutes. -ACME ",  # trailing space
        " 1234 is your OTP for ACME login. Valid for 10 minutes. -ACME\n",  # newline
        "1234 is your OTP for ACME login. Valid for 10 minutes. –ACME",  # en dash
    ],
)
def test_matching_is_exact(text: str) -> None:
    assert OTP.match(text) is None


def test_line_endings_and_quotes_are_not_folded() -> None:
    c = compile_template("Hi {#var#},\r\nit's done")
    assert c.match("Hi A,\r\nit's done") == ("A",)
    assert c.match("Hi A,\nit's done") is None
    assert c.match("Hi A,\r\nit’s done") is None  # curly apostrophe


def test_lengths_count_code_points() -> None:
    c = compile_template("Hi {#var#}!", limits=PlaceholderLimits(var=3))
    assert c.match("Hi 😀😀😀!") == ("😀😀😀",)
    assert c.match("Hi क्षत!") is None  # four code points
    assert c.match("Hi क्ष!") == ("क्ष",)


def test_var_may_be_empty_but_typed_placeholders_may_not() -> None:
    assert compile_template("A{#var#}B").match("AB") == ("",)
    assert compile_template("A{#numeric#}B").match("AB") is None


def test_var_excludes_line_breaks() -> None:
    c = compile_template("Hi {#var#}.")
    assert c.match("Hi a\nb.") is None
    with pytest.raises(DltVariableType):
        c.verify("Hi a\nb.")


def test_a_template_without_placeholders_matches_only_itself() -> None:
    c = compile_template("Your account is active.")
    assert c.match("Your account is active.") == ()
    assert c.match("Your account is active") is None


# -------------------------------------------------------------- leftmost-shortest


@pytest.mark.parametrize(
    ("body", "text", "values"),
    [
        ("{#var#}{#var#}", "abc", ("", "abc")),
        ("{#var#} {#var#}", "a b c", ("a", "b c")),
        ("{#numeric#}{#numeric#}", "12345", ("1", "2345")),
        ("x{#var#}x{#var#}x", "xaxbxcx", ("a", "bxc")),
        ("{#var#}, OTP {#numeric#}", "Hi, OTP 1, OTP 2", ("Hi, OTP 1", "2")),
    ],
)
def test_ambiguous_matches_report_the_leftmost_shortest_values(
    body: str, text: str, values: tuple[str, ...]
) -> None:
    assert compile_template(body).match(text) == values


def test_a_dead_end_for_the_shortest_value_falls_back_to_a_longer_one() -> None:
    # The first ". " is inside the name; shortest-first must back off to the second.
    c = compile_template("Dear {#var#}. Your code {#numeric#}.")
    assert c.match("Dear Dr. A. Your code 42.") == ("Dr. A", "42")


# -------------------------------------------------------------------- typed kinds


@pytest.mark.parametrize(
    ("token", "good", "bad"),
    [
        ("{#numeric#}", "007", "12a"),
        ("{#number#}", "42", "4 2"),
        ("{#alphanumeric#}", "AB12cd", "AB-12"),
        ("{#url#}", "https://acme.in/t/x1", "not a url"),
        ("{#urlott#}", "acme.in/app?x=1", "acme"),
        ("{#email#}", "help@acme.in", "help@acme"),
        ("{#cbn#}", "+91 98765-43210", "call-me"),
    ],
)
def test_typed_placeholders_accept_their_form_only(token: str, good: str, bad: str) -> None:
    c = compile_template(f"Value: {token} end")
    assert c.match(f"Value: {good} end") == (good,)
    assert c.match(f"Value: {bad} end") is None
    with pytest.raises(DltVariableType) as info:
        c.verify(f"Value: {bad} end")
    assert info.value.detail["placeholder"] == 1


# -------------------------------------------------------------------- diagnosis


def test_verify_reports_a_too_long_variable_with_its_length_and_limit() -> None:
    with pytest.raises(DltVariableTooLong) as info:
        OTP.verify("x" * 31 + " is your OTP for ACME login. Valid for 10 minutes. -ACME")
    err = info.value
    assert err.code == "dlt_variable_too_long"
    assert dict(err.detail) == {"placeholder": 1, "kind": "var", "length": 31, "limit": 30}
    assert "x" * 31 not in err.message


def test_verify_reports_the_offset_and_literal_where_the_text_stops_matching() -> None:
    c = compile_template("Your OTP is {#numeric#}. Valid for 10 minutes.")
    with pytest.raises(DltTemplateMismatch) as info:
        c.verify("Your OTP is 123456. Valid for 10 mins.")
    assert info.value.detail["offset"] == 36  # "Your OTP is 123456. Valid for 10 min" ends at 36
    assert info.value.detail["expected"] == "utes."
    assert "123456" not in info.value.message


def test_verify_reports_a_difference_in_the_opening_literal() -> None:
    with pytest.raises(DltTemplateMismatch) as info:
        compile_template("Your OTP is {#numeric#}.").verify("Your otp is 12.")
    assert dict(info.value.detail) == {"offset": 5, "expected": "OTP is "}


def test_verify_reports_text_after_the_end_of_the_template() -> None:
    c = compile_template("OTP {#numeric#}. Do not share.")
    with pytest.raises(DltTemplateMismatch) as info:
        c.verify("OTP 12. Do not share. Thanks")
    assert info.value.detail["offset"] == len("OTP 12. Do not share.")


def test_verify_reports_a_missing_middle_literal() -> None:
    c = compile_template("Dear {#var#}, your order {#alphanumeric#} shipped")
    with pytest.raises(DltTemplateMismatch) as info:
        c.verify("Dear Anil your parcel AB12 shipped")
    assert info.value.detail["expected"].startswith(", your order")


def test_verify_returns_the_values_of_a_match() -> None:
    assert OTP.verify("4821 is your OTP for ACME login. Valid for 10 minutes. -ACME") == ("4821",)


# -------------------------------------------------------------------- properties

LITERAL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABC .,:-/()[]*?+$^"
literal_text = st.text(alphabet=LITERAL_ALPHABET, max_size=8)
kinds = st.sampled_from(list(PlaceholderKind))


@st.composite
def templates(draw: st.DrawFn, kind: st.SearchStrategy[PlaceholderKind] = kinds) -> str:
    """A body: literals around 1-5 placeholders, with at least one literal character."""
    parts = [draw(literal_text)]
    for _ in range(draw(st.integers(1, 5))):
        parts += [draw(kind).token, draw(literal_text)]
    body = "".join(parts)
    assume("#" not in body.replace("{#", "").replace("#}", ""))
    return body


def valid_value(kind: PlaceholderKind) -> st.SearchStrategy[str]:
    """Any value a placeholder of ``kind`` accepts."""
    digits = st.text(alphabet="0123456789", min_size=1, max_size=30)
    match kind:
        case PlaceholderKind.VAR:
            return st.text(
                alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
                max_size=30,
            )
        case PlaceholderKind.NUMERIC | PlaceholderKind.NUMBER:
            return digits
        case PlaceholderKind.ALPHANUMERIC:
            return st.text(alphabet="abcXYZ0189", min_size=1, max_size=40)
        case PlaceholderKind.URL | PlaceholderKind.URLOTT:
            return st.sampled_from(["https://a.in/x", "acme.co/t?q=1", "http://b.com"])
        case PlaceholderKind.EMAIL:
            return st.sampled_from(["a@b.in", "help.desk@acme.co"])
        case PlaceholderKind.CBN:
            return st.sampled_from(["18001234567", "+919876543210", "022 2345 6789"])


@given(st.data())
def test_filling_every_placeholder_with_a_valid_value_always_matches(data: st.DataObject) -> None:
    c = compile_template(data.draw(templates()))
    values = tuple(data.draw(valid_value(p.kind)) for p in c.placeholders)
    text = render(c, values)
    found = c.match(text)
    assert found is not None
    assert render(c, found) == text  # the values found rebuild the same text
    assert c.verify(text) == found


@given(st.data())
def test_changing_any_literal_character_never_matches(data: st.DataObject) -> None:
    body = data.draw(
        templates(kind=st.sampled_from([PlaceholderKind.VAR, PlaceholderKind.NUMERIC]))
    )
    c = compile_template(body)
    assume(c.literal_length > 0)
    values = tuple(
        data.draw(st.text(alphabet="0123456789", min_size=1, max_size=8)) for _ in c.placeholders
    )
    text = render(c, values)
    literal_positions = []
    pos = 0
    for i, literal in enumerate(c.literals):
        literal_positions += range(pos, pos + len(literal))
        pos += len(literal) + (len(values[i]) if i < len(values) else 0)
    at = data.draw(st.sampled_from(literal_positions))
    replacement = data.draw(st.sampled_from("~§€😀@"))
    changed = text[:at] + replacement + text[at + 1 :]
    assert c.match(changed) is None
    with pytest.raises(DltViolation):
        c.verify(changed)


@settings(max_examples=400)
@given(
    templates(kind=st.sampled_from(list(PlaceholderKind))),
    st.text(alphabet="ab1 .-@/x:", max_size=24),
)
def test_matcher_agrees_with_exhaustive_search(body: str, text: str) -> None:
    c = compile_template(body, limits=PlaceholderLimits(var=8, numeric=8, url=12, email=12, cbn=8))
    assert c.match(text) == brute_force(c, text)


@settings(max_examples=300)
@given(st.data())
def test_matcher_agrees_with_exhaustive_search_on_near_matches(data: st.DataObject) -> None:
    limits = PlaceholderLimits(var=6, numeric=6, alphanumeric=6, url=14, email=14, cbn=8)
    c = compile_template(data.draw(templates()), limits=limits)
    text = render(
        c, tuple(data.draw(st.text(alphabet="ab1 .-", max_size=7)) for _ in c.placeholders)
    )
    assert c.match(text) == brute_force(c, text)


@given(templates(), st.text(max_size=80))
def test_verify_raises_only_dlt_violations_and_match_agrees(body: str, text: str) -> None:
    c = compile_template(body)
    try:
        values = c.verify(text)
    except DltViolation:
        assert c.match(text) is None
    else:
        assert c.match(text) == values


# ------------------------------------------------------------------- linear time


def interpreter_steps(fn: Callable[[], object]) -> int:
    """Python bytecode instructions executed by ``fn`` (deterministic, unlike a clock)."""
    count = 0

    def local(frame: object, event: str, arg: object) -> object:
        nonlocal count
        if event == "opcode":
            count += 1
        return local

    def tracer(frame: object, event: str, arg: object) -> object:
        frame.f_trace_opcodes = True  # type: ignore[attr-defined]
        return local

    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


# Each adversary defeats the greedy pass, so the dynamic programme runs over
# thousands of candidate positions per placeholder. A backtracking engine with
# lazy quantifiers needs on the order of n^k steps on these.
HOSTILE: list[tuple[str, Callable[[int], str], tuple[str, ...] | None]] = [
    (
        "{#var#}a{#var#}a{#var#}a{#var#}a{#var#}a{#numeric#}b",
        lambda n: "a" * n + "1b",
        ("", "", "", "", "a" * 1995, "1"),
    ),
    ("{#var#}c{#var#}a{#var#}a{#var#}a{#numeric#}b", lambda n: "a" * n + "1b", None),
    (
        "{#var#}{#var#}{#var#}{#var#}{#var#}{#numeric#}b",
        lambda n: "a" * n + "1b",
        ("", "", "", "", "a" * 2000, "1"),
    ),
]


@pytest.mark.parametrize(("body", "make", "expected"), HOSTILE)
def test_matching_a_2000_character_adversarial_message_is_linear(
    body: str, make: Callable[[int], str], expected: tuple[str, ...] | None
) -> None:
    # Limits as long as the message, so nothing is rejected early by length.
    c = compile_template(body, limits=PlaceholderLimits(var=2000, numeric=2000))
    steps = {n: interpreter_steps(lambda n=n: c.match(make(n))) for n in (500, 2000)}
    # Linear work grows 4x for 4x the text; n^k work would grow 4^k times.
    assert steps[2000] <= 5 * steps[500], steps
    assert steps[2000] <= 500 * 2000, steps
    assert c.match(make(2000)) == expected


def test_diagnosing_an_adversarial_message_is_linear() -> None:
    c = compile_template(HOSTILE[1][0], limits=PlaceholderLimits(var=2000, numeric=2000))
    steps = {}
    for n in (500, 2000):
        text = HOSTILE[1][1](n)

        def diagnose(text: str = text) -> None:
            with pytest.raises(DltTemplateMismatch):
                c.verify(text)

        steps[n] = interpreter_steps(diagnose)
    assert steps[2000] <= 5 * steps[500], steps
