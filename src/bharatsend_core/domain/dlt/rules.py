"""The full DLT check of one message, and the registration-time checks of a template.

``validate`` runs the checks an operator's scrubber runs (DLT.md), in the
order a developer fixes them: template, entity, header, the template-header
link, encoding, content, calls to action, then the category rules (time
window, DND, consent) and the telemarketer chain. It returns a verdict or
raises the first ``DltViolation``; warnings ride on the verdict.
"""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Final

from attrs import field, frozen

from bharatsend_core.domain.dlt.cta import looks_like_cta
from bharatsend_core.domain.dlt.matching import (
    DEFAULT_LIMITS,
    CompiledTemplate,
    PlaceholderKind,
    PlaceholderLimits,
    compile_template,
)
from bharatsend_core.domain.dlt.registry import (
    Category,
    ContentType,
    Entity,
    Header,
    RegistryView,
    TelemarketerChain,
    Template,
    validate_sender_id,
    validate_template_id,
)
from bharatsend_core.domain.encoding import first_non_gsm7
from bharatsend_core.domain.errors import (
    DltChainInvalid,
    DltChainMissing,
    DltConsentMissing,
    DltCtaNotWhitelisted,
    DltDndBlocked,
    DltEncodingMismatch,
    DltEntityUnknown,
    DltHeaderCategoryMismatch,
    DltHeaderInactive,
    DltHeaderUnknown,
    DltPromotionalWindow,
    DltTemplateDoubleSpace,
    DltTemplateForbiddenCharacter,
    DltTemplateHeaderMismatch,
    DltTemplateInactive,
    DltTemplateNoVariable,
    DltTemplateTooShort,
    DltTemplateUnknown,
    DltUntaggedCta,
    DltViolation,
    InvalidArgument,
)

__all__ = [
    "DEFAULT_POLICY",
    "IST",
    "DltPolicy",
    "DltVerdict",
    "DltWarning",
    "Recipient",
    "Severity",
    "TemplateCache",
    "check_template",
    "validate",
]

#: India Standard Time: UTC+05:30 all year (no daylight saving), so a fixed offset is exact.
IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")


class Severity(enum.StrEnum):
    """What a rule does when it fires: refuse, warn (on the verdict), or nothing."""

    ERROR = "error"
    WARN = "warn"
    ALLOW = "allow"


def _time_of_day(value: time) -> time:
    if not isinstance(value, time) or value.tzinfo is not None:
        raise InvalidArgument("window bounds are naive times of day in IST", field="window")
    return value


@frozen
class DltPolicy:
    """The settings of DLT enforcement; defaults follow DLT.md."""

    limits: PlaceholderLimits = DEFAULT_LIMITS
    untagged_cta: Severity = field(default=Severity.WARN, converter=Severity)
    promotional_start: time = field(default=time(10, 0), converter=_time_of_day)
    promotional_end: time = field(default=time(21, 0), converter=_time_of_day)
    require_consent_for_promotional: bool = False
    require_chain: bool = False
    max_headers_per_template: int = 1
    no_variable: Severity = field(default=Severity.ERROR, converter=Severity)
    forbidden_characters: Severity = field(default=Severity.WARN, converter=Severity)
    double_space: Severity = field(default=Severity.WARN, converter=Severity)
    too_short: Severity = field(default=Severity.WARN, converter=Severity)
    min_literal_characters: int = 10
    opt_out_phrases: tuple[str, ...] = ("opt out", "optout", "unsubscribe", "stop", "to block")

    def __attrs_post_init__(self) -> None:
        if self.promotional_start >= self.promotional_end:
            raise InvalidArgument(
                "promotional_start must be before promotional_end", field="promotional_start"
            )
        if self.max_headers_per_template < 1:
            raise InvalidArgument(
                "max_headers_per_template must be at least 1", field="max_headers_per_template"
            )


DEFAULT_POLICY: Final = DltPolicy()


@frozen
class Recipient:
    """Facts about the destination the service looked up before validating (DND, consent)."""

    phone: str
    is_dnd: bool = False
    has_consent: bool = False


@frozen
class DltWarning:
    """A rule that fired without refusing the message or template."""

    code: str
    message: str
    field: str | None = None


@frozen
class DltVerdict:
    """A message that passed DLT: what it matched and what rides with it on the wire."""

    entity: Entity
    header: Header
    template: Template
    values: tuple[str, ...] = field(repr=False)
    warnings: tuple[DltWarning, ...] = ()
    chain_hash: str | None = None

    @property
    def pe_id(self) -> str:
        """The PE ID to send in the entity TLV."""
        return self.entity.pe_id

    @property
    def template_id(self) -> str:
        """The template ID to send in the template TLV."""
        return self.template.template_id


class TemplateCache:
    """Compiled templates by (ID, body, limits): compile once, match many times."""

    def __init__(self, maxsize: int = 65536) -> None:
        self._maxsize = maxsize
        self._items: dict[tuple[str, str, PlaceholderLimits], CompiledTemplate] = {}

    def get(self, template: Template, limits: PlaceholderLimits) -> CompiledTemplate:
        """The compiled form of ``template`` under ``limits``."""
        key = (template.template_id, template.body, limits)
        compiled = self._items.get(key)
        if compiled is None:
            if len(self._items) >= self._maxsize:
                self._items.pop(next(iter(self._items)))
            compiled = compile_template(template.body, limits=limits)
            self._items[key] = compiled
        return compiled


_DEFAULT_CACHE: Final = TemplateCache()


def validate(
    registry: RegistryView,
    *,
    header: str,
    template_id: str,
    text: str,
    now: datetime,
    recipient: Recipient | None = None,
    chain: TelemarketerChain | None = None,
    policy: DltPolicy = DEFAULT_POLICY,
    cache: TemplateCache = _DEFAULT_CACHE,
) -> DltVerdict:
    """Check one message against the tenant's DLT registrations; return its verdict.

    ``now`` must be timezone-aware (the promotional window is in IST).
    ``recipient`` carries the DND and consent facts; without it the
    recipient-dependent rules are skipped (estimates), so the send path must
    always pass it. ``chain`` is the tenant's telemarketer chain, required
    when ``policy.require_chain``.
    """
    if now.tzinfo is None:
        raise InvalidArgument("now must be timezone-aware", field="now")
    validate_template_id(template_id)
    template = registry.template(template_id)
    if template is None:
        raise DltTemplateUnknown(
            f"DLT template {template_id} is not registered; import it from your DLT portal",
            field="dlt_template_id",
        )
    if not template.active:
        raise DltTemplateInactive(
            f"DLT template {template_id} is not active (rejected or deactivated)",
            field="dlt_template_id",
        )
    entity = registry.entity(template.entity_id)
    if entity is None:
        raise DltEntityUnknown(
            f"template {template_id} belongs to PE ID {template.entity_id}, which is not"
            " registered; register the entity first",
            field="dlt_template_id",
        )
    validate_sender_id(header)
    registered = registry.header(header)
    if registered is None:
        raise DltHeaderUnknown(
            f"header {header!r} is not registered (headers are case-sensitive)", field="header"
        )
    if not registered.active:
        raise DltHeaderInactive(f"header {header!r} is deactivated", field="header")
    if registered.entity_id != template.entity_id or header not in template.headers:
        linked = ", ".join(sorted(template.headers)) or "none"
        raise DltTemplateHeaderMismatch(
            f"header {header!r} is not linked to template {template_id} (linked: {linked})",
            field="header",
        )
    if not registered.fits(template.category):
        raise DltHeaderCategoryMismatch(
            f"a {registered.kind.value} header cannot carry a {template.category.value}"
            " template: numeric headers are for promotional messages only",
            field="header",
        )
    if template.content_type is ContentType.TEXT:
        _check_encoding(text)
    compiled = cache.get(template, policy.limits)
    values = compiled.verify(text)
    warnings: list[DltWarning] = []
    _check_ctas(compiled, values, registry, policy, warnings)
    _check_category(template.category, now, recipient, policy)
    chain_hash = _check_chain(chain, template, policy)
    return DltVerdict(entity, registered, template, values, tuple(warnings), chain_hash)


def _check_encoding(text: str) -> None:
    found = first_non_gsm7(text)
    if found is None:
        return
    offset, char = found
    name = unicodedata.name(char, "an unnamed character")
    raise DltEncodingMismatch(
        f"the template is registered as text, but U+{ord(char):04X} {name} at offset {offset}"
        " needs Unicode (UCS-2); replace it or register a Unicode template",
        field="content",
        detail={"offset": offset, "codepoint": f"U+{ord(char):04X}"},
    )


def _check_ctas(
    compiled: CompiledTemplate,
    values: tuple[str, ...],
    registry: RegistryView,
    policy: DltPolicy,
    warnings: list[DltWarning],
) -> None:
    for ph, value in zip(compiled.placeholders, values, strict=True):
        if ph.kind in (PlaceholderKind.URL, PlaceholderKind.URLOTT):
            if not registry.url_whitelisted(value):
                raise DltCtaNotWhitelisted(
                    f"the URL in {ph.label} is not on your URL whitelist; whitelist its"
                    " prefix on the DLT portal and in bharatsend",
                    field="content",
                    detail={"placeholder": ph.index + 1, "kind": ph.kind.value},
                )
        elif ph.kind is PlaceholderKind.CBN:
            if not registry.callback_whitelisted(value):
                raise DltCtaNotWhitelisted(
                    f"the number in {ph.label} is not on your call-back whitelist",
                    field="content",
                    detail={"placeholder": ph.index + 1, "kind": ph.kind.value},
                )
        elif ph.kind is PlaceholderKind.VAR and policy.untagged_cta is not Severity.ALLOW:
            what = looks_like_cta(value)
            if what is None:
                continue
            message = (
                f"{ph.label} carries what looks like a {what}; since November 2025 URLs, APK"
                " links and phone numbers must sit in {#url#}, {#urlott#} or {#cbn#}"
            )
            if policy.untagged_cta is Severity.ERROR:
                raise DltUntaggedCta(
                    message,
                    field="content",
                    detail={"placeholder": ph.index + 1, "looks_like": what},
                )
            warnings.append(DltWarning(DltUntaggedCta.code, message, "content"))


def _check_category(
    category: Category, now: datetime, recipient: Recipient | None, policy: DltPolicy
) -> None:
    if not category.is_promotional:
        return
    local = now.astimezone(IST)
    if not policy.promotional_start <= local.time().replace(tzinfo=None) < policy.promotional_end:
        start = policy.promotional_start.strftime("%H:%M")
        end = policy.promotional_end.strftime("%H:%M")
        next_day = local.date() + timedelta(days=1 if local.time() >= policy.promotional_end else 0)
        opens = datetime.combine(next_day, policy.promotional_start, IST)
        raise DltPromotionalWindow(
            f"{category.value} messages may be sent only from {start} to {end} IST; it is"
            f" {local:%H:%M} IST. Schedule it for {opens.isoformat()}",
            field="dlt_template_id",
            detail={"opens_at": opens.astimezone(UTC).isoformat()},
        )
    if recipient is None:
        return
    needs_consent = category is Category.SERVICE_EXPLICIT or policy.require_consent_for_promotional
    if needs_consent and not recipient.has_consent:
        raise DltConsentMissing(
            f"{category.value} messages need the recipient's recorded consent; record it"
            " before sending",
            field="phone_number",
        )
    if recipient.is_dnd and not recipient.has_consent:
        raise DltDndBlocked(
            "the number is on the DND (do not disturb) registry and no consent is recorded"
            " for it; promotional messages are blocked",
            field="phone_number",
        )


def _check_chain(
    chain: TelemarketerChain | None, template: Template, policy: DltPolicy
) -> str | None:
    if chain is None:
        if policy.require_chain:
            raise DltChainMissing(
                "this route requires a telemarketer chain (PE ID, then 1-3 TM IDs); configure"
                " it for the tenant",
                field="chain",
            )
        return None
    if chain.pe_id != template.entity_id:
        raise DltChainInvalid(
            f"the telemarketer chain starts with PE ID {chain.pe_id}, but the template"
            f" belongs to {template.entity_id}",
            field="chain",
        )
    return chain.hash


# ---------------------------------------------------------------- registration


def check_template(
    template: Template, policy: DltPolicy = DEFAULT_POLICY
) -> tuple[DltWarning, ...]:
    """Registration-time checks of a template (DLT.md); raise or return warnings.

    Near-miss placeholders always raise ``DltTemplateMalformed``; the body
    rules (a placeholder in transactional/service templates, no ``<``/``>``,
    no double spaces, enough literal text) follow the policy's severities;
    the header count follows ``max_headers_per_template``; a promotional
    template without an opt-out phrase earns a warning.
    """
    compiled = compile_template(template.body, limits=policy.limits)
    warnings: list[DltWarning] = []
    rules: list[tuple[bool, Severity, type[DltViolation], str]] = [
        (
            template.category.needs_variable and not compiled.placeholders,
            policy.no_variable,
            DltTemplateNoVariable,
            f"{template.category.value} templates need at least one placeholder",
        ),
        (
            "<" in template.body or ">" in template.body,
            policy.forbidden_characters,
            DltTemplateForbiddenCharacter,
            "template bodies may not contain '<' or '>'",
        ),
        (
            "  " in template.body,
            policy.double_space,
            DltTemplateDoubleSpace,
            "the body has two spaces in a row; operators reject such templates",
        ),
        (
            compiled.literal_length < policy.min_literal_characters,
            policy.too_short,
            DltTemplateTooShort,
            f"the body has {compiled.literal_length} literal characters; at least"
            f" {policy.min_literal_characters} are expected",
        ),
    ]
    for fired, severity, error_class, message in rules:
        if not fired or severity is Severity.ALLOW:
            continue
        error = error_class(message, field="body")
        if severity is Severity.ERROR:
            raise error
        warnings.append(DltWarning(error.code, error.message, error.field))
    if len(template.headers) > policy.max_headers_per_template:
        raise DltTemplateHeaderMismatch(
            f"a template may be linked to at most {policy.max_headers_per_template} header(s);"
            f" it lists {len(template.headers)}",
            field="headers",
        )
    if template.category.is_promotional:
        lowered = template.body.lower()
        if not any(p in lowered for p in policy.opt_out_phrases):
            warnings.append(
                DltWarning(
                    "dlt_opt_out_missing",
                    "promotional templates should tell the recipient how to opt out",
                    "body",
                )
            )
    return tuple(warnings)
