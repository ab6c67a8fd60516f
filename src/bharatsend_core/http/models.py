"""The v1 API's request and response bodies (validated, rendered and published from here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from attrs import frozen

from bharatsend_core.http.schema import prop

# Identifiers are short ASCII tokens; these bounds keep hostile input cheap.
_ID: dict[str, Any] = {"min_length": 1, "max_length": 64}
_DLT_ID: dict[str, Any] = {"min_length": 1, "max_length": 30, "pattern": r"[0-9]{1,30}"}
_PHONE: dict[str, Any] = {"min_length": 1, "max_length": 32, "example": "+919876543210"}

StatusName = Literal[
    "accepted",
    "submitting",
    "retrying",
    "sent",
    "delivered",
    "undelivered",
    "expired",
    "rejected",
    "failed",
]

# --------------------------------------------------------------------------- requests


@frozen
class SendBody:
    """One message to send."""

    phone_number: str = prop(description="Destination; E.164 or a 10-digit Indian number", **_PHONE)
    content: str = prop(
        description="The text, exactly matching the DLT template", min_length=1, max_length=2000
    )
    dlt_template_id: str = prop(description="The DLT content template ID", **_DLT_ID)
    header: str | None = prop(
        None,
        description="Sender ID; defaults to the template's only header",
        min_length=1,
        max_length=16,
        example="ACMEOT",
    )
    client_message_id: str | None = prop(
        None, description="Your id for safe retries (or the Idempotency-Key header)", **_ID
    )
    validity_seconds: int | None = prop(
        None, description="Do not send after this many seconds", minimum=1, maximum=259_200
    )
    metadata: dict[str, Any] = prop(
        factory=dict, description="A small JSON object echoed in webhooks (≤ 2 KB)"
    )
    priority: int = prop(0, description="Higher is sent first", minimum=-100, maximum=100)


@frozen
class BatchBody:
    """Up to 1,000 messages; each succeeds or fails on its own unless ``all_or_nothing``."""

    messages: list[SendBody] = prop(min_items=1, max_items=1000)
    all_or_nothing: bool = prop(False, description="Refuse the whole batch if any item fails")


@frozen
class EstimateBody:
    """A message to price and check without sending it."""

    content: str = prop(min_length=1, max_length=2000)
    dlt_template_id: str = prop(**_DLT_ID)
    phone_number: str | None = prop(None, **_PHONE)
    header: str | None = prop(None, min_length=1, max_length=16)


@frozen
class EntityBody:
    """A principal entity (PE ID) from the DLT portal."""

    pe_id: str = prop(**_DLT_ID)
    name: str = prop("", max_length=200)


@frozen
class HeaderBody:
    """A header (sender ID) registered on the DLT portal."""

    sender_id: str = prop(min_length=1, max_length=16, example="ACMEOT")
    category: str = prop(min_length=1, max_length=40, example="transactional")
    entity_id: str | None = prop(None, **_DLT_ID)


@frozen
class TemplateBody:
    """A content template exactly as approved on the DLT portal."""

    template_id: str = prop(**_DLT_ID)
    body: str = prop(min_length=1, max_length=2000, example="Your OTP is {#var#}.")
    category: str = prop(min_length=1, max_length=40, example="transactional")
    headers: list[str] = prop(factory=list, max_items=50)
    entity_id: str | None = prop(None, **_DLT_ID)
    content_type: str = prop("text", max_length=20)
    name: str = prop("", max_length=200)


@frozen
class TemplatePatch:
    """Changes to a template; fields left out stay as they are."""

    body: str | None = prop(None, min_length=1, max_length=2000)
    category: str | None = prop(None, min_length=1, max_length=40)
    headers: list[str] | None = prop(None, max_items=50)
    content_type: str | None = prop(None, max_length=20)
    active: bool | None = None


@frozen
class WebhookBody:
    """Where to send signed status events, and which ones."""

    url: str = prop(min_length=1, max_length=2000, example="https://example.com/hooks/sms")
    events: list[str] = prop(factory=lambda: ["sms.*"], min_items=1, max_items=20)


@frozen
class RotateBody:
    """How long the old secret keeps signing next to the new one."""

    overlap_seconds: int = prop(86_400, minimum=0, maximum=604_800)


@frozen
class ReplayBody:
    """The event to deliver again."""

    event_id: str = prop(min_length=1, max_length=100)


@frozen
class KeyBody:
    """A new API key for the calling tenant."""

    scopes: list[str] = prop(min_items=1, max_items=10)
    mode: Literal["live", "test"] = "live"
    name: str = prop("", max_length=100)
    expires_at: str | None = prop(None, description="ISO 8601 date-time", max_length=40)


# --------------------------------------------------------------------------- queries


@frozen
class MessageQuery:
    """Filters for listing messages (newest first)."""

    status: StatusName | None = None
    phone_number: str | None = prop(None, max_length=32)
    client_message_id: str | None = prop(None, max_length=64)
    dlt_template_id: str | None = prop(None, max_length=30)
    created_from: datetime | None = None
    created_to: datetime | None = None
    cursor: str | None = prop(None, max_length=200)
    limit: int = prop(50, minimum=1, maximum=100)


@frozen
class LedgerQuery:
    """A page of the ledger statement (oldest first)."""

    cursor: str | None = prop(None, max_length=40)
    limit: int = prop(100, minimum=1, maximum=500)


@frozen
class DeliveriesQuery:
    """The webhook outbox, newest first."""

    state: Literal["pending", "delivered", "dead"] | None = None
    limit: int = prop(100, minimum=1, maximum=500)


@frozen
class AttemptsQuery:
    """The attempts at one delivery."""

    event_id: str = prop(min_length=1, max_length=100)


@frozen
class ImportQuery:
    """Options of a DLT CSV import."""

    pe_id: str | None = prop(None, max_length=30)


# --------------------------------------------------------------------------- responses


@frozen
class ErrorInfo:
    """Why something failed: a stable code, a message and the field it is about."""

    code: str
    message: str
    field: str | None = None


@frozen
class ErrorOut(ErrorInfo):
    """An error answer: code, message, field, and the extras some errors carry."""

    #: Machine-readable particulars (e.g. ``limit_bytes``, ``available_paise``, ``allow``).
    detail: dict[str, Any] | None = None
    #: Seconds to wait; only on ``rate_limited``.
    retry_after: int | None = None


@frozen
class ErrorBody:
    """The error envelope."""

    error: ErrorOut


@frozen
class Accepted:
    """A message accepted (or, on a replay, the original)."""

    id: str
    status: str
    client_message_id: str | None
    segments: int
    encoding: str
    created_at: datetime
    price_paise: int


@frozen
class BatchItemOut:
    """One batch item's outcome, by its index in the request."""

    index: int
    data: Accepted | None = None
    error: ErrorInfo | None = None
    replayed: bool = False


@frozen
class BatchOut:
    """Every item's outcome, in request order."""

    accepted: int
    rejected: int
    items: list[BatchItemOut]


@frozen
class EstimateOut:
    """What a message would cost and whether DLT would pass it."""

    segments: int
    encoding: str
    units: int
    price_paise: int
    dlt_ok: bool
    dlt_error: ErrorInfo | None = None


@frozen
class FailureOut:
    """Why a message ended anywhere but delivered."""

    code: str
    reason: str
    carrier_code: str | None = None


@frozen
class PartOut:
    """One segment's submission and receipt."""

    index: int
    status: str
    carrier_message_id: str | None
    route: str | None
    submitted_at: datetime | None
    final_at: datetime | None
    error_code: str | None


@frozen
class TimelineOut:
    """One immutable record of what happened to the message."""

    sequence: int
    at: datetime
    kind: str
    status: str
    detail: dict[str, Any]


@frozen
class MessageOut:
    """A message with its parts and, when asked for one message, its timeline."""

    id: str
    status: str
    client_message_id: str | None
    phone_number: str
    header: str
    dlt_template_id: str
    category: str
    segments: int
    encoding: str
    price_paise: int
    priority: int
    sandbox: bool
    route: str | None
    attempts: int
    possible_duplicate: bool
    error: FailureOut | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    parts: list[PartOut]
    timeline: list[TimelineOut] | None = None


@frozen
class BalanceOut:
    """The calling tenant's credits in paise."""

    available_paise: int
    posted_paise: int
    reserved_paise: int


@frozen
class LedgerLineOut:
    """A transfer as it touched the tenant's account, with the balance after it."""

    id: str
    kind: str
    amount_paise: int
    delta_paise: int
    balance_after_paise: int
    created_at: datetime
    message_id: str | None
    reference: str | None


@frozen
class EntityOut:
    """A registered principal entity."""

    pe_id: str
    name: str


@frozen
class HeaderOut:
    """A registered header."""

    sender_id: str
    entity_id: str
    category: str
    active: bool


@frozen
class TemplateOut:
    """A registered template."""

    template_id: str
    entity_id: str
    category: str
    body: str
    content_type: str
    headers: list[str]
    active: bool
    name: str
    warnings: list[str] | None = None
    version: int | None = None


@frozen
class ImportOut:
    """What a DLT CSV import changed."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    entities_created: list[str]
    headers_created: list[str]
    headers_updated: list[str]
    warnings: list[str]
    skipped: list[str]


@frozen
class WebhookOut:
    """A webhook endpoint; ``secret`` only in the answer that created or rotated it."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: str | None = None


@frozen
class DeliveryOut:
    """One event due to one endpoint."""

    event_id: str
    endpoint_id: str
    event_type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None


@frozen
class AttemptOut:
    """One HTTP attempt at a delivery."""

    number: int
    at: datetime
    status: int | None
    latency_ms: int
    error: str | None
    response_snippet: str | None


@frozen
class ReplayOut:
    """Whether the delivery was queued again."""

    event_id: str
    endpoint_id: str
    queued: bool


@frozen
class KeyOut:
    """An API key (never its secret, except ``key`` in the answer that created it)."""

    id: str
    prefix: str
    mode: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    key: str | None = None


@frozen
class HealthOut:
    """Liveness or readiness, with what was checked."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
