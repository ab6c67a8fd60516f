"""DLT content-template compilation and matching, in linear time.

A template body is literal text with placeholders (DLT.md): ``{#var#}``,
``{#numeric#}``/``{#number#}``, ``{#alphanumeric#}``, ``{#url#}``/``{#urlott#}``,
``{#cbn#}`` and ``{#email#}``, written exactly so. Operators scrub exactly:
every literal character must appear unchanged (case-sensitive, no trimming, no
whitespace folding, no CRLF/LF folding); regular-expression characters in a
body are literals; lengths count Unicode code points.

Why not ``re``: a template like ``{#var#} {#var#} {#var#}`` compiled to lazy
groups backtracks exponentially on a hostile message. Instead the matcher
works on sets of positions, one placeholder at a time (a dynamic programme
over "where may this value start"), with C-level ``str.find`` for literals and
one regex search per character-class run. Each stage touches every text
position at most a bounded number of times, so matching is linear in the text
for a given template; ``tests/unit/test_dlt_matching.py`` proves it by
counting interpreter steps on a 2,000-character adversarial message.

When several assignments match (adjacent placeholders, a literal that also
occurs inside a value), the leftmost-shortest one is reported: the first value
as short as possible, then the second, and so on.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_left
from collections.abc import Callable
from typing import Final

from attrs import field, frozen

from bharatsend_core.domain.errors import (
    DltTemplateMalformed,
    DltTemplateMismatch,
    DltVariableTooLong,
    DltVariableType,
    InvalidArgument,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_PLACEHOLDER_LENGTH",
    "CompiledTemplate",
    "Placeholder",
    "PlaceholderKind",
    "PlaceholderLimits",
    "compile_template",
]

#: No placeholder limit may exceed this (a 10-segment UCS-2 message is 670 units).
MAX_PLACEHOLDER_LENGTH: Final = 2000


class PlaceholderKind(enum.StrEnum):
    """The placeholder names DLT platforms accept, exactly as written between ``{#`` and ``#}``."""

    VAR = "var"
    NUMERIC = "numeric"
    NUMBER = "number"
    ALPHANUMERIC = "alphanumeric"
    URL = "url"
    URLOTT = "urlott"
    CBN = "cbn"
    EMAIL = "email"

    @property
    def token(self) -> str:
        """The placeholder as written in a template body."""
        return "{#" + self.value + "#}"

    @property
    def is_cta(self) -> bool:
        """URL and call-back placeholders carry calls to action checked against whitelists."""
        return self in (PlaceholderKind.URL, PlaceholderKind.URLOTT, PlaceholderKind.CBN)


def _limit(_instance: object, attribute: object, value: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= MAX_PLACEHOLDER_LENGTH:
        name = getattr(attribute, "name", "limit")
        raise InvalidArgument(
            f"placeholder limit {name} must be an integer from 1 to {MAX_PLACEHOLDER_LENGTH}",
            field=name,
        )


@frozen
class PlaceholderLimits:
    """Maximum value length per placeholder kind, in code points (DLT.md defaults)."""

    var: int = field(default=30, validator=_limit)
    numeric: int = field(default=30, validator=_limit)
    alphanumeric: int = field(default=40, validator=_limit)
    url: int = field(default=30, validator=_limit)
    email: int = field(default=30, validator=_limit)
    cbn: int = field(default=20, validator=_limit)

    def for_kind(self, kind: PlaceholderKind) -> int:
        """The limit that applies to ``kind``."""
        if kind in (PlaceholderKind.NUMERIC, PlaceholderKind.NUMBER):
            return self.numeric
        if kind in (PlaceholderKind.URL, PlaceholderKind.URLOTT):
            return self.url
        return int(getattr(self, kind.value))


DEFAULT_LIMITS: Final = PlaceholderLimits()

# Characters a value may NOT contain, per kind (one regex search finds a run's end).
_BAD_CHARS: Final[dict[PlaceholderKind, re.Pattern[str]]] = {
    PlaceholderKind.VAR: re.compile(r"[\r\n]"),
    PlaceholderKind.NUMERIC: re.compile(r"[^0-9]"),
    PlaceholderKind.NUMBER: re.compile(r"[^0-9]"),
    PlaceholderKind.ALPHANUMERIC: re.compile(r"[^A-Za-z0-9]"),
    PlaceholderKind.URL: re.compile(r"\s"),
    PlaceholderKind.URLOTT: re.compile(r"\s"),
    PlaceholderKind.EMAIL: re.compile(r"\s"),
    PlaceholderKind.CBN: re.compile(r"[^0-9+\- ]"),
}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_URL_RE: Final = re.compile(
    rf"(?:[A-Za-z][A-Za-z0-9+.-]*://)?{_LABEL}(?:\.{_LABEL})+(?::[0-9]{{1,5}})?(?:[/?#]\S*)?"
)
_EMAIL_RE: Final = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
_CBN_RE: Final = re.compile(r"\+?[0-9](?:[0-9 \-]*[0-9])?")


def _cbn_form(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    return bool(_CBN_RE.fullmatch(value)) and 3 <= digits <= 15


# Whole-value form checks for kinds whose character class is not enough.
_FORM: Final[dict[PlaceholderKind, Callable[[str], bool]]] = {
    PlaceholderKind.URL: lambda v: _URL_RE.fullmatch(v) is not None,
    PlaceholderKind.URLOTT: lambda v: _URL_RE.fullmatch(v) is not None,
    PlaceholderKind.EMAIL: lambda v: _EMAIL_RE.fullmatch(v) is not None,
    PlaceholderKind.CBN: _cbn_form,
}

_WHAT: Final[dict[PlaceholderKind, str]] = {
    PlaceholderKind.VAR: "any text without line breaks",
    PlaceholderKind.NUMERIC: "ASCII digits only",
    PlaceholderKind.NUMBER: "ASCII digits only",
    PlaceholderKind.ALPHANUMERIC: "ASCII letters and digits only",
    PlaceholderKind.URL: "a URL such as https://example.com/x",
    PlaceholderKind.URLOTT: "a URL such as https://example.com/x",
    PlaceholderKind.EMAIL: "an e-mail address",
    PlaceholderKind.CBN: "a phone number (digits, optional leading +, spaces or dashes)",
}

_PLACEHOLDER_RE: Final = re.compile(
    r"\{#(" + "|".join(sorted((k.value for k in PlaceholderKind), key=len, reverse=True)) + r")#\}"
)
_KIND_NAMES = "|".join(k.value for k in PlaceholderKind)
# Near misses: brace-hash leftovers, #VAR#-style and {var}-style spellings.
_NEAR_MISS_RE: Final = re.compile(
    r"\{\s*#[^{}]{0,40}?#\s*\}|\{\s*#|#\s*\}"
    rf"|#\s*(?:{_KIND_NAMES})\w{{0,10}}\s*#"
    rf"|\{{\s*(?:{_KIND_NAMES})\w{{0,10}}\s*\}}",
    re.IGNORECASE,
)


@frozen
class Placeholder:
    """One placeholder of a compiled template: its kind, position and value length range."""

    index: int
    kind: PlaceholderKind
    offset: int
    min_length: int
    max_length: int

    @property
    def label(self) -> str:
        """A human name: ``placeholder 2 {#numeric#}``."""
        return f"placeholder {self.index + 1} {self.kind.token}"


def compile_template(body: str, *, limits: PlaceholderLimits = DEFAULT_LIMITS) -> CompiledTemplate:
    """Compile a template body once so that messages can be matched against it fast.

    Raises ``DltTemplateMalformed`` for a near-miss placeholder such as
    ``{#var1#}``, ``{#Var#}`` or ``#VAR#``: operators would treat it as literal
    text, which is almost never what the author meant.
    """
    if not isinstance(body, str) or not body:
        raise InvalidArgument("a template body must be a non-empty string", field="body")
    literals: list[str] = []
    placeholders: list[Placeholder] = []
    last = 0
    for m in _PLACEHOLDER_RE.finditer(body):
        literals.append(body[last : m.start()])
        kind = PlaceholderKind(m.group(1))
        minimum = 0 if kind is PlaceholderKind.VAR else 1
        placeholders.append(
            Placeholder(len(placeholders), kind, m.start(), minimum, limits.for_kind(kind))
        )
        last = m.end()
    literals.append(body[last:])
    offset = 0
    for i, literal in enumerate(literals):
        near = _NEAR_MISS_RE.search(literal)
        if near is not None:
            at = offset + near.start()
            raise DltTemplateMalformed(
                f"{near.group(0)!r} at offset {at} is not a DLT placeholder; write one of"
                f" {', '.join(k.token for k in PlaceholderKind)} exactly (lower case)",
                field="body",
                detail={"offset": at, "found": near.group(0)},
            )
        offset += len(literal) + (len(placeholders[i].kind.token) if i < len(placeholders) else 0)
    return CompiledTemplate(body, tuple(literals), tuple(placeholders))


@frozen
class CompiledTemplate:
    """A template body split into literals and placeholders, ready to match messages.

    ``literals`` always has one more item than ``placeholders``: the text
    before, between and after them (possibly empty).
    """

    body: str
    literals: tuple[str, ...]
    placeholders: tuple[Placeholder, ...]
    min_length: int = field(init=False)
    max_length: int = field(init=False)
    literal_length: int = field(init=False)

    @min_length.default
    def _min_length(self) -> int:
        return sum(map(len, self.literals)) + sum(p.min_length for p in self.placeholders)

    @max_length.default
    def _max_length(self) -> int:
        return sum(map(len, self.literals)) + sum(p.max_length for p in self.placeholders)

    @literal_length.default
    def _literal_length(self) -> int:
        return sum(map(len, self.literals))

    # ------------------------------------------------------------------ matching

    def match(self, text: str) -> tuple[str, ...] | None:
        """The placeholder values if ``text`` matches (leftmost-shortest), else None."""
        n = len(text)
        if n < self.min_length or n > self.max_length:
            return None
        literals = self.literals
        if not self.placeholders:
            return () if text == literals[0] else None
        if not text.startswith(literals[0]) or not text.endswith(literals[-1]):
            return None
        values = self._greedy(text)
        if values is not None:
            return values
        good_ends = self._good_ends(text)
        if good_ends is None:
            return None
        return self._pick(text, good_ends)

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches."""
        return self.match(text) is not None

    def verify(self, text: str) -> tuple[str, ...]:
        """The values if ``text`` matches; otherwise raise the most precise DLT error.

        ``DltVariableTooLong`` or ``DltVariableType`` when every literal is in
        place but a value breaks its placeholder's rule, ``DltTemplateMismatch``
        (with the offset where the text can no longer match and the literal
        expected there) when a literal differs. Errors never quote the text.
        """
        values = self.match(text)
        if values is not None:
            return values
        relaxed = self._relaxed_values(text)
        if relaxed is None:
            raise self._mismatch(text)
        raise self._value_error(relaxed)

    def _greedy(self, text: str) -> tuple[str, ...] | None:
        """Each value ends at the earliest place the next literal fits; None if that dead-ends.

        When this reaches the end of the text it has found the leftmost-shortest
        match (no value could have been shorter: the next literal was not
        there). When it dead-ends, a match may still exist, and the dynamic
        programme decides. The common case costs one ``find`` per placeholder.
        """
        literals = self.literals
        placeholders = self.placeholders
        last = len(placeholders) - 1
        values: list[str] = []
        s = len(literals[0])
        end = len(text) - len(literals[-1])
        for i, ph in enumerate(placeholders):
            hi = s + ph.max_length
            m = _BAD_CHARS[ph.kind].search(text, s, hi + 1)
            if m is not None:
                hi = m.start()
            lo = s + ph.min_length
            form = _FORM.get(ph.kind)
            if i == last:
                if not lo <= end <= hi or (form is not None and not form(text[s:end])):
                    return None
                values.append(text[s:end])
                return tuple(values)
            literal = literals[i + 1]
            width = len(literal)
            e = text.find(literal, lo, min(hi, end) + width)
            while e != -1 and form is not None and not form(text[s:e]):
                e = text.find(literal, e + 1, min(hi, end) + width)
            if e == -1:
                return None
            values.append(text[s:e])
            s = e + width
        return ()  # pragma: no cover - placeholders is never empty here

    # The dynamic programme. Value i runs from s to e; literal i+1 follows at e.
    # Backward pass: for each value, the sorted "good ends" from which the rest
    # of the text can still be matched. Forward pass: from the fixed start,
    # take the smallest good end each time (leftmost-shortest).

    def _good_ends(self, text: str) -> list[list[int]] | None:
        n = len(text)
        literals = self.literals
        placeholders = self.placeholders
        k = len(placeholders)
        start0 = len(literals[0])
        last_end = n - len(literals[-1])
        if last_end < start0:
            return None
        rev = text[::-1]
        good: list[list[int]] = [[] for _ in range(k)]
        ends = [last_end]
        for i in range(k - 1, -1, -1):
            good[i] = ends
            ph = placeholders[i]
            bad = _BAD_CHARS[ph.kind]
            form = _FORM.get(ph.kind)
            literal = literals[i]
            width = len(literal)
            # Admissible starts of value i: one interval [a, b] per good end e.
            spans: list[tuple[int, int, int]] = []
            for e in ends:
                window = e - ph.max_length
                m = bad.search(rev, n - e, n - window if window > 0 else n)
                a = max(window, n - m.start() if m is not None else window, start0)
                b = e - ph.min_length
                if a <= b:
                    spans.append((a, b, e))
            if i == 0:
                # Value 0 can only start right after the opening literal.
                return (
                    good
                    if any(
                        a <= start0 <= b and (form is None or form(text[start0:e]))
                        for a, b, e in spans
                    )
                    else None
                )
            prev_ends: set[int] = set()
            if form is not None:
                # Typed CTA/e-mail values need a whole-value check per (start, end).
                for a, b, e in spans:
                    for s in range(max(a, start0 + width), b + 1):
                        if text.startswith(literal, s - width) and form(text[s:e]):
                            prev_ends.add(s - width)
            else:
                for a, b in _merge([(a, b) for a, b, _ in spans]):
                    if width == 0:
                        prev_ends.update(range(a, b + 1))
                        continue
                    p = text.find(literal, max(a - width, start0), b)
                    while p != -1:
                        prev_ends.add(p)
                        p = text.find(literal, p + 1, b)
            if not prev_ends:
                return None
            ends = sorted(prev_ends)
        return good  # pragma: no cover - the loop always returns at i == 0

    def _pick(self, text: str, good: list[list[int]]) -> tuple[str, ...]:
        literals = self.literals
        values: list[str] = []
        s = len(literals[0])
        for i, ph in enumerate(self.placeholders):
            ends = good[i]
            hi = s + ph.max_length
            m = _BAD_CHARS[ph.kind].search(text, s, hi + 1)
            if m is not None:
                hi = min(hi, m.start())
            form = _FORM.get(ph.kind)
            j = bisect_left(ends, s + ph.min_length)
            while True:
                e = ends[j]
                if e > hi:  # pragma: no cover - the backward pass guarantees an end
                    raise AssertionError("no admissible end for a co-reachable start")
                if form is None or form(text[s:e]):
                    break
                j += 1
            values.append(text[s:e])
            s = e + len(literals[i + 1])
        return tuple(values)

    # ---------------------------------------------------------------- diagnosis

    def _relaxed_values(self, text: str) -> tuple[str, ...] | None:
        """Values if every literal is in place, whatever the values are (greedy is exact here)."""
        literals = self.literals
        if not self.placeholders:
            return None
        if not text.startswith(literals[0]):
            return None
        pos = len(literals[0])
        values: list[str] = []
        for literal in literals[1:-1]:
            at = text.find(literal, pos)
            if at == -1:
                return None
            values.append(text[pos:at])
            pos = at + len(literal)
        last = len(text) - len(literals[-1])
        if last < pos or not text.endswith(literals[-1]):
            return None
        values.append(text[pos:last])
        return tuple(values)

    def _value_error(self, values: tuple[str, ...]) -> DltVariableTooLong | DltVariableType:
        for ph, value in zip(self.placeholders, values, strict=True):
            bad = _BAD_CHARS[ph.kind].search(value)
            if bad is not None:
                return DltVariableType(
                    f"{ph.label} takes {_WHAT[ph.kind]}; its value has a disallowed"
                    f" character at position {bad.start() + 1} of {len(value)}",
                    field="content",
                    detail={"placeholder": ph.index + 1, "kind": ph.kind.value},
                )
            if len(value) > ph.max_length:
                return DltVariableTooLong(
                    f"{ph.label} is {len(value)} characters long; the limit is {ph.max_length}",
                    field="content",
                    detail={
                        "placeholder": ph.index + 1,
                        "kind": ph.kind.value,
                        "length": len(value),
                        "limit": ph.max_length,
                    },
                )
            form = _FORM.get(ph.kind)
            if len(value) < ph.min_length or (form is not None and not form(value)):
                return DltVariableType(
                    f"{ph.label} takes {_WHAT[ph.kind]}"
                    + ("; its value is empty" if not value else ""),
                    field="content",
                    detail={"placeholder": ph.index + 1, "kind": ph.kind.value},
                )
        raise AssertionError("relaxed values satisfy every rule but the strict match failed")

    def _mismatch(self, text: str) -> DltTemplateMismatch:
        literals = self.literals
        n = len(text)

        def error(offset: int, expected: str, message: str) -> DltTemplateMismatch:
            return DltTemplateMismatch(
                message,
                field="content",
                detail={"offset": offset, "expected": expected[:40]},
            )

        head = literals[0]
        same = _common_prefix(text, head)
        if same < len(head) or not self.placeholders:
            if same == len(head):  # no placeholders and the text runs on
                return error(same, "", f"the text goes on after the template ends at offset {same}")
            return error(
                same,
                head[same:],
                f"the text differs from the template at offset {same}: expected"
                f" {head[same : same + 40]!r}",
            )
        pos = len(head)
        for i, literal in enumerate(literals[1:], start=1):
            ph = self.placeholders[i - 1]
            final = i == len(literals) - 1
            at = text.find(literal, pos)
            if at != -1 and not final:
                pos = at + len(literal)
                continue
            if at != -1 and final:
                # The closing literal occurs, but not at the very end.
                end = text.rfind(literal, pos)
                return error(
                    end + len(literal),
                    "",
                    f"the text goes on after the template's closing {literal[-20:]!r}"
                    f" at offset {end + len(literal)}",
                )
            found, where = _longest_prefix_found(text, literal, pos)
            if found == 0:
                return error(
                    pos,
                    literal,
                    f"expected {literal[:40]!r} after {ph.label} (from offset {pos});"
                    " it does not occur",
                )
            offset = where + found
            return error(
                offset,
                literal[found:],
                f"the text differs from the template at offset {offset}: expected"
                f" {literal[found : found + 40]!r} (in the text after {ph.label})",
            )
        return error(n, "", "the text does not match the template")  # pragma: no cover


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if not intervals:
        return []
    intervals.sort()
    merged = [intervals[0]]
    for a, b in intervals[1:]:
        la, lb = merged[-1]
        if a <= lb + 1:
            if b > lb:
                merged[-1] = (la, b)
        else:
            merged.append((a, b))
    return merged


def _common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    lo, hi = 0, limit
    while lo < hi:  # binary search with C-level slice compares: O(n log n) worst case
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _longest_prefix_found(text: str, literal: str, pos: int) -> tuple[int, int]:
    """The longest prefix of ``literal`` occurring at or after ``pos``, and where (earliest)."""
    lo, hi, where = 0, len(literal), pos
    while lo < hi:  # occurrence of prefixes is monotone: a longer one implies the shorter
        mid = (lo + hi + 1) // 2
        at = text.find(literal[:mid], pos)
        if at != -1:
            lo, where = mid, at
        else:
            hi = mid - 1
    if lo:
        where = text.find(literal[:lo], pos)
    return lo, where
