"""Storage ports: one unit of work per use case, with a repository per aggregate.

Contract shared by every adapter (memory, SQLite, PostgreSQL), proven by
``tests/contract``:

- A unit of work is one transaction. Nothing is visible to others before
  ``commit()``; leaving the ``with`` block without committing rolls back.
  Repositories never commit on their own.
- Identity is guarded by unique constraints in storage, not by application
  checks: a duplicate id raises ``AlreadyExists`` (or
  ``DuplicateClientMessageId`` for a reused client_message_id) at the write.
  After such an error the unit of work must be rolled back.
- Every query is scoped by tenant where the data belongs to one.
- A database that cannot be reached, or that fails mid-transaction, raises
  ``StorageUnavailable``: nothing was committed, and the call may be retried.
- Writes raise only the errors documented on each method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from attrs import frozen

from bharatsend_core.domain.dlt import Entity, Header, Template
from bharatsend_core.domain.keys import ApiKey
from bharatsend_core.domain.ledger import AccountBalance, Transfer
from bharatsend_core.domain.message import Message, ReceiptOutcome, Status
from bharatsend_core.domain.reports import ReportInput
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.domain.webhooks import WebhookEndpoint

__all__ = [
    "ApiKeyRepository",
    "DeliveryAttempt",
    "DispatchClaim",
    "DispatchRepository",
    "DltRepository",
    "DuplicateClientMessageId",
    "Heartbeat",
    "HeartbeatRepository",
    "LedgerRepository",
    "MessagePage",
    "MessageQuery",
    "MessageRepository",
    "MessageSummary",
    "OutboxEntry",
    "OutboxState",
    "ReceiptRepository",
    "ReceiptState",
    "RouteRepository",
    "Storage",
    "StoredReceipt",
    "TemplateVersion",
    "TenantRepository",
    "UnitOfWork",
    "WebhookRepository",
    "WhitelistKind",
]

WhitelistKind = Literal["url", "callback"]

#: Where a stored delivery receipt is: applied to its part; parked until its
#: submit response names the carrier id; unknown (no part ever claimed it,
#: kept for inspection).
ReceiptState = Literal["applied", "parked", "unknown"]


class DuplicateClientMessageId(Exception):
    """Another message of the tenant already has this client_message_id (a unique constraint).

    Raised by ``MessageRepository.add``; the service rolls back and answers the
    request as an idempotent replay or a conflict.
    """


@frozen
class TemplateVersion:
    """One version of a template in its history: every update appends one."""

    version: int
    template: Template
    changed_at: datetime


@frozen
class MessageSummary:
    """What reconciliation needs of a message."""

    id: str
    status: Status
    price_paise: int
    sandbox: bool


@frozen(kw_only=True)
class MessageQuery:
    """Which of a tenant's messages to list; every filter given must match.

    Values are taken as given: the facade validates and normalises them
    (a known status, the phone in E.164 as stored, aware datetimes).
    """

    status: str | None = None
    #: E.164, as stored (``+919876543210``).
    phone: str | None = None
    client_message_id: str | None = None
    template_id: str | None = None
    #: Created at or after (inclusive).
    created_from: datetime | None = None
    #: Created before (exclusive).
    created_to: datetime | None = None
    #: Keyset cursor: (created_at, id) of the last message seen; the page
    #: continues strictly after it in newest-first order.
    after: tuple[datetime, str] | None = None
    limit: int = 50


@frozen
class MessagePage:
    """One page of a listing, newest first; ``has_more`` when messages follow it."""

    messages: tuple[Message, ...]
    has_more: bool


@frozen
class DispatchClaim:
    """A message a dispatcher holds the lease on until ``lease_expires_at``."""

    message_id: str
    tenant_id: str
    owner: str
    lease_expires_at: datetime
    due_at: datetime
    priority: int


#: Where one event's delivery to one endpoint is: waiting (or retrying), done, or given up.
OutboxState = Literal["pending", "delivered", "dead"]


@frozen
class OutboxEntry:
    """One event due to one endpoint: written with the state change, delivered by a worker.

    Keyed by (event_id, endpoint_id): writing it twice is a no-op. The payload
    is the event body as it was when written; replays resend it unchanged.
    """

    event_id: str
    endpoint_id: str
    tenant_id: str
    event_type: str
    payload: Mapping[str, Any]
    created_at: datetime
    state: OutboxState = "pending"
    #: Attempts made so far.
    attempts: int = 0
    #: When the next attempt is due; None once delivered or dead.
    next_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    finished_at: datetime | None = None


@frozen
class DeliveryAttempt:
    """One HTTP attempt at delivering an event to an endpoint, as logged for inspection."""

    event_id: str
    endpoint_id: str
    number: int
    at: datetime
    #: The HTTP status, or None when no response came (timeout, refused, TLS...).
    status: int | None
    latency_ms: int
    error: str | None = None
    #: The first bytes of the response body, decoded leniently (at most 512 chars).
    response_snippet: str | None = None


@frozen
class StoredReceipt:
    """One delivery receipt in the inbox, deduplicated on (route, carrier id, outcome).

    Never holds the receipt text (it may quote the message): only parsed fields.
    """

    route: str
    #: The carrier's id in the route's canonical spelling (``domain.receipts``).
    carrier_message_id: str
    outcome: ReceiptOutcome
    #: The raw ``stat`` (``DELIVRD``, ``UNDELIV``...).
    stat: str
    error_code: str | None
    received_at: datetime
    state: ReceiptState
    #: The carrier's own completion time, if the receipt said.
    done_at: datetime | None = None
    #: Set once applied: the part the receipt settled.
    tenant_id: str | None = None
    message_id: str | None = None
    part_index: int | None = None


class TenantRepository(Protocol):
    """Tenants."""

    def add(self, tenant: Tenant) -> None:
        """Insert; ``AlreadyExists`` if the id is taken."""
        ...

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        ...

    def update(self, tenant: Tenant) -> None:
        """Replace name, status, billing point, rates; ``TenantNotFound`` if missing."""
        ...

    def bump_dlt_version(self, tenant_id: str) -> int:
        """Increment and return the tenant's DLT registry version; ``TenantNotFound`` if missing."""
        ...

    def list(self) -> Sequence[Tenant]:
        """Every tenant, oldest first."""
        ...


class ApiKeyRepository(Protocol):
    """API keys (hashes only)."""

    def add(self, key: ApiKey) -> None:
        """Insert; ``AlreadyExists`` if the key id is taken."""
        ...

    def get(self, key_id: str) -> ApiKey | None:
        """One indexed lookup by the public key id, across tenants."""
        ...

    def list(self, tenant_id: str) -> Sequence[ApiKey]:
        """The tenant's keys, oldest first."""
        ...

    def update(self, key: ApiKey) -> None:
        """Replace revoked_at, expires_at, last_used_at, name; ``ApiKeyNotFound`` if missing."""
        ...


class DltRepository(Protocol):
    """One tenant's DLT registrations and whitelists."""

    def add_entity(self, tenant_id: str, entity: Entity) -> None:
        """Insert; ``AlreadyExists`` if the tenant already has this PE ID."""
        ...

    def get_entity(self, tenant_id: str, pe_id: str) -> Entity | None:
        """The entity, or None."""
        ...

    def list_entities(self, tenant_id: str) -> Sequence[Entity]:
        """Every entity of the tenant, by PE ID."""
        ...

    def add_header(self, tenant_id: str, header: Header) -> None:
        """Insert; ``AlreadyExists`` if the tenant already has this sender ID."""
        ...

    def update_header(self, tenant_id: str, header: Header) -> None:
        """Replace; ``DltRecordNotFound`` if missing."""
        ...

    def get_header(self, tenant_id: str, sender_id: str) -> Header | None:
        """The header (case-sensitive), or None."""
        ...

    def list_headers(self, tenant_id: str) -> Sequence[Header]:
        """Every header of the tenant, by sender ID."""
        ...

    def add_template(self, tenant_id: str, template: Template, at: datetime) -> None:
        """Insert as version 1; ``AlreadyExists`` if the tenant already has this template ID."""
        ...

    def update_template(self, tenant_id: str, template: Template, at: datetime) -> int:
        """Replace and append a history version; return its number. ``DltRecordNotFound``."""
        ...

    def get_template(self, tenant_id: str, template_id: str) -> Template | None:
        """The current version, or None."""
        ...

    def list_templates(self, tenant_id: str) -> Sequence[Template]:
        """Every template of the tenant (active or not), by template ID."""
        ...

    def template_history(self, tenant_id: str, template_id: str) -> Sequence[TemplateVersion]:
        """Every version, oldest first (empty if unknown)."""
        ...

    def add_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Add an entry; False if it was already there."""
        ...

    def remove_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Remove an entry; False if it was not there."""
        ...

    def list_whitelist(self, tenant_id: str, kind: WhitelistKind) -> Sequence[str]:
        """The entries, sorted."""
        ...


class MessageRepository(Protocol):
    """Messages with their parts and timeline."""

    def add(self, message: Message, *, fingerprint: str | None) -> None:
        """Insert message, parts and timeline.

        ``DuplicateClientMessageId`` if the tenant already has the
        client_message_id; ``AlreadyExists`` if the message id is taken.
        """
        ...

    def add_many(self, items: Sequence[tuple[Message, str | None]]) -> None:
        """Insert several in as few round trips as the store allows; same errors as ``add``."""
        ...

    def get(self, tenant_id: str, message_id: str) -> Message | None:
        """The message if it belongs to the tenant, else None (never another tenant's)."""
        ...

    def find_by_client_id(
        self, tenant_id: str, client_message_id: str
    ) -> tuple[Message, str | None] | None:
        """The message with this client_message_id and its request fingerprint, or None."""
        ...

    def find_by_client_ids(
        self, tenant_id: str, client_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, str | None]]:
        """The tenant's messages having any of these client_message_ids, with fingerprints.

        Keyed by client_message_id; ids nobody used are absent. One query for
        a whole batch, however many ids it names.
        """
        ...

    def update(self, message: Message) -> None:
        """Persist a message after ``apply``: what ``apply`` changes, and new timeline entries.

        That is status, attempts, next_attempt_at, updated_at, route,
        possible_duplicate, error and the parts; what was accepted (content,
        DLT ids, price, expiry, metadata...) is fixed at ``add``. The
        timeline is append-only: stored entries are never rewritten.
        ``MessageNotFound`` if missing.
        """
        ...

    def summaries(self, tenant_id: str) -> Sequence[MessageSummary]:
        """Status and price of every message of the tenant (reconciliation)."""
        ...

    def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        """The tenant's messages matching ``query``, newest first (created_at, then id, DESC).

        Only the tenant's messages, ever. Reads ``limit + 1`` rows to tell
        ``has_more``, then loads the page's messages whole (parts and
        timeline) in a few queries.
        """
        ...

    def count_recent(
        self, tenant_id: str, phone: str, categories: frozenset[str], since: datetime
    ) -> tuple[int, datetime | None]:
        """How many of the tenant's messages to ``phone`` in ``categories`` were created at or
        after ``since``, and the oldest one's created_at (None when there are none).

        On the accept path (the per-number limit): one indexed query.
        """
        ...

    def count_recent_many(
        self, tenant_id: str, phones: Sequence[str], categories: frozenset[str], since: datetime
    ) -> Mapping[str, tuple[int, datetime | None]]:
        """``count_recent`` for several numbers in one query; numbers with none are absent."""
        ...

    def report_rows(
        self,
        since: datetime,
        until: datetime,
        tenant_id: str | None = None,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 5000,
    ) -> Sequence[ReportInput]:
        """Report columns of messages created in [since, until), of one tenant or all.

        Oldest first (created_at, then id); ``after`` is the (created_at, id)
        of the last row of the previous page. Never loads content, parts or
        timelines, so a report pages through a long period cheaply.
        """
        ...

    def get_many(self, ids: Sequence[tuple[str, str]]) -> Mapping[str, Message]:
        """Messages by (tenant_id, message_id), keyed by message id; missing ones are absent.

        A dispatch worker loads a claimed batch with it in a few queries.
        """
        ...

    def update_many(
        self, messages: Sequence[Message], *, expected_events: Mapping[str, int] | None = None
    ) -> None:
        """``update`` for several messages in as few round trips as the store allows.

        ``expected_events`` maps a message id to the number of timeline
        entries stored when it was read; if the store holds another number,
        someone else changed the message in between and ``ConcurrentUpdate``
        is raised (the caller rolls back, reads again and retries). This is
        how workers that read without locking never lose an update.
        """
        ...

    def awaiting_receipts(self, sent_before: datetime, limit: int) -> Sequence[Message]:
        """Up to ``limit`` messages ``sent`` (waiting for receipts) since before the instant.

        Oldest first, across tenants: the receipt-timeout sweep reads them.
        """
        ...

    def find_by_carrier_ids(
        self, route: str, carrier_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, int]]:
        """The messages whose parts were submitted on ``route`` with these carrier ids.

        Keyed by carrier id, each with the index of the part that has it;
        ids no part has are absent. Across tenants: a receipt names only the
        carrier's id.
        """
        ...


class RouteRepository(Protocol):
    """Carrier routes (shared by every tenant)."""

    def add(self, config: RouteConfig) -> None:
        """Insert; ``AlreadyExists`` if the name is taken."""
        ...

    def get(self, name: str) -> RouteConfig | None:
        """The route, or None."""
        ...

    def list(self) -> Sequence[RouteConfig]:
        """Every route, by name."""
        ...

    def update(self, config: RouteConfig) -> None:
        """Replace; ``RouteNotFound`` if missing."""
        ...


@frozen
class Heartbeat:
    """A running worker's sign of life: who, what, since when, last seen when."""

    #: The worker's unique name (``host:pid:random``).
    owner: str
    #: ``worker`` (dispatch, receipts, maybe webhooks) or ``webhook-worker``.
    kind: str
    started_at: datetime
    seen_at: datetime


class HeartbeatRepository(Protocol):
    """Workers' heartbeats, so readiness checks and operators can see who is alive."""

    def beat(self, heartbeat: Heartbeat) -> None:
        """Insert or refresh the heartbeat of ``heartbeat.owner``."""
        ...

    def list(self) -> Sequence[Heartbeat]:
        """Every heartbeat, most recently seen first."""
        ...

    def remove(self, owner: str) -> None:
        """Forget a worker (it stopped cleanly); no error if unknown."""
        ...

    def prune(self, before: datetime) -> int:
        """Forget workers not seen since ``before``; how many were removed."""
        ...


class ReceiptRepository(Protocol):
    """The delivery-receipt inbox."""

    def add(self, receipt: StoredReceipt) -> bool:
        """Store a receipt; False (and nothing written) when (route, carrier id, outcome) exists.

        The unique key makes a redelivered receipt a no-op even when two
        workers ingest copies at once.
        """
        ...

    def add_many(self, receipts: Sequence[StoredReceipt]) -> Sequence[bool]:
        """``add`` for a batch, in order, in as few statements as the adapter can.

        One flag per receipt: True when it was stored. A key already stored,
        or given earlier in the same batch, is False and writes nothing.
        """
        ...

    def parked(self, route: str, carrier_message_ids: Sequence[str]) -> Sequence[StoredReceipt]:
        """Parked receipts of ``route`` for these carrier ids, oldest first."""
        ...

    def resolve(
        self,
        receipt: StoredReceipt,
        *,
        state: ReceiptState,
        tenant_id: str | None = None,
        message_id: str | None = None,
        part_index: int | None = None,
    ) -> None:
        """Move a stored receipt (found by route, carrier id, outcome) to ``state``."""
        ...

    def expire_parked(self, received_before: datetime) -> int:
        """Mark parked receipts received before the instant ``unknown``; how many."""
        ...

    def list(
        self,
        *,
        state: ReceiptState | None = None,
        message_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[StoredReceipt]:
        """Receipts, newest first, filtered by state and/or message."""
        ...


class LedgerRepository(Protocol):
    """Accounts and immutable transfers; the balance rule is enforced here, in the transaction."""

    def ensure_account(self, account_id: str, tenant_id: str | None) -> None:
        """Create the account with zero totals if it does not exist."""
        ...

    def record(self, transfer: Transfer) -> Transfer:
        """Apply a transfer atomically with its balance effects; return what is stored.

        Idempotent: a transfer whose id exists with equal fields returns the
        stored one and changes nothing. Errors: ``TransferConflict`` (same id,
        different fields; a post/void/refund that does not fit what it settles,
        or a reservation already settled; an unknown account),
        ``InsufficientCredits`` (a tenant account would overdraw). Safe under
        concurrency: two transactions can never both spend the same paise.
        """
        ...

    def reserve_many(self, transfers: Sequence[Transfer]) -> None:
        """Record several new reservations at once (a batch of accepted messages).

        All or nothing: ``InsufficientCredits`` if an account cannot cover the
        sum of its reservations, ``TransferConflict`` if a transfer is not a
        reserve or its id is already taken (no idempotent replay here: the
        caller knows its messages are new). After either error the unit of
        work must be rolled back. Each account's guarded update runs once
        with the summed amount, so a batch costs a few statements, not one
        per message.
        """
        ...

    def get(self, transfer_id: str) -> Transfer | None:
        """The transfer, or None."""
        ...

    def get_many(self, transfer_ids: Sequence[str]) -> Mapping[str, Transfer]:
        """The transfers with these ids, keyed by id; unknown ids are absent (few queries)."""
        ...

    def settle_many(
        self, transfers: Sequence[Transfer], *, known: Mapping[str, Transfer] | None = None
    ) -> None:
        """Record several new posts, voids and refunds at once (a dispatch or receipt batch).

        Each names the stored transfer it settles in ``pending_id``. All or
        nothing: ``TransferConflict`` if a transfer is a reservation, its id
        is taken, what it settles is missing or already settled, or the
        amounts do not fit. After an error the unit of work must be rolled
        back. The balance effects run as one guarded update per account.
        ``known`` may hold stored transfers the caller read already (by id);
        transfers never change, so those are not read again.
        """
        ...

    def settlement_of(self, reservation_id: str) -> Transfer | None:
        """The post or void that settled a reservation, or None while it is pending."""
        ...

    def balance(self, account_id: str) -> AccountBalance:
        """The account's totals (all zero for an unknown account)."""
        ...

    def balances(self) -> Sequence[AccountBalance]:
        """Every account's totals."""
        ...

    def transfers(
        self,
        *,
        account_id: str | None = None,
        tenant_id: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Sequence[tuple[int, Transfer]]:
        """Transfers in the order they were recorded, each with its sequence number (a cursor)."""
        ...


class DispatchRepository(Protocol):
    """The dispatch queue: one row per message waiting to be submitted, claimed with leases."""

    def enqueue(
        self,
        message_id: str,
        tenant_id: str,
        due_at: datetime,
        priority: int,
        *,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """Add a row; ``AlreadyExists`` if the message is already queued.

        With ``owner`` and ``lease_expires_at`` the row is added already
        leased (the accept path handing a message straight to this process's
        worker): nobody else can claim it before the lease runs out, and no
        dispatch wake-up is sent.
        """
        ...

    def enqueue_many(
        self,
        rows: Iterable[tuple[str, str, datetime, int]],
        *,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """Add several rows (message_id, tenant_id, due_at, priority); held as in ``enqueue``."""
        ...

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[DispatchClaim]:
        """Lease up to ``limit`` due rows nobody holds (or whose lease ran out).

        Highest priority first, then earliest due. Two concurrent claimers
        never receive the same row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
        """
        ...

    def ack(self, message_id: str, owner: str) -> bool:
        """Remove a row the owner holds; False if it does not hold it (lease lost)."""
        ...

    def release(self, message_id: str, owner: str, due_at: datetime) -> bool:
        """Give a row back, due again at ``due_at``; False if the owner does not hold it."""
        ...

    def extend(self, message_id: str, owner: str, until: datetime) -> bool:
        """Extend a held lease; False if the owner does not hold it."""
        ...

    def extend_many(self, message_ids: Sequence[str], owner: str, until: datetime) -> int:
        """``extend`` several held leases in one round trip; how many the owner still held."""
        ...

    def depth(self, now: datetime) -> int:
        """Rows due at ``now`` (held or not): how far behind dispatch is."""
        ...

    def ack_many(self, message_ids: Sequence[str], owner: str) -> int:
        """``ack`` several rows; how many the owner still held."""
        ...

    def release_many(self, rows: Sequence[tuple[str, datetime]], owner: str) -> int:
        """``release`` several (message_id, due_at) rows; how many the owner still held."""
        ...

    def next_due(self) -> datetime | None:
        """The earliest ``due_at`` of a row nobody holds (or whose lease runs out first)."""
        ...


class WebhookRepository(Protocol):
    """Webhook endpoints, the event outbox and the log of delivery attempts."""

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Insert; ``AlreadyExists`` if the id is taken."""
        ...

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """The tenant's endpoint, or None (never another tenant's)."""
        ...

    def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        """The tenant's endpoints (enabled or not), oldest first."""
        ...

    def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Replace; ``WebhookEndpointNotFound`` if missing."""
        ...

    def enqueue(self, entries: Sequence[OutboxEntry]) -> int:
        """Insert outbox entries, skipping (event_id, endpoint_id) pairs already there.

        Returns how many were new. Runs in the caller's unit of work, so the
        events commit (or roll back) with the state change that made them.
        """
        ...

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[OutboxEntry]:
        """Lease up to ``limit`` pending entries due at ``now``, earliest due first.

        Two concurrent claimers never get the same entry (``SKIP LOCKED`` on
        PostgreSQL); an entry whose lease ran out can be claimed again.
        """
        ...

    def finish(self, entry: OutboxEntry, attempt: DeliveryAttempt, owner: str) -> bool:
        """Log ``attempt`` and store ``entry``'s new state (attempts, due time, last result).

        Releases the lease. False (and nothing written) if ``owner`` no longer
        holds the entry.
        """
        ...

    def get(self, event_id: str, endpoint_id: str) -> OutboxEntry | None:
        """The entry, or None."""
        ...

    def list(
        self,
        tenant_id: str,
        *,
        state: OutboxState | None = None,
        endpoint_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxEntry]:
        """The tenant's entries, newest first, filtered by state and/or endpoint."""
        ...

    def attempts(self, event_id: str, endpoint_id: str) -> Sequence[DeliveryAttempt]:
        """Every attempt at one entry, oldest first."""
        ...

    def replay(self, event_id: str, endpoint_id: str, now: datetime) -> bool:
        """Make an entry (delivered or dead) pending again, due at ``now``; False if unknown.

        Its attempt log is kept; the attempt count goes on from where it was.
        """
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository. Use as a context manager; commit explicitly."""

    @property
    def tenants(self) -> TenantRepository:
        """Tenants."""
        ...

    @property
    def keys(self) -> ApiKeyRepository:
        """API keys."""
        ...

    @property
    def dlt(self) -> DltRepository:
        """DLT registrations."""
        ...

    @property
    def messages(self) -> MessageRepository:
        """Messages."""
        ...

    @property
    def ledger(self) -> LedgerRepository:
        """The credit ledger."""
        ...

    @property
    def dispatch(self) -> DispatchRepository:
        """The dispatch queue."""
        ...

    @property
    def routes(self) -> RouteRepository:
        """Carrier routes."""
        ...

    @property
    def receipts(self) -> ReceiptRepository:
        """The delivery-receipt inbox."""
        ...

    @property
    def webhooks(self) -> WebhookRepository:
        """Webhook endpoints and the event outbox."""
        ...

    @property
    def heartbeats(self) -> HeartbeatRepository:
        """Workers' heartbeats."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed."""
        ...

    def commit(self) -> None:
        """Make the transaction's writes durable and visible; ``StorageUnavailable`` on failure."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit of work has committed and released its connection.

        Dropped if the work rolls back. Exceptions from callbacks are logged
        and swallowed: the commit already happened.
        """
        ...

    def rollback(self) -> None:
        """Discard the transaction's writes."""
        ...


class Storage(Protocol):
    """A storage backend: hands out units of work, owns the connection pool and schema."""

    def unit_of_work(self) -> UnitOfWork:
        """A new transaction (write-capable; SQLite takes its write lock up front)."""
        ...

    def migrate(self) -> None:
        """Bring the schema to the newest version (idempotent)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def wait_for_dispatch(self, timeout: float) -> bool:
        """Block until a unit of work that enqueued dispatch rows commits, or ``timeout`` passes.

        True when woken by new work. Memory and SQLite wake waiters in this
        process (another process's writes are seen at the next poll);
        PostgreSQL wakes every process through ``LISTEN/NOTIFY``.
        """
        ...

    def wake_dispatch(self) -> None:
        """Wake every waiter now (shutdown, or work made due by other means)."""
        ...
