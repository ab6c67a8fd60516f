"""Domain values for the contract tests, and hypothesis strategies that cover every field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from bharatsend_core.domain.dlt import Category, ContentType, Entity, Header, Template
from bharatsend_core.domain.keys import ApiKey, KeyMode, Scope
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    Transfer,
    TransferKind,
    message_transfer_id,
    tenant_account,
)
from bharatsend_core.domain.message import (
    FailureReason,
    Message,
    MessageError,
    Part,
    PartStatus,
    Status,
    TimelineEntry,
)
from bharatsend_core.domain.tenants import BillingPoint, RateCard, Tenant, TenantStatus
from bharatsend_core.ports.storage import UnitOfWork

T0 = datetime(2026, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
PE_ID = "1201159123456789012"
TEMPLATE_ID = "1207161234567890123"


def at(seconds: float) -> datetime:
    """``seconds`` after T0: tests name their instants, nothing reads a clock."""
    return T0 + timedelta(seconds=seconds)


def new_id(prefix: str) -> str:
    """A fresh id: hypothesis examples share one database, so nothing may collide."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# --------------------------------------------------------------------------- values


def tenant(tenant_id: str | None = None, *, created: float = 0, **changes: Any) -> Tenant:
    return Tenant(
        id=tenant_id or new_id("ten"),
        name=changes.pop("name", "Acme Retail"),
        status=changes.pop("status", TenantStatus.ACTIVE),
        created_at=at(created),
        **changes,
    )


def api_key(tenant_id: str, *, created: float = 0, **changes: Any) -> ApiKey:
    fields: dict[str, Any] = {
        "id": new_id("key"),
        "tenant_id": tenant_id,
        "mode": KeyMode.LIVE,
        "secret_hash": "ab" * 32,
        "scopes": frozenset({Scope.SMS_SEND, Scope.SMS_READ}),
        "created_at": at(created),
        "name": "backend",
    }
    fields.update(changes)
    return ApiKey(**fields)


def header(sender_id: str = "ACMEOT", **changes: Any) -> Header:
    return Header(
        sender_id=sender_id,
        entity_id=changes.pop("entity_id", PE_ID),
        category=changes.pop("category", Category.TRANSACTIONAL),
        **changes,
    )


def template(template_id: str = TEMPLATE_ID, **changes: Any) -> Template:
    fields: dict[str, Any] = {
        "template_id": template_id,
        "entity_id": PE_ID,
        "category": Category.TRANSACTIONAL,
        "body": "Your OTP is {#var#}. Valid for 5 minutes.",
        "headers": frozenset({"ACMEOT"}),
    }
    fields.update(changes)
    return Template(**fields)


def entity(pe_id: str = PE_ID, name: str = "Acme Pvt Ltd") -> Entity:
    return Entity(pe_id, name)


def message(
    tenant_id: str,
    *,
    message_id: str | None = None,
    client_message_id: str | None = None,
    segments: int = 1,
    accepted: float = 0,
    **options: Any,
) -> Message:
    return Message.accept(
        id=message_id or new_id("msg"),
        tenant_id=tenant_id,
        phone="+919812345678",
        content="Your OTP is 482913. Valid for 5 minutes.",
        template_id=TEMPLATE_ID,
        header="ACMEOT",
        entity_id=PE_ID,
        category="transactional",
        encoding="gsm7",
        segments=segments,
        now=at(accepted),
        validity=timedelta(minutes=10),
        client_message_id=client_message_id,
        **options,
    )


def top_up(tenant_id: str, amount: int, *, transfer_id: str | None = None) -> Transfer:
    return Transfer(
        id=transfer_id or new_id("top"),
        kind=TransferKind.TOP_UP,
        debit_account=TOPUPS_ACCOUNT,
        credit_account=tenant_account(tenant_id),
        amount=amount,
        tenant_id=tenant_id,
        created_at=T0,
    )


def reserve(tenant_id: str, message_id: str, amount: int) -> Transfer:
    return Transfer(
        id=message_transfer_id(message_id, "reserve"),
        kind=TransferKind.RESERVE,
        debit_account=tenant_account(tenant_id),
        credit_account=REVENUE_ACCOUNT,
        amount=amount,
        tenant_id=tenant_id,
        created_at=T0,
        message_id=message_id,
    )


def settle(
    tenant_id: str, message_id: str, kind: TransferKind, amount: int, *, phase: str | None = None
) -> Transfer:
    """A post or void of the message's reservation, or a refund of its post."""
    refund = kind is TransferKind.REFUND
    return Transfer(
        id=message_transfer_id(message_id, phase or kind.value),
        kind=kind,
        debit_account=REVENUE_ACCOUNT if refund else tenant_account(tenant_id),
        credit_account=tenant_account(tenant_id) if refund else REVENUE_ACCOUNT,
        amount=amount,
        tenant_id=tenant_id,
        created_at=at(60),
        pending_id=message_transfer_id(message_id, "post" if refund else "reserve"),
        message_id=message_id,
    )


def funded_tenant(uow: UnitOfWork, paise: int, tenant_id: str | None = None) -> str:
    """A tenant with a ledger account holding ``paise`` (posted), inside ``uow``."""
    tenant_id = tenant_id or new_id("ten")
    uow.ledger.ensure_account(tenant_account(tenant_id), tenant_id)
    if paise:
        uow.ledger.record(top_up(tenant_id, paise))
    return tenant_id


# --------------------------------------------------------------------------- strategies

# Storable text: UTF-8 (no lone surrogates, which the domain refuses too) and
# no NUL, which PostgreSQL text cannot hold.
_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
_TEXT = st.text(_CHARS, max_size=24)
_SOME_TEXT = st.text(_CHARS, min_size=1, max_size=24)
_CODE = st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,6}){0,2}", fullmatch=True)
_ZONES = st.sampled_from([UTC, IST, timezone(timedelta(hours=-7))])
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_ZONES
)
_JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
json_values = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_DETAIL_VALUE = st.none() | st.integers(min_value=-(2**53), max_value=2**53) | _TEXT


@st.composite
def parts(draw: st.DrawFn, index: int) -> Part:
    return Part(
        index=index,
        status=draw(st.sampled_from(PartStatus)),
        carrier_message_id=draw(st.none() | _SOME_TEXT),
        submitted_at=draw(st.none() | times),
        final_at=draw(st.none() | times),
        error_code=draw(st.none() | _TEXT),
        outcome_unknown=draw(st.booleans()),
        route=draw(st.none() | _SOME_TEXT),
    )


@st.composite
def timelines(draw: st.DrawFn) -> tuple[TimelineEntry, ...]:
    size = draw(st.integers(min_value=0, max_value=5))
    return tuple(
        TimelineEntry(
            sequence=i,
            at=draw(times),
            kind=draw(_CODE),
            status=draw(st.sampled_from(Status)),
            detail=tuple(draw(st.lists(st.tuples(_TEXT, _DETAIL_VALUE), max_size=4))),
        )
        for i in range(size)
    )


@st.composite
def messages(draw: st.DrawFn, tenant_id: str) -> Message:
    """Any message the domain can build: every field drawn, parts and timeline included."""
    segments = draw(st.integers(min_value=1, max_value=4))
    error = draw(
        st.none()
        | st.builds(
            MessageError,
            code=_CODE,
            reason=st.sampled_from(FailureReason),
            carrier_code=st.none() | _TEXT,
        )
    )
    return Message(
        id=new_id("msg"),
        tenant_id=tenant_id,
        client_message_id=draw(st.none() | st.just(new_id("c"))),
        phone=draw(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)),
        content=draw(st.text(_CHARS, max_size=400)),
        template_id=draw(_TEXT),
        header=draw(_TEXT),
        entity_id=draw(_TEXT),
        category=draw(_TEXT),
        encoding=draw(st.sampled_from(["gsm7", "ucs2"])),
        segments=segments,
        parts=tuple(draw(parts(i)) for i in range(segments)),
        status=draw(st.sampled_from(Status)),
        attempts=draw(st.integers(min_value=0, max_value=50)),
        next_attempt_at=draw(st.none() | times),
        expires_at=draw(times),
        created_at=draw(times),
        updated_at=draw(times),
        route=draw(st.none() | _TEXT),
        possible_duplicate=draw(st.booleans()),
        error=error,
        sandbox=draw(st.booleans()),
        priority=draw(st.integers(min_value=-1000, max_value=1000)),
        price_paise=draw(st.integers(min_value=0, max_value=10**12)),
        metadata=draw(st.dictionaries(_TEXT, json_values, max_size=4)),
        timeline=draw(timelines()),
    )


rate_cards = st.builds(
    RateCard,
    default=st.integers(min_value=0, max_value=100_000),
    by_category=st.dictionaries(
        st.sampled_from(Category), st.integers(min_value=0, max_value=100_000)
    ),
    by_route=st.dictionaries(
        st.tuples(st.sampled_from(Category), _SOME_TEXT),
        st.integers(min_value=0, max_value=100_000),
    ),
)

tenants = st.builds(
    Tenant,
    id=st.builds(new_id, st.just("ten")),
    name=st.text(_CHARS, min_size=1, max_size=60).filter(str.strip),
    status=st.sampled_from(TenantStatus),
    created_at=times,
    billing_point=st.sampled_from(BillingPoint),
    rates=rate_cards,
    dlt_version=st.integers(min_value=0, max_value=10**6),
)

api_keys = st.builds(
    ApiKey,
    id=st.builds(new_id, st.just("key")),
    tenant_id=st.builds(new_id, st.just("ten")),
    mode=st.sampled_from(KeyMode),
    secret_hash=st.text("0123456789abcdef", min_size=64, max_size=64),
    scopes=st.frozensets(st.sampled_from(Scope), min_size=1),
    created_at=times,
    name=st.text(_CHARS, max_size=40),
    expires_at=st.none() | times,
    revoked_at=st.none() | times,
    last_used_at=st.none() | times,
)

templates = st.builds(
    Template,
    template_id=st.from_regex(r"[0-9]{1,30}", fullmatch=True),
    entity_id=st.from_regex(r"[0-9]{1,30}", fullmatch=True),
    category=st.sampled_from(Category),
    body=_SOME_TEXT,
    content_type=st.sampled_from(ContentType),
    headers=st.frozensets(st.from_regex(r"[A-Za-z]{6}", fullmatch=True), max_size=4),
    active=st.booleans(),
    name=_TEXT,
)
