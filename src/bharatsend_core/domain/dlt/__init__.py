"""TRAI DLT compliance: registry values, template matching, the template index, validation.

Everything a message must satisfy before it leaves (DLT.md): a registered,
active entity, header and content template that belong together, text that
matches the template exactly, calls to action on the tenant's whitelists,
and the category rules (promotional hours, DND, consent, telemarketer chain).
"""

from bharatsend_core.domain.dlt.cta import (
    CallbackWhitelist,
    UrlPrefix,
    UrlWhitelist,
    looks_like_cta,
    normalise_callback,
)
from bharatsend_core.domain.dlt.index import IndexMatch, TemplateIndex, required_tokens
from bharatsend_core.domain.dlt.matching import (
    DEFAULT_LIMITS,
    MAX_PLACEHOLDER_LENGTH,
    CompiledTemplate,
    Placeholder,
    PlaceholderKind,
    PlaceholderLimits,
    compile_template,
)
from bharatsend_core.domain.dlt.registry import (
    Category,
    ContentType,
    Entity,
    Header,
    HeaderKind,
    Registry,
    RegistryView,
    TelemarketerChain,
    Template,
    validate_entity_id,
    validate_sender_id,
    validate_template_id,
)
from bharatsend_core.domain.dlt.rules import (
    DEFAULT_POLICY,
    IST,
    DltPolicy,
    DltVerdict,
    DltWarning,
    Recipient,
    Severity,
    TemplateCache,
    check_template,
    validate,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_POLICY",
    "IST",
    "MAX_PLACEHOLDER_LENGTH",
    "CallbackWhitelist",
    "Category",
    "CompiledTemplate",
    "ContentType",
    "DltPolicy",
    "DltVerdict",
    "DltWarning",
    "Entity",
    "Header",
    "HeaderKind",
    "IndexMatch",
    "Placeholder",
    "PlaceholderKind",
    "PlaceholderLimits",
    "Recipient",
    "Registry",
    "RegistryView",
    "Severity",
    "TelemarketerChain",
    "Template",
    "TemplateCache",
    "TemplateIndex",
    "UrlPrefix",
    "UrlWhitelist",
    "check_template",
    "compile_template",
    "looks_like_cta",
    "normalise_callback",
    "required_tokens",
    "validate",
    "validate_entity_id",
    "validate_sender_id",
    "validate_template_id",
]
