"""Find which of thousands of registered templates a message matches, without trying each.

Every exact match keeps the template's literals verbatim, so a word that sits
inside a literal with white space (or the text's edge) on both sides shows up
as a whole whitespace-separated token of the message. Each template is filed
under its *rarest* such token; a message looks up only the buckets of its own
tokens, discards candidates whose required tokens it lacks (a C-level set
test), and runs the linear-time matcher on the few that remain. Templates
with no such token (a body that is one placeholder, say) are always tried.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from attrs import frozen

from bharatsend_core.domain.dlt.matching import (
    DEFAULT_LIMITS,
    CompiledTemplate,
    PlaceholderLimits,
    compile_template,
)
from bharatsend_core.domain.dlt.registry import Template

__all__ = ["IndexMatch", "TemplateIndex", "required_tokens"]


@frozen
class IndexMatch:
    """A template that matches a message, with the placeholder values."""

    template: Template
    values: tuple[str, ...]


def required_tokens(compiled: CompiledTemplate) -> frozenset[str]:
    """The whitespace-delimited words every matching message contains as whole tokens."""
    tokens: set[str] = set()
    last = len(compiled.literals) - 1
    for i, literal in enumerate(compiled.literals):
        words = literal.split()
        if not words:
            continue
        # A word touching a placeholder may merge with the value in the message.
        first_free = i == 0 or literal[0].isspace()
        last_free = i == last or literal[-1].isspace()
        lo = 0 if first_free else 1
        hi = len(words) if last_free else len(words) - 1
        tokens.update(words[lo:hi])
    return frozenset(tokens)


@frozen
class _Entry:
    template: Template
    compiled: CompiledTemplate
    required: frozenset[str]


class TemplateIndex:
    """An immutable index over one entity's (or tenant's) templates.

    Build it once per registry version (the service caches it); lookups cost a
    dictionary probe per distinct word of the message plus a match per
    surviving candidate.
    """

    def __init__(
        self,
        templates: Iterable[Template],
        *,
        limits: PlaceholderLimits = DEFAULT_LIMITS,
    ) -> None:
        entries = [
            _Entry(t, compiled, required_tokens(compiled))
            for t in templates
            for compiled in (compile_template(t.body, limits=limits),)
        ]
        frequency: Counter[str] = Counter()
        for entry in entries:
            frequency.update(entry.required)
        buckets: dict[str, list[_Entry]] = {}
        always: list[_Entry] = []
        for entry in entries:
            if entry.required:
                key = min(entry.required, key=lambda w: (frequency[w], w))
                buckets.setdefault(key, []).append(entry)
            else:
                always.append(entry)
        self._buckets = {k: tuple(v) for k, v in buckets.items()}
        self._always = tuple(always)
        self._size = len(entries)

    def __len__(self) -> int:
        return self._size

    def candidates(self, text: str) -> Sequence[Template]:
        """Templates that pass the token filter (a superset of the matches)."""
        return [e.template for e in self._candidates(text, set(text.split()))]

    def _candidates(self, text: str, tokens: set[str]) -> list[_Entry]:
        found: list[_Entry] = []
        buckets = self._buckets
        for token in tokens:
            bucket = buckets.get(token)
            if bucket is not None:
                found.extend(e for e in bucket if e.required <= tokens)
        found.extend(self._always)
        return found

    def find(self, text: str) -> tuple[IndexMatch, ...]:
        """Every template that ``text`` matches, most specific (most literal text) first."""
        matches: list[tuple[int, str, IndexMatch]] = []
        for entry in self._candidates(text, set(text.split())):
            values = entry.compiled.match(text)
            if values is not None:
                matches.append(
                    (
                        -entry.compiled.literal_length,
                        entry.template.template_id,
                        IndexMatch(entry.template, values),
                    )
                )
        matches.sort(key=lambda m: (m[0], m[1]))
        return tuple(m[2] for m in matches)

    def best(self, text: str) -> IndexMatch | None:
        """The most specific matching template, or None."""
        found = self.find(text)
        return found[0] if found else None
