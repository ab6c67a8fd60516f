"""The one error tree of bharatsend-core.

Every error a caller can see carries a stable ``code`` (snake_case, never
renamed once shipped), a human ``message`` that says what to do, an optional
``field`` naming the offending input, optional structured ``detail``, and an
``http_status`` hint that the HTTP edge maps once. Messages and details never
contain message content or OTP digits: they name offsets, lengths and
template literals instead.

::

    BharatSendError                         (abstract; never raised directly)
    ├── ClientError                         4xx: the caller can fix it
    │   ├── ValidationError (ValueError)    422
    │   │   ├── InvalidArgument             invalid_argument
    │   │   ├── InvalidPhoneNumber          invalid_phone_number
    │   │   ├── UnsupportedDestination      unsupported_destination
    │   │   ├── EmptyContent                empty_content
    │   │   ├── InvalidContent              invalid_content
    │   │   ├── ContentTooLong              content_too_long
    │   │   ├── BatchAborted                batch_aborted
    │   │   ├── DltCsvInvalid               dlt_csv_invalid (per-row errors in detail)
    │   │   ├── ReceiptParseError           receipt_parse_error
    │   │   ├── WebhookUrlForbidden         webhook_url_forbidden
    │   │   └── DltViolation                every dlt_* code (DLT.md)
    │   ├── AuthenticationError             401
    │   │   ├── InvalidApiKey               invalid_api_key (missing, malformed, revoked, expired)
    │   │   └── WebhookSignatureInvalid     webhook_signature_invalid (receivers' verify())
    │   ├── PaymentRequired                 402
    │   │   └── InsufficientCredits         insufficient_credits
    │   ├── RateLimited                     rate_limited (429, retry_after seconds)
    │   ├── PermissionDenied                403
    │   │   ├── InsufficientScope           insufficient_scope
    │   │   ├── TenantSuspended             tenant_suspended
    │   │   └── SandboxOnly                 sandbox_only
    │   ├── NotFound (LookupError)          404
    │   │   ├── TenantNotFound              tenant_not_found
    │   │   ├── MessageNotFound             message_not_found
    │   │   ├── ApiKeyNotFound              api_key_not_found
    │   │   ├── DltRecordNotFound           dlt_record_not_found
    │   │   ├── TransferNotFound            transfer_not_found
    │   │   ├── RouteNotFound               route_not_found
    │   │   └── WebhookEndpointNotFound     webhook_endpoint_not_found
    │   └── ConflictError                   409
    │       ├── IllegalTransition           illegal_transition
    │       ├── IdempotencyConflict         idempotency_conflict
    │       ├── TransferConflict            transfer_conflict
    │       ├── AlreadyExists               already_exists
    │       └── ConcurrentUpdate            concurrent_update
    ├── RemoteError                         502: a carrier or receiver failed
    │   └── CarrierUnavailable              carrier_unavailable
    └── ServerError                         5xx: our side or our infrastructure
        ├── ConfigurationError              configuration_error (500)
        └── StorageUnavailable              storage_unavailable (503)

Abstract classes (the base and the branch classes) refuse to be instantiated,
so every raised error has a concrete code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "ERROR_CODES",
    "AlreadyExists",
    "ApiKeyNotFound",
    "AuthenticationError",
    "BatchAborted",
    "BharatSendError",
    "CarrierUnavailable",
    "ClientError",
    "ConcurrentUpdate",
    "ConfigurationError",
    "ConflictError",
    "ContentTooLong",
    "DltChainInvalid",
    "DltChainMissing",
    "DltConsentMissing",
    "DltCsvInvalid",
    "DltCtaNotWhitelisted",
    "DltDndBlocked",
    "DltEncodingMismatch",
    "DltEntityInvalid",
    "DltEntityUnknown",
    "DltHeaderCategoryMismatch",
    "DltHeaderInactive",
    "DltHeaderInvalid",
    "DltHeaderUnknown",
    "DltPromotionalWindow",
    "DltRecordNotFound",
    "DltTemplateDoubleSpace",
    "DltTemplateForbiddenCharacter",
    "DltTemplateHeaderMismatch",
    "DltTemplateInactive",
    "DltTemplateInvalid",
    "DltTemplateMalformed",
    "DltTemplateMismatch",
    "DltTemplateNoVariable",
    "DltTemplateTooShort",
    "DltTemplateUnknown",
    "DltUntaggedCta",
    "DltVariableTooLong",
    "DltVariableType",
    "DltViolation",
    "EmptyContent",
    "IdempotencyConflict",
    "IllegalTransition",
    "InsufficientCredits",
    "InsufficientScope",
    "InvalidApiKey",
    "InvalidArgument",
    "InvalidContent",
    "InvalidPhoneNumber",
    "MessageNotFound",
    "NotFound",
    "PaymentRequired",
    "PermissionDenied",
    "RateLimited",
    "ReceiptParseError",
    "RemoteError",
    "RouteNotFound",
    "SandboxOnly",
    "ServerError",
    "StorageUnavailable",
    "TenantNotFound",
    "TenantSuspended",
    "TransferConflict",
    "TransferNotFound",
    "UnsupportedDestination",
    "ValidationError",
    "WebhookEndpointNotFound",
    "WebhookSignatureInvalid",
    "WebhookUrlForbidden",
]

_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")

_codes: dict[str, type[BharatSendError]] = {}

#: Every concrete error class by its stable code (read-only view).
ERROR_CODES: Mapping[str, type[BharatSendError]] = MappingProxyType(_codes)


class BharatSendError(Exception):
    """Base of every bharatsend-core error; catch this to catch them all."""

    code: ClassVar[str] = ""
    http_status: ClassVar[int] = 500
    _abstract: ClassVar[bool] = True

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._abstract = abstract
        if abstract:
            return
        if not _CODE_RE.match(cls.code):
            raise TypeError(f"{cls.__name__} needs a snake_case code, got {cls.code!r}")
        if cls.code in _codes and _codes[cls.code] is not cls:
            raise TypeError(f"error code {cls.code!r} is used by {_codes[cls.code].__name__}")
        _codes[cls.code] = cls

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        if type(self)._abstract:
            raise TypeError(f"{type(self).__name__} is abstract; raise a concrete subclass")
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail: Mapping[str, Any] = MappingProxyType(dict(detail or {}))

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(code={self.code!r}, field={self.field!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """The error envelope body (``{"code", "message", "field"}`` plus ``detail``)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.detail:
            body["detail"] = dict(self.detail)
        return body


class ClientError(BharatSendError, abstract=True):
    """The request cannot be served as sent; the caller can fix it."""

    http_status = 400


class ValidationError(ClientError, ValueError, abstract=True):
    """An input value breaks a rule."""

    http_status = 422


class InvalidArgument(ValidationError):
    """A parameter is out of its allowed range or of the wrong form."""

    code = "invalid_argument"


class InvalidPhoneNumber(ValidationError):
    """The text is not a valid phone number in any region."""

    code = "invalid_phone_number"


class UnsupportedDestination(ValidationError):
    """A valid number we will not send to: not a mobile, or outside the allowed regions."""

    code = "unsupported_destination"


class EmptyContent(ValidationError):
    """The message text is empty."""

    code = "empty_content"


class InvalidContent(ValidationError):
    """The text holds characters no SMS encoding can carry (a lone UTF-16 surrogate)."""

    code = "invalid_content"


class BatchAborted(ValidationError):
    """Not sent: another item of an all-or-nothing batch failed."""

    code = "batch_aborted"


class ContentTooLong(ValidationError):
    """The message needs more segments than the configured maximum."""

    code = "content_too_long"


class ReceiptParseError(ValidationError):
    """A delivery receipt gives no message id or no state; log the raw PDU and answer it."""

    code = "receipt_parse_error"


class ConflictError(ClientError, abstract=True):
    """The request conflicts with the current state of a resource."""

    http_status = 409


class IllegalTransition(ConflictError):
    """An event does not apply to a message in its current state."""

    code = "illegal_transition"


class AuthenticationError(ClientError, abstract=True):
    """The caller could not be identified."""

    http_status = 401


class InvalidApiKey(AuthenticationError):
    """The API key is missing, malformed, unknown, revoked or expired (one answer for all)."""

    code = "invalid_api_key"


class WebhookUrlForbidden(ValidationError):
    """A webhook URL is not allowed: not https, credentials in it, or a private address."""

    code = "webhook_url_forbidden"


class WebhookSignatureInvalid(AuthenticationError):
    """A webhook delivery's signature or timestamp does not verify (raised by ``verify``)."""

    code = "webhook_signature_invalid"


class PaymentRequired(ClientError, abstract=True):
    """The request needs credits the tenant does not have."""

    http_status = 402


class InsufficientCredits(PaymentRequired):
    """The tenant's available balance does not cover the message's price."""

    code = "insufficient_credits"


class RateLimited(ClientError):
    """Too many requests: an API key over its rate, or too many messages to one
    number in a short time (the SMS-pumping defence).

    ``retry_after`` says in how many seconds (at least 1) a retry can succeed;
    the HTTP edge sends it as ``Retry-After``.
    """

    code = "rate_limited"
    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        detail: Mapping[str, Any] | None = None,
        retry_after: int = 1,
    ) -> None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise ValueError(f"retry_after must be a whole number >= 1, got {retry_after!r}")
        super().__init__(message, field=field, detail=detail)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """The error envelope body, with ``retry_after`` (seconds)."""
        body = super().to_dict()
        body["retry_after"] = self.retry_after
        return body


class PermissionDenied(ClientError, abstract=True):
    """The caller is known but may not do this."""

    http_status = 403


class InsufficientScope(PermissionDenied):
    """The API key lacks the scope this operation needs."""

    code = "insufficient_scope"


class TenantSuspended(PermissionDenied):
    """The tenant is suspended and cannot send."""

    code = "tenant_suspended"


class SandboxOnly(PermissionDenied):
    """A test key or sandbox tenant asked for something only live traffic may do."""

    code = "sandbox_only"


class NotFound(ClientError, LookupError, abstract=True):
    """The resource does not exist (or belongs to another tenant: never confirmed)."""

    http_status = 404


class TenantNotFound(NotFound):
    """No tenant with that id."""

    code = "tenant_not_found"


class MessageNotFound(NotFound):
    """No message with that id for this tenant."""

    code = "message_not_found"


class ApiKeyNotFound(NotFound):
    """No API key with that id for this tenant."""

    code = "api_key_not_found"


class DltRecordNotFound(NotFound):
    """No DLT entity, header or template with that id for this tenant."""

    code = "dlt_record_not_found"


class TransferNotFound(NotFound):
    """No ledger transfer with that id."""

    code = "transfer_not_found"


class WebhookEndpointNotFound(NotFound):
    """No webhook endpoint with that id for this tenant."""

    code = "webhook_endpoint_not_found"


class ConcurrentUpdate(ConflictError):
    """Another transaction changed the message since it was read; read it again and retry."""

    code = "concurrent_update"


class RouteNotFound(NotFound):
    """No carrier route with that name."""

    code = "route_not_found"


class IdempotencyConflict(ConflictError):
    """The client_message_id was used before with a different request."""

    code = "idempotency_conflict"


class TransferConflict(ConflictError):
    """A transfer id was used before with different fields, or its reservation is settled."""

    code = "transfer_conflict"


class AlreadyExists(ConflictError):
    """A resource with that identity already exists."""

    code = "already_exists"


class RemoteError(BharatSendError, abstract=True):
    """A remote party (carrier, webhook receiver) failed; not the caller's fault."""

    http_status = 502


class CarrierUnavailable(RemoteError):
    """A carrier route cannot take submits now (not bound, stopping, or its bind failed)."""

    code = "carrier_unavailable"


class ServerError(BharatSendError, abstract=True):
    """Our side failed: configuration or infrastructure. Not the caller's fault."""

    http_status = 500


class ConfigurationError(ServerError):
    """A setting is missing or invalid; the message names the setting."""

    code = "configuration_error"


class StorageUnavailable(ServerError):
    """The database could not be reached or did not answer; nothing was written. Retry."""

    code = "storage_unavailable"
    http_status = 503


class InternalError(ServerError):
    """A bug on our side; the request may or may not have taken effect. Details are logged."""

    code = "internal_error"


# --------------------------------------------------------------------------- HTTP edge
# Refusals that only exist at the HTTP API: the body or the address was wrong.


class MalformedRequest(ClientError):
    """The body is not valid JSON (or not UTF-8)."""

    code = "malformed_json"


class PayloadTooLarge(ClientError):
    """The body is larger than the API accepts; split a batch."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(ClientError):
    """The body is not ``application/json`` (or ``text/csv`` where a CSV is expected)."""

    code = "unsupported_media_type"
    http_status = 415


class EndpointNotFound(NotFound):
    """No API endpoint has this path."""

    code = "endpoint_not_found"


class MethodNotAllowed(ClientError):
    """The path exists but not with this HTTP method; ``Allow`` lists the ones it takes."""

    code = "method_not_allowed"
    http_status = 405


# --------------------------------------------------------------------------- DLT
# TRAI TCCCPR 2018 scrubbing rules; operator codes per DLT.md (vendors renumber).


class DltCsvInvalid(ValidationError):
    """A DLT portal CSV export has invalid rows; nothing was imported.

    Not a ``DltViolation``: one import reports many row errors at once, each
    with its own DLT code, in ``detail["errors"]`` (line, column, code,
    message; the first 100) and ``detail["error_count"]``.
    """

    code = "dlt_csv_invalid"


class DltViolation(ValidationError, abstract=True):
    """A message or registration breaks a TRAI DLT rule (see DLT.md)."""

    #: The operator scrubbing code this corresponds to, where one is known.
    operator_code: ClassVar[int | None] = None


class DltEntityInvalid(DltViolation):
    """A PE ID is not 1-30 digits."""

    code = "dlt_entity_invalid"


class DltEntityUnknown(DltViolation):
    """No entity with that PE ID is registered for the tenant."""

    code = "dlt_entity_unknown"
    operator_code = 600


class DltHeaderInvalid(DltViolation):
    """A header is not 6 letters (or 6 digits for promotional)."""

    code = "dlt_header_invalid"


class DltHeaderUnknown(DltViolation):
    """No header with that sender ID is registered for the entity."""

    code = "dlt_header_unknown"
    operator_code = 620


class DltHeaderInactive(DltViolation):
    """The header is registered but deactivated."""

    code = "dlt_header_inactive"
    operator_code = 621


class DltTemplateInvalid(DltViolation):
    """A template ID is not 1-30 digits."""

    code = "dlt_template_invalid"


class DltTemplateUnknown(DltViolation):
    """No template with that ID is registered for the tenant."""

    code = "dlt_template_unknown"
    operator_code = 630


class DltTemplateInactive(DltViolation):
    """The template is registered but not active (rejected or deactivated)."""

    code = "dlt_template_inactive"
    operator_code = 631


class DltTemplateHeaderMismatch(DltViolation):
    """The header is not linked to the template (or belongs to another entity)."""

    code = "dlt_template_header_mismatch"
    operator_code = 632


class DltHeaderCategoryMismatch(DltViolation):
    """The header's kind does not fit the category: numeric headers are promotional only."""

    code = "dlt_header_category_mismatch"
    operator_code = 622


class DltChainMissing(DltViolation):
    """The route requires a telemarketer chain and the tenant has none."""

    code = "dlt_chain_missing"
    operator_code = 610


class DltChainInvalid(DltViolation):
    """A telemarketer chain is not a PE ID followed by 1-3 TM IDs."""

    code = "dlt_chain_invalid"
    operator_code = 611


class DltTemplateMalformed(DltViolation):
    """A template body holds a near-miss placeholder such as ``{#var1#}``."""

    code = "dlt_template_malformed"


class DltTemplateNoVariable(DltViolation):
    """A transactional or service template has no placeholder."""

    code = "dlt_template_no_variable"


class DltTemplateForbiddenCharacter(DltViolation):
    """A template body contains ``<`` or ``>``."""

    code = "dlt_template_forbidden_character"


class DltTemplateDoubleSpace(DltViolation):
    """A template body contains two spaces in a row."""

    code = "dlt_template_double_space"


class DltTemplateTooShort(DltViolation):
    """A template body has fewer literal characters than the minimum."""

    code = "dlt_template_too_short"


class DltTemplateMismatch(DltViolation):
    """The text does not match the template's literal parts."""

    code = "dlt_template_mismatch"
    operator_code = 633


class DltVariableTooLong(DltViolation):
    """A placeholder's value is longer than its limit."""

    code = "dlt_variable_too_long"
    operator_code = 635


class DltVariableType(DltViolation):
    """A typed placeholder's value has the wrong form (digits, URL, e-mail...)."""

    code = "dlt_variable_type"
    operator_code = 634


class DltCtaNotWhitelisted(DltViolation):
    """A ``{#url#}``, ``{#urlott#}`` or ``{#cbn#}`` value is not on the tenant's whitelist."""

    code = "dlt_cta_not_whitelisted"
    operator_code = 642


class DltUntaggedCta(DltViolation):
    """A plain ``{#var#}`` carries a URL, APK link or phone number."""

    code = "dlt_untagged_cta"
    operator_code = 643


class DltEncodingMismatch(DltViolation):
    """A ``text`` template's message needs UCS-2 (a character outside GSM-7)."""

    code = "dlt_encoding_mismatch"
    operator_code = 636


class DltPromotionalWindow(DltViolation):
    """A promotional message outside the allowed hours (Asia/Kolkata)."""

    code = "dlt_promotional_window"
    operator_code = 651


class DltDndBlocked(DltViolation):
    """A promotional message to a DND-registered number without consent."""

    code = "dlt_dnd_blocked"
    operator_code = 650


class DltConsentMissing(DltViolation):
    """A message whose category requires recorded consent, without it."""

    code = "dlt_consent_missing"
    operator_code = 660
