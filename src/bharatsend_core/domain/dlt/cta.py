"""Calls to action: URL and call-back whitelists, and untagged CTAs in plain values.

Operators block a ``{#url#}``/``{#urlott#}``/``{#cbn#}`` value that is not on
the sender's whitelist (operator codes 642/701), and since November 2025 a URL,
APK link or phone number must sit in a typed placeholder, not in ``{#var#}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import SplitResult, urlsplit

from attrs import frozen

from bharatsend_core.domain.errors import InvalidArgument

__all__ = [
    "CallbackWhitelist",
    "UrlPrefix",
    "UrlWhitelist",
    "looks_like_cta",
    "normalise_callback",
]

_SCHEME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _split(url: str) -> SplitResult | None:
    raw = url.strip()
    has_scheme = bool(_SCHEME_RE.match(raw))
    try:
        parts = urlsplit(raw if has_scheme else "//" + raw)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts


@frozen
class UrlPrefix:
    """A whitelisted URL prefix: scheme (or any, if none given), host, optional path prefix."""

    scheme: str | None
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, raw: str) -> UrlPrefix:
        """Read ``https://example.com/track`` or ``example.com`` (any scheme)."""
        parts = _split(raw)
        if parts is None or parts.hostname is None:
            raise InvalidArgument(f"{raw!r} is not a URL prefix", field="url_whitelist")
        scheme = parts.scheme.lower() or None
        return cls(scheme, parts.hostname.lower(), parts.port, parts.path)

    def allows(self, parts: SplitResult) -> bool:
        """Whether a split URL falls under this prefix (path compared on segment boundaries)."""
        if (parts.hostname or "").lower() != self.host or parts.port != self.port:
            return False
        if self.scheme is not None and parts.scheme and parts.scheme.lower() != self.scheme:
            return False
        if not self.path or self.path == "/":
            return True
        path = parts.path
        return path == self.path or path.startswith(
            self.path if self.path.endswith("/") else self.path + "/"
        )


@frozen
class UrlWhitelist:
    """The tenant's whitelisted URL prefixes; host compared case-insensitively (DLT.md)."""

    prefixes: tuple[UrlPrefix, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> UrlWhitelist:
        """Build from prefix strings."""
        return cls(tuple(UrlPrefix.parse(e) for e in entries))

    def allows(self, url: str) -> bool:
        """Whether ``url`` starts with one of the prefixes."""
        parts = _split(url)
        return parts is not None and any(p.allows(parts) for p in self.prefixes)


def normalise_callback(raw: str) -> str | None:
    """A call-back number in E.164 form (``+91`` assumed for 10-digit and 1800 numbers)."""
    digits = "".join(c for c in raw if c.isdigit())
    if raw.strip().startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 else None
    if len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) == 10 or (digits.startswith("1800") and 10 <= len(digits) <= 11):
        return "+91" + digits
    if len(digits) == 12 and digits.startswith("91"):
        return "+" + digits
    return None


@frozen
class CallbackWhitelist:
    """The tenant's whitelisted call-back numbers, compared in E.164 form."""

    numbers: frozenset[str]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> CallbackWhitelist:
        """Build from numbers in any common written form."""
        numbers = set()
        for entry in entries:
            number = normalise_callback(entry)
            if number is None:
                raise InvalidArgument(
                    f"{entry!r} is not a call-back number", field="callback_whitelist"
                )
            numbers.add(number)
        return cls(frozenset(numbers))

    def allows(self, raw: str) -> bool:
        """Whether ``raw`` is one of the whitelisted numbers."""
        number = normalise_callback(raw)
        return number is not None and number in self.numbers


_URLISH: Final = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]*://\S|\bwww\.[a-z0-9-]+\."
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|in|co|net|org|io|ly|me|app|info|biz|xyz|link|gl|page"
    r"|site|online|store|shop|club|ai|to|cc|tk|ml|ga|cf|gq|top|click)\b(?:/|\s|$))"
)
_APK: Final = re.compile(r"(?i)\.apk\b")
_PHONEISH: Final = re.compile(r"(?<![0-9])(?:\+?91[\s-]?|0)?[6-9][0-9]{4}[\s-]?[0-9]{5}(?![0-9])")
_TOLL_FREE: Final = re.compile(r"(?<![0-9])1800[\s-]?[0-9]{3}[\s-]?[0-9]{3,4}(?![0-9])")


def looks_like_cta(value: str) -> str | None:
    """``"url"``, ``"apk"`` or ``"phone"`` if a plain value carries that kind of CTA."""
    if _APK.search(value):
        return "apk"
    if _URLISH.search(value):
        return "url"
    if _PHONEISH.search(value) or _TOLL_FREE.search(value):
        return "phone"
    return None
