"""DLT registry values: entities (PE IDs), headers (sender IDs), content templates.

These are what a tenant registered on an operator's DLT platform (TRAI TCCCPR
2018). Validators hold the format rules of DLT.md, so an invalid value cannot
exist; lookups go through :class:`RegistryView`, which the service backs with
storage and tests back with :class:`Registry`.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from attrs import field, frozen

from bharatsend_core.domain.errors import (
    DltChainInvalid,
    DltEntityInvalid,
    DltHeaderCategoryMismatch,
    DltHeaderInvalid,
    DltTemplateInvalid,
)

__all__ = [
    "Category",
    "ContentType",
    "Entity",
    "Header",
    "HeaderKind",
    "Registry",
    "RegistryView",
    "TelemarketerChain",
    "Template",
    "validate_entity_id",
    "validate_sender_id",
    "validate_template_id",
]

_ID_RE = re.compile(r"[0-9]{1,30}")
_ALPHA_HEADER_RE = re.compile(r"[A-Za-z]{6}")
_NUMERIC_HEADER_RE = re.compile(r"[0-8][0-9]{5}")
# Operators show headers as "VM-ABCDEF-S"; the plain header is what we send.
_DECORATED_HEADER_RE = re.compile(r"(?:[A-Za-z]{2}-)?([A-Za-z]{6}|[0-9]{6})(?:-[PSTGpstg])?")


class Category(enum.StrEnum):
    """A template's or header's DLT category."""

    TRANSACTIONAL = "transactional"
    SERVICE_IMPLICIT = "service_implicit"
    SERVICE_EXPLICIT = "service_explicit"
    PROMOTIONAL = "promotional"
    GOVERNMENT = "government"

    @property
    def is_promotional(self) -> bool:
        """Promotional rules apply (the 2025 amendment folds service-explicit in)."""
        return self in (Category.PROMOTIONAL, Category.SERVICE_EXPLICIT)

    @property
    def needs_variable(self) -> bool:
        """Transactional and service templates must carry at least one placeholder."""
        return self in (
            Category.TRANSACTIONAL,
            Category.SERVICE_IMPLICIT,
            Category.SERVICE_EXPLICIT,
        )

    @classmethod
    def parse(cls, raw: str) -> Category:
        """Read a category as DLT portals and people write it (``TXN``, ``Service-Explicit``...)."""
        key = re.sub(r"[\s_\-]+", "", raw).lower()
        try:
            return _CATEGORY_ALIASES[key]
        except KeyError:
            choices = ", ".join(c.value for c in cls)
            raise DltTemplateInvalid(
                f"unknown DLT category {raw!r}; use one of {choices}", field="category"
            ) from None


_CATEGORY_ALIASES: Mapping[str, Category] = {
    "transactional": Category.TRANSACTIONAL,
    "txn": Category.TRANSACTIONAL,
    "trans": Category.TRANSACTIONAL,
    "serviceimplicit": Category.SERVICE_IMPLICIT,
    "si": Category.SERVICE_IMPLICIT,
    "service": Category.SERVICE_IMPLICIT,
    "serviceexplicit": Category.SERVICE_EXPLICIT,
    "se": Category.SERVICE_EXPLICIT,
    "promotional": Category.PROMOTIONAL,
    "promo": Category.PROMOTIONAL,
    "pml": Category.PROMOTIONAL,
    "government": Category.GOVERNMENT,
    "govt": Category.GOVERNMENT,
    "gov": Category.GOVERNMENT,
}


class ContentType(enum.StrEnum):
    """Whether a template was registered as plain text (GSM-7) or Unicode."""

    TEXT = "text"
    UNICODE = "unicode"

    @classmethod
    def parse(cls, raw: str) -> ContentType:
        """Read ``Text``/``Unicode`` (and ``UCS2``, ``Regional``) as portals export them."""
        key = raw.strip().lower()
        if key in ("text", "plain", "english", "gsm", "gsm7"):
            return cls.TEXT
        if key in ("unicode", "ucs2", "ucs-2", "regional"):
            return cls.UNICODE
        raise DltTemplateInvalid(
            f"unknown content type {raw!r}; use 'text' or 'unicode'", field="content_type"
        )


class HeaderKind(enum.StrEnum):
    """Alphabetic headers serve every category but promotional; numeric ones only promotional."""

    ALPHA = "alpha"
    NUMERIC = "numeric"


def validate_entity_id(pe_id: str, *, field: str = "entity_id") -> str:
    """Return ``pe_id`` if it is a DLT PE ID (1-30 digits), else raise ``DltEntityInvalid``."""
    if not isinstance(pe_id, str) or not _ID_RE.fullmatch(pe_id):
        raise DltEntityInvalid("a PE ID is 1 to 30 digits (usually 19)", field=field)
    return pe_id


def validate_template_id(template_id: str, *, field: str = "dlt_template_id") -> str:
    """Return ``template_id`` if it is a DLT content template ID (1-30 digits)."""
    if not isinstance(template_id, str) or not _ID_RE.fullmatch(template_id):
        raise DltTemplateInvalid("a DLT template ID is 1 to 30 digits (usually 19)", field=field)
    return template_id


def validate_sender_id(sender_id: str, *, field: str = "header") -> str:
    """Return ``sender_id`` if it is a plain DLT header: 6 letters, or 6 digits (first 0-8)."""
    if isinstance(sender_id, str) and (
        _ALPHA_HEADER_RE.fullmatch(sender_id) or _NUMERIC_HEADER_RE.fullmatch(sender_id)
    ):
        return sender_id
    hint = ""
    if isinstance(sender_id, str):
        decorated = _DECORATED_HEADER_RE.fullmatch(sender_id.strip())
        if decorated and decorated.group(1) != sender_id:
            hint = (
                f"; send the plain header {decorated.group(1)!r}: operators add their"
                " prefix and suffix themselves"
            )
    raise DltHeaderInvalid(
        "a header is exactly 6 letters (transactional, service, government) or 6 digits"
        " starting 0-8 (promotional)" + hint,
        field=field,
    )


def _header_kind(sender_id: str) -> HeaderKind:
    return HeaderKind.NUMERIC if sender_id.isdigit() else HeaderKind.ALPHA


@frozen
class Entity:
    """A principal entity (the business) registered on DLT, identified by its PE ID."""

    pe_id: str = field(validator=lambda _i, _a, v: validate_entity_id(v))
    name: str = ""


@frozen
class Header:
    """A sender ID registered to an entity, with the category it was registered for."""

    sender_id: str = field(validator=lambda _i, _a, v: validate_sender_id(v))
    entity_id: str = field(validator=lambda _i, _a, v: validate_entity_id(v))
    category: Category = field(converter=Category)
    active: bool = True

    def __attrs_post_init__(self) -> None:
        if self.kind is HeaderKind.NUMERIC and not self.category.is_promotional:
            raise DltHeaderCategoryMismatch(
                "numeric headers are for promotional messages only; register a 6-letter"
                " header for this category",
                field="category",
            )

    @property
    def kind(self) -> HeaderKind:
        """Alphabetic or numeric."""
        return _header_kind(self.sender_id)

    def fits(self, category: Category) -> bool:
        """Whether this header may carry a template of ``category`` (DLT.md, template ↔ header)."""
        if self.kind is HeaderKind.NUMERIC:
            return category.is_promotional
        return category is not Category.PROMOTIONAL


def _headers(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class Template:
    """A registered content template: its ID, entity, category, body and linked headers."""

    template_id: str = field(validator=lambda _i, _a, v: validate_template_id(v))
    entity_id: str = field(validator=lambda _i, _a, v: validate_entity_id(v))
    category: Category = field(converter=Category)
    body: str
    content_type: ContentType = field(default=ContentType.TEXT, converter=ContentType)
    headers: frozenset[str] = field(factory=frozenset, converter=_headers)
    active: bool = True
    name: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.body:
            raise DltTemplateInvalid("a template body cannot be empty", field="body")
        for sender_id in self.headers:
            validate_sender_id(sender_id, field="headers")


@frozen
class TelemarketerChain:
    """The delivery chain of a message: the PE ID, then 1-3 telemarketer IDs (delivery TM last)."""

    pe_id: str = field(validator=lambda _i, _a, v: validate_entity_id(v, field="chain"))
    tm_ids: tuple[str, ...] = field(converter=_ids)

    def __attrs_post_init__(self) -> None:
        if not 1 <= len(self.tm_ids) <= 3 or not all(_ID_RE.fullmatch(t) for t in self.tm_ids):
            raise DltChainInvalid(
                "a telemarketer chain is the PE ID followed by 1 to 3 TM IDs of 1-30 digits",
                field="chain",
            )

    @property
    def value(self) -> str:
        """The IDs joined by ``,`` with no spaces, as the chain is declared."""
        return ",".join((self.pe_id, *self.tm_ids))

    @property
    def hash(self) -> str:
        """Lower-case hex SHA-256 of :attr:`value`, what operators expect on the wire."""
        return hashlib.sha256(self.value.encode("ascii")).hexdigest()

    @classmethod
    def parse(cls, raw: str) -> TelemarketerChain:
        """Read ``"PEID,TM1,TM2"`` (spaces around commas tolerated)."""
        ids = [part.strip() for part in raw.split(",")]
        if len(ids) < 2:
            raise DltChainInvalid(
                "a telemarketer chain is the PE ID followed by 1 to 3 TM IDs", field="chain"
            )
        return cls(ids[0], tuple(ids[1:]))


class RegistryView(Protocol):
    """What DLT validation needs to know about one tenant's registrations.

    Lookups are exact (header IDs are case-sensitive) and return None for an
    unknown key. Implementations may cache; they must not perform a write.
    """

    def entity(self, pe_id: str) -> Entity | None:
        """The entity with this PE ID, if registered."""
        ...

    def header(self, sender_id: str) -> Header | None:
        """The header with this sender ID, if registered."""
        ...

    def template(self, template_id: str) -> Template | None:
        """The template with this ID, if registered."""
        ...

    def url_whitelisted(self, url: str) -> bool:
        """Whether a ``{#url#}``/``{#urlott#}`` value is on the tenant's URL whitelist."""
        ...

    def callback_whitelisted(self, number: str) -> bool:
        """Whether a ``{#cbn#}`` value is on the tenant's call-back whitelist."""
        ...


class Registry:
    """An in-memory :class:`RegistryView` built from values (tests, sandbox, caches)."""

    def __init__(
        self,
        *,
        entities: Iterable[Entity] = (),
        headers: Iterable[Header] = (),
        templates: Iterable[Template] = (),
        url_whitelist: Iterable[str] = (),
        callback_whitelist: Iterable[str] = (),
    ) -> None:
        from bharatsend_core.domain.dlt.cta import CallbackWhitelist, UrlWhitelist

        self._entities = {e.pe_id: e for e in entities}
        self._headers = {h.sender_id: h for h in headers}
        self._templates = {t.template_id: t for t in templates}
        self._urls = UrlWhitelist.parse(url_whitelist)
        self._callbacks = CallbackWhitelist.parse(callback_whitelist)

    def entity(self, pe_id: str) -> Entity | None:
        """The entity with this PE ID, if registered."""
        return self._entities.get(pe_id)

    def header(self, sender_id: str) -> Header | None:
        """The header with this sender ID, if registered."""
        return self._headers.get(sender_id)

    def template(self, template_id: str) -> Template | None:
        """The template with this ID, if registered."""
        return self._templates.get(template_id)

    def templates(self) -> tuple[Template, ...]:
        """Every registered template, in registration order."""
        return tuple(self._templates.values())

    def url_whitelisted(self, url: str) -> bool:
        """Whether ``url`` starts with a whitelisted prefix."""
        return self._urls.allows(url)

    def callback_whitelisted(self, number: str) -> bool:
        """Whether ``number`` is a whitelisted call-back number."""
        return self._callbacks.allows(number)
