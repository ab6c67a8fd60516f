"""The relational schema: SQLAlchemy Core tables on one ``MetaData``.

This module is the schema's source of truth; ``migrations/versions`` must
build exactly this (``tests/integration/test_migrations.py`` compares them).
Design choices, each for a reason:

- **Identity lives in unique constraints**, never in application checks, so
  two processes racing to create the same thing meet in the database: tenant,
  API key, (tenant, PE ID), (tenant, sender ID), (tenant, template ID),
  message id, (tenant, client_message_id), transfer id, one settlement per
  reservation / one refund per post (``uq_ledger_transfers_pending_id``, see
  there) and one dispatch row per message.
- **No foreign keys across aggregates** (a key's or a message's tenant, a
  dispatch row's message): the ports document which errors each write may
  raise and "unknown tenant" is not among them; the service checks tenants.
  Rows that only exist as part of their aggregate (message parts and events,
  template versions) do reference their parent.
- **Times are aware UTC** in and out (:class:`UtcDateTime`), with microseconds
  on both SQLite and PostgreSQL.
- **Money is integer paise** in 64-bit columns: running totals outgrow 32 bits.
- **Few B-trees per write**: on SQLite a commit costs a few microseconds per
  B-tree page it dirties, and the accept path touches every table. Tables
  keyed by text are ``WITHOUT ROWID`` (the primary key *is* the table, not a
  second index beside it), and indexes on columns that are mostly NULL
  (carrier ids of pending parts, pending ids of reservations, absent
  client_message_ids) are partial, so those rows skip them.
- **Receipts are deduplicated by their key**: the inbox's primary key is
  (route, carrier id, outcome), so a redelivered receipt is a skipped insert
  even when two workers ingest copies at once.
- **Routes are one JSON document each**: read whole at startup, never queried
  inside; only ``enabled`` is a column, for listing what runs.
- **Webhook outbox rows are keyed by (event, endpoint)**: writing an event
  twice (a retried transaction) is a skipped insert, and workers claim due
  rows with leases, as dispatch does.
- **Strings are unbounded** (``VARCHAR`` without length): the domain validates
  lengths, and a second, different limit here would only surface as a
  driver error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "NAMING_CONVENTION",
    "UtcDateTime",
    "api_keys",
    "dispatch_queue",
    "dlt_entities",
    "dlt_headers",
    "dlt_template_versions",
    "dlt_templates",
    "dlt_whitelist",
    "ledger_accounts",
    "ledger_transfers",
    "message_events",
    "message_parts",
    "messages",
    "metadata",
    "receipts",
    "routes",
    "tenants",
    "webhook_attempts",
    "webhook_endpoints",
    "webhook_outbox",
    "worker_heartbeats",
]

#: Deterministic constraint names: migrations and ``compare_metadata`` agree on
#: them across dialects, and an error names the rule that was broken.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: Table options for text-keyed tables (see the module docstring); PostgreSQL ignores them.
_KEYED: Final[dict[str, Any]] = {"sqlite_with_rowid": False}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC ``datetime`` in and out, to the microsecond, on SQLite and PostgreSQL.

    PostgreSQL stores ``timestamptz`` and hands back the session's zone, which
    we convert to UTC. SQLite has no zone type: we store the UTC wall time as
    SQLAlchemy's fixed-width text (``YYYY-MM-DD HH:MM:SS.ffffff``), which sorts
    and compares in SQL exactly as the instants do, and attach UTC on the way
    out. Naive values are refused: a naive time means something different on
    every host.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC (naive UTC on SQLite); refuse naive input."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to storage; pass an aware UTC datetime")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the backend handed over."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        """The Python type of the column's values."""
        return datetime


def _id(name: str, **kwargs: Any) -> Column[str]:
    return Column(name, String, nullable=False, **kwargs)


def _paise(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False)


# --------------------------------------------------------------------------- tenants and keys

tenants = Table(
    "tenants",
    metadata,
    _id("id"),
    Column("name", String, nullable=False),
    Column("status", String, nullable=False),
    Column("billing_point", String, nullable=False),
    # RateCard.to_dict(): read whole, never queried inside.
    Column("rates", JSON, nullable=False),
    Column("dlt_version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("id"),
    **_KEYED,
)

api_keys = Table(
    "api_keys",
    metadata,
    _id("id"),
    _id("tenant_id"),
    Column("mode", String, nullable=False),
    Column("secret_hash", String, nullable=False),
    # Sorted list of scope names.
    Column("scopes", JSON, nullable=False),
    Column("name", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    PrimaryKeyConstraint("id"),
    Index(None, "tenant_id", "created_at"),
    **_KEYED,
)

# --------------------------------------------------------------------------- DLT registry

dlt_entities = Table(
    "dlt_entities",
    metadata,
    _id("tenant_id"),
    _id("pe_id"),
    Column("name", String, nullable=False),
    PrimaryKeyConstraint("tenant_id", "pe_id"),
    **_KEYED,
)

dlt_headers = Table(
    "dlt_headers",
    metadata,
    _id("tenant_id"),
    _id("sender_id"),
    _id("entity_id"),
    Column("category", String, nullable=False),
    Column("active", Boolean, nullable=False),
    PrimaryKeyConstraint("tenant_id", "sender_id"),
    **_KEYED,
)

dlt_templates = Table(
    "dlt_templates",
    metadata,
    _id("tenant_id"),
    _id("template_id"),
    _id("entity_id"),
    Column("category", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("content_type", String, nullable=False),
    # Sorted list of linked sender IDs.
    Column("headers", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("name", String, nullable=False),
    # The newest history version; bumped in the UPDATE itself, so concurrent
    # updates queue on the row lock and never pick the same number.
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "template_id"),
    **_KEYED,
)

dlt_template_versions = Table(
    "dlt_template_versions",
    metadata,
    _id("tenant_id"),
    _id("template_id"),
    Column("version", Integer, nullable=False),
    _id("entity_id"),
    Column("category", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("content_type", String, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("name", String, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "template_id", "version"),
    ForeignKeyConstraint(
        ["tenant_id", "template_id"],
        ["dlt_templates.tenant_id", "dlt_templates.template_id"],
        ondelete="CASCADE",
    ),
    **_KEYED,
)

dlt_whitelist = Table(
    "dlt_whitelist",
    metadata,
    _id("tenant_id"),
    # "url" or "callback".
    _id("kind"),
    _id("value"),
    PrimaryKeyConstraint("tenant_id", "kind", "value"),
    **_KEYED,
)

# --------------------------------------------------------------------------- messages

messages = Table(
    "messages",
    metadata,
    _id("id"),
    _id("tenant_id"),
    Column("client_message_id", String),
    # SHA-256 of the request (domain.idempotency.fingerprint), for replays.
    Column("fingerprint", String),
    Column("phone", String, nullable=False),
    Column("content", Text, nullable=False),
    Column("template_id", String, nullable=False),
    Column("header", String, nullable=False),
    Column("entity_id", String, nullable=False),
    Column("category", String, nullable=False),
    Column("encoding", String, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("route", String),
    Column("possible_duplicate", Boolean, nullable=False),
    # MessageError, flattened: NULL code means no error.
    Column("error_code", String),
    Column("error_reason", String),
    Column("error_carrier_code", String),
    Column("sandbox", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    _paise("price_paise"),
    Column("metadata", JSON, nullable=False),
    PrimaryKeyConstraint("id"),
    # Reports and reconciliation list a tenant's messages by time.
    Index(None, "tenant_id", "created_at"),
    # One number's recent messages: the per-number limit on the accept path,
    # and listings filtered by phone.
    Index(None, "tenant_id", "phone", "created_at"),
    **_KEYED,
)

message_parts = Table(
    "message_parts",
    metadata,
    _id("message_id"),
    Column("idx", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("carrier_message_id", String),
    Column("submitted_at", UtcDateTime),
    Column("final_at", UtcDateTime),
    Column("error_code", String),
    Column("outcome_unknown", Boolean, nullable=False),
    # Receipts match on (route, carrier id): two carriers may reuse an id.
    Column("route", String),
    PrimaryKeyConstraint("message_id", "idx"),
    ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
    **_KEYED,
)

message_events = Table(
    "message_events",
    metadata,
    _id("message_id"),
    Column("sequence", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String, nullable=False),
    Column("status", String, nullable=False),
    # Ordered [key, value] pairs: a list keeps the order the domain gave them.
    Column("detail", JSON, nullable=False),
    PrimaryKeyConstraint("message_id", "sequence"),
    ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
    **_KEYED,
)

# --------------------------------------------------------------------------- ledger

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    _id("id"),
    Column("tenant_id", String),
    _paise("debits_pending"),
    _paise("debits_posted"),
    _paise("credits_pending"),
    _paise("credits_posted"),
    PrimaryKeyConstraint("id"),
    **_KEYED,
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    # The order transfers were recorded in, and the cursor of ``transfers()``.
    # ``INTEGER PRIMARY KEY`` on SQLite is the rowid (no extra index).
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    _id("id"),
    Column("kind", String, nullable=False),
    _id("debit_account"),
    _id("credit_account"),
    _paise("amount"),
    _id("tenant_id"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("pending_id", String),
    Column("message_id", String),
    Column("reference", String),
    UniqueConstraint("id"),
    Index(None, "tenant_id", "seq"),
)

# --------------------------------------------------------------------------- dispatch

dispatch_queue = Table(
    "dispatch_queue",
    metadata,
    _id("message_id"),
    _id("tenant_id"),
    Column("due_at", UtcDateTime, nullable=False),
    Column("priority", Integer, nullable=False),
    # Who holds the lease and until when; both NULL while nobody does.
    Column("owner", String),
    Column("lease_expires_at", UtcDateTime),
    PrimaryKeyConstraint("message_id"),
    **_KEYED,
)

# --------------------------------------------------------------------------- routes and receipts

routes = Table(
    "routes",
    metadata,
    _id("name"),
    # Route and Connection fields (password included), read whole.
    Column("config", JSON, nullable=False),
    # Mirrors the route's own flag, so listings need not parse the document.
    Column("enabled", Boolean, nullable=False),
    PrimaryKeyConstraint("name"),
    **_KEYED,
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    _id("owner"),
    Column("kind", String, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("owner"),
    **_KEYED,
)

receipts = Table(
    "receipts",
    metadata,
    _id("route"),
    _id("carrier_message_id"),
    _id("outcome"),
    Column("stat", String, nullable=False),
    Column("error_code", String),
    Column("received_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime),
    # applied, parked or unknown.
    Column("state", String, nullable=False),
    # The part the receipt settled, once applied.
    Column("tenant_id", String),
    Column("message_id", String),
    Column("part_index", Integer),
    PrimaryKeyConstraint("route", "carrier_message_id", "outcome"),
    # expire_parked() and listings by state walk it by time.
    Index(None, "state", "received_at"),
    **_KEYED,
)


# --------------------------------------------------------------------------- webhooks

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id("id"),
    _id("tenant_id"),
    Column("url", String, nullable=False),
    # The event filter: a list of types or patterns, read whole.
    Column("events", JSON, nullable=False),
    # [{"secret", "created_at" (ISO), "retires_at" (ISO or null)}], newest first.
    Column("secrets", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String),
    Column("failing_since", UtcDateTime),
    PrimaryKeyConstraint("id"),
    Index(None, "tenant_id", "created_at"),
    **_KEYED,
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    _id("event_id"),
    _id("endpoint_id"),
    _id("tenant_id"),
    Column("event_type", String, nullable=False),
    # The event body as written; replays resend it unchanged.
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # pending, delivered or dead.
    Column("state", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    # NULL once delivered or dead.
    Column("next_attempt_at", UtcDateTime),
    # Who holds the lease and until when; both NULL while nobody does.
    Column("owner", String),
    Column("lease_expires_at", UtcDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("finished_at", UtcDateTime),
    PrimaryKeyConstraint("event_id", "endpoint_id"),
    # Listings of a tenant's deliveries, newest first.
    Index(None, "tenant_id", "created_at"),
    **_KEYED,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id("event_id"),
    _id("endpoint_id"),
    Column("number", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    # NULL when no response came (timeout, refused...).
    Column("status", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text),
    Column("response_snippet", Text),
    PrimaryKeyConstraint("event_id", "endpoint_id", "number"),
    **_KEYED,
)


def _unique_when_set(name: str, *columns: Column[Any]) -> Index:
    """A unique index over rows where the (last) column is set: NULLs never collide."""
    present = columns[-1].is_not(None)
    return Index(name, *columns, unique=True, sqlite_where=present, postgresql_where=present)


# One idempotency key per tenant; messages sent without one skip the index.
_unique_when_set(
    "uq_messages_tenant_id_client_message_id", messages.c.tenant_id, messages.c.client_message_id
)
# A post or void names the reservation it settles, a refund the post it
# compensates; ids are unique, so one index gives both rules: one settlement
# per reservation and one refund per post.
_unique_when_set("uq_ledger_transfers_pending_id", ledger_transfers.c.pending_id)
# Delivery receipts arrive carrying only the carrier's id; pending parts have none.
_carrier_known = message_parts.c.carrier_message_id.is_not(None)
Index(
    "ix_message_parts_carrier_message_id",
    message_parts.c.carrier_message_id,
    sqlite_where=_carrier_known,
    postgresql_where=_carrier_known,
)
# claim() walks due rows highest priority first, earliest due first: this
# index hands them over in that order, without sorting the whole backlog.
# (depth() scans the queue: it holds only what is waiting, and is a metric.)
Index("ix_dispatch_queue_claim_order", dispatch_queue.c.priority.desc(), dispatch_queue.c.due_at)
# Sent messages still waiting for receipts, oldest first (the receipt-timeout
# sweep); every other status skips the index.
_waiting = messages.c.status == "sent"
Index(
    "ix_messages_sent_updated_at",
    messages.c.updated_at,
    sqlite_where=_waiting,
    postgresql_where=_waiting,
)
# A message's receipts; unmatched receipts have no message and skip the index.
_receipt_matched = receipts.c.message_id.is_not(None)
Index(
    "ix_receipts_message_id",
    receipts.c.message_id,
    sqlite_where=_receipt_matched,
    postgresql_where=_receipt_matched,
)
# claim() walks pending outbox rows earliest due first; delivered and dead rows
# (most of the table, in time) skip the index.
_webhook_pending = webhook_outbox.c.state == "pending"
Index(
    "ix_webhook_outbox_pending_next_attempt_at",
    webhook_outbox.c.next_attempt_at,
    sqlite_where=_webhook_pending,
    postgresql_where=_webhook_pending,
)
