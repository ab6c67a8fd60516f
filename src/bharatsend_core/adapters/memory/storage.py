"""In-memory storage: the sandbox's database and the host application's test kit.

Same contract as the SQL adapters (``tests/contract`` runs the same cases).
Transactions are serialised by one lock held from the start of a unit of work
to its end (the strongest isolation, and plenty for one process); writes go
straight into the dictionaries and an undo journal puts them back on rollback.
Values are frozen domain objects, so sharing them between readers is safe.
Dispatch waiters are woken in this process when a unit of work that queued or
released dispatch rows commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from attrs import define, evolve
from attrs import field as attr_field

from bharatsend_core.adapters.signal import DispatchSignal, run_callbacks
from bharatsend_core.domain.dlt import Entity, Header, Template
from bharatsend_core.domain.errors import (
    AlreadyExists,
    ApiKeyNotFound,
    ConcurrentUpdate,
    DltRecordNotFound,
    MessageNotFound,
    RouteNotFound,
    TenantNotFound,
    TransferConflict,
    WebhookEndpointNotFound,
)
from bharatsend_core.domain.keys import ApiKey
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    AccountBalance,
    Transfer,
    TransferKind,
    apply_effects,
    effects,
    same_transfer,
)
from bharatsend_core.domain.message import Message, Status
from bharatsend_core.domain.reports import ReportInput
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.domain.webhooks import WebhookEndpoint
from bharatsend_core.ports.storage import (
    DeliveryAttempt,
    DispatchClaim,
    DuplicateClientMessageId,
    Heartbeat,
    MessagePage,
    MessageQuery,
    MessageSummary,
    OutboxEntry,
    OutboxState,
    ReceiptState,
    StoredReceipt,
    TemplateVersion,
    WhitelistKind,
)

__all__ = ["MemoryStorage"]

_MISSING: Any = object()


@define
class _Row:
    message_id: str
    tenant_id: str
    due_at: datetime
    priority: int
    owner: str | None = None
    lease_expires_at: datetime | None = None


@define
class _Outbox:
    """One outbox entry and who holds its lease (both None while nobody does)."""

    entry: OutboxEntry
    owner: str | None = None
    lease_expires_at: datetime | None = None


@define
class _Data:
    tenants: dict[str, Tenant] = attr_field(factory=dict)
    keys: dict[str, ApiKey] = attr_field(factory=dict)
    entities: dict[tuple[str, str], Entity] = attr_field(factory=dict)
    headers: dict[tuple[str, str], Header] = attr_field(factory=dict)
    templates: dict[tuple[str, str], Template] = attr_field(factory=dict)
    versions: dict[tuple[str, str], list[TemplateVersion]] = attr_field(factory=dict)
    whitelist: dict[tuple[str, str, str], bool] = attr_field(factory=dict)
    messages: dict[str, tuple[Message, str | None]] = attr_field(factory=dict)
    client_ids: dict[tuple[str, str], str] = attr_field(factory=dict)
    #: Message ids by (tenant, phone), in insertion order: the per-number limit's index.
    by_phone: dict[tuple[str, str], list[str]] = attr_field(factory=dict)
    accounts: dict[str, AccountBalance] = attr_field(factory=dict)
    account_tenants: dict[str, str | None] = attr_field(factory=dict)
    transfers: list[Transfer] = attr_field(factory=list)
    transfer_seq: dict[str, int] = attr_field(factory=dict)
    settlements: dict[str, str] = attr_field(factory=dict)
    refunds: dict[str, str] = attr_field(factory=dict)
    dispatch: dict[str, _Row] = attr_field(factory=dict)
    routes: dict[str, RouteConfig] = attr_field(factory=dict)
    heartbeats: dict[str, Heartbeat] = attr_field(factory=dict)
    receipts: dict[tuple[str, str, str], StoredReceipt] = attr_field(factory=dict)
    endpoints: dict[str, WebhookEndpoint] = attr_field(factory=dict)
    outbox: dict[tuple[str, str], _Outbox] = attr_field(factory=dict)
    attempts: dict[tuple[str, str], tuple[DeliveryAttempt, ...]] = attr_field(factory=dict)


class _Journal:
    """Undo log of one unit of work."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        old = mapping.get(key, _MISSING)
        self._undo.append(lambda: self._restore(mapping, key, old))
        mapping[key] = value

    def delete(self, mapping: dict[Any, Any], key: Any) -> None:
        old = mapping.pop(key)
        self._undo.append(lambda: mapping.__setitem__(key, old))

    def append(self, items: list[Any], value: Any) -> None:
        items.append(value)
        self._undo.append(items.pop)

    @staticmethod
    def _restore(mapping: dict[Any, Any], key: Any, old: Any) -> None:
        if old is _MISSING:
            mapping.pop(key, None)
        else:
            mapping[key] = old

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    def forget(self) -> None:
        self._undo.clear()


class _Repo:
    def __init__(self, data: _Data, journal: _Journal) -> None:
        self._d = data
        self._j = journal


class _Tenants(_Repo):
    def add(self, tenant: Tenant) -> None:
        if tenant.id in self._d.tenants:
            raise AlreadyExists(f"tenant {tenant.id} already exists", field="id")
        self._j.set(self._d.tenants, tenant.id, tenant)

    def get(self, tenant_id: str) -> Tenant | None:
        return self._d.tenants.get(tenant_id)

    def update(self, tenant: Tenant) -> None:
        stored = self._d.tenants.get(tenant.id)
        if stored is None:
            raise TenantNotFound(f"no tenant {tenant.id}", field="tenant_id")
        updated = evolve(
            stored,
            name=tenant.name,
            status=tenant.status,
            billing_point=tenant.billing_point,
            rates=tenant.rates,
        )
        self._j.set(self._d.tenants, tenant.id, updated)

    def bump_dlt_version(self, tenant_id: str) -> int:
        stored = self._d.tenants.get(tenant_id)
        if stored is None:
            raise TenantNotFound(f"no tenant {tenant_id}", field="tenant_id")
        self._j.set(self._d.tenants, tenant_id, evolve(stored, dlt_version=stored.dlt_version + 1))
        return stored.dlt_version + 1

    def list(self) -> Sequence[Tenant]:
        return sorted(self._d.tenants.values(), key=lambda t: (t.created_at, t.id))


class _Keys(_Repo):
    def add(self, key: ApiKey) -> None:
        if key.id in self._d.keys:
            raise AlreadyExists(f"API key {key.id} already exists", field="id")
        self._j.set(self._d.keys, key.id, key)

    def get(self, key_id: str) -> ApiKey | None:
        return self._d.keys.get(key_id)

    def list(self, tenant_id: str) -> Sequence[ApiKey]:
        keys = [k for k in self._d.keys.values() if k.tenant_id == tenant_id]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def update(self, key: ApiKey) -> None:
        stored = self._d.keys.get(key.id)
        if stored is None or stored.tenant_id != key.tenant_id:
            raise ApiKeyNotFound(f"no API key {key.id}", field="key_id")
        updated = evolve(
            stored,
            revoked_at=key.revoked_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            name=key.name,
        )
        self._j.set(self._d.keys, key.id, updated)


class _Dlt(_Repo):
    def add_entity(self, tenant_id: str, entity: Entity) -> None:
        self._insert(self._d.entities, (tenant_id, entity.pe_id), entity, "entity", entity.pe_id)

    def get_entity(self, tenant_id: str, pe_id: str) -> Entity | None:
        return self._d.entities.get((tenant_id, pe_id))

    def list_entities(self, tenant_id: str) -> Sequence[Entity]:
        return [e for (t, _), e in sorted(self._d.entities.items()) if t == tenant_id]

    def add_header(self, tenant_id: str, header: Header) -> None:
        key = (tenant_id, header.sender_id)
        self._insert(self._d.headers, key, header, "header", header.sender_id)

    def update_header(self, tenant_id: str, header: Header) -> None:
        key = (tenant_id, header.sender_id)
        if key not in self._d.headers:
            raise DltRecordNotFound(f"no header {header.sender_id!r}", field="header")
        self._j.set(self._d.headers, key, header)

    def get_header(self, tenant_id: str, sender_id: str) -> Header | None:
        return self._d.headers.get((tenant_id, sender_id))

    def list_headers(self, tenant_id: str) -> Sequence[Header]:
        return [h for (t, _), h in sorted(self._d.headers.items()) if t == tenant_id]

    def add_template(self, tenant_id: str, template: Template, at: datetime) -> None:
        key = (tenant_id, template.template_id)
        self._insert(self._d.templates, key, template, "template", template.template_id)
        self._j.set(self._d.versions, key, [TemplateVersion(1, template, at)])

    def update_template(self, tenant_id: str, template: Template, at: datetime) -> int:
        key = (tenant_id, template.template_id)
        if key not in self._d.templates:
            raise DltRecordNotFound(f"no template {template.template_id}", field="dlt_template_id")
        history = self._d.versions[key]
        version = len(history) + 1
        self._j.set(self._d.templates, key, template)
        self._j.set(self._d.versions, key, [*history, TemplateVersion(version, template, at)])
        return version

    def get_template(self, tenant_id: str, template_id: str) -> Template | None:
        return self._d.templates.get((tenant_id, template_id))

    def list_templates(self, tenant_id: str) -> Sequence[Template]:
        return [tp for (t, _), tp in sorted(self._d.templates.items()) if t == tenant_id]

    def template_history(self, tenant_id: str, template_id: str) -> Sequence[TemplateVersion]:
        return list(self._d.versions.get((tenant_id, template_id), []))

    def add_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        key = (tenant_id, kind, value)
        if key in self._d.whitelist:
            return False
        self._j.set(self._d.whitelist, key, True)
        return True

    def remove_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        key = (tenant_id, kind, value)
        if key not in self._d.whitelist:
            return False
        self._j.delete(self._d.whitelist, key)
        return True

    def list_whitelist(self, tenant_id: str, kind: WhitelistKind) -> Sequence[str]:
        return sorted(v for (t, k, v) in self._d.whitelist if t == tenant_id and k == kind)

    def _insert(self, table: dict[Any, Any], key: Any, value: Any, what: str, ident: str) -> None:
        if key in table:
            raise AlreadyExists(f"{what} {ident!r} is already registered", field=what)
        self._j.set(table, key, value)


class _Messages(_Repo):
    def add(self, message: Message, *, fingerprint: str | None) -> None:
        if message.id in self._d.messages:
            raise AlreadyExists(f"message {message.id} already exists", field="id")
        if message.client_message_id is not None:
            key = (message.tenant_id, message.client_message_id)
            if key in self._d.client_ids:
                raise DuplicateClientMessageId(message.client_message_id)
            self._j.set(self._d.client_ids, key, message.id)
        self._j.set(self._d.messages, message.id, (message, fingerprint))
        ids = self._d.by_phone.setdefault((message.tenant_id, message.phone), [])
        self._j.append(ids, message.id)

    def add_many(self, items: Sequence[tuple[Message, str | None]]) -> None:
        for message, fingerprint in items:
            self.add(message, fingerprint=fingerprint)

    def get(self, tenant_id: str, message_id: str) -> Message | None:
        stored = self._d.messages.get(message_id)
        if stored is None or stored[0].tenant_id != tenant_id:
            return None
        return stored[0]

    def find_by_client_id(
        self, tenant_id: str, client_message_id: str
    ) -> tuple[Message, str | None] | None:
        message_id = self._d.client_ids.get((tenant_id, client_message_id))
        return None if message_id is None else self._d.messages[message_id]

    def find_by_client_ids(
        self, tenant_id: str, client_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, str | None]]:
        found = {}
        for client_message_id in client_message_ids:
            message_id = self._d.client_ids.get((tenant_id, client_message_id))
            if message_id is not None:
                found[client_message_id] = self._d.messages[message_id]
        return found

    def update(self, message: Message) -> None:
        stored = self._d.messages.get(message.id)
        if stored is None or stored[0].tenant_id != message.tenant_id:
            raise MessageNotFound(f"no message {message.id}", field="id")
        old = stored[0]
        # Append-only timeline: keep the stored entries, take only the new ones;
        # what was accepted stays as it was stored.
        timeline = old.timeline + message.timeline[len(old.timeline) :]
        updated = evolve(
            old,
            status=message.status,
            attempts=message.attempts,
            next_attempt_at=message.next_attempt_at,
            updated_at=message.updated_at,
            route=message.route,
            possible_duplicate=message.possible_duplicate,
            error=message.error,
            parts=message.parts,
            timeline=timeline,
        )
        self._j.set(self._d.messages, message.id, (updated, stored[1]))

    def get_many(self, ids: Sequence[tuple[str, str]]) -> Mapping[str, Message]:
        found = {}
        for tenant_id, message_id in ids:
            message = self.get(tenant_id, message_id)
            if message is not None:
                found[message_id] = message
        return found

    def update_many(
        self, messages: Sequence[Message], *, expected_events: Mapping[str, int] | None = None
    ) -> None:
        if expected_events:
            for message in messages:
                expected = expected_events.get(message.id)
                stored = self._d.messages.get(message.id)
                if (
                    expected is not None
                    and stored is not None
                    and len(stored[0].timeline) != expected
                ):
                    raise ConcurrentUpdate(
                        f"message {message.id} changed since it was read", field="message_id"
                    )
        for message in messages:
            self.update(message)

    def awaiting_receipts(self, sent_before: datetime, limit: int) -> Sequence[Message]:
        waiting = [
            m
            for m, _ in self._d.messages.values()
            if m.status is Status.SENT and m.updated_at < sent_before
        ]
        return sorted(waiting, key=lambda m: (m.updated_at, m.id))[:limit]

    def find_by_carrier_ids(
        self, route: str, carrier_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, int]]:
        wanted = set(carrier_message_ids)
        found = {}
        for message, _ in self._d.messages.values():
            for part in message.parts:
                carrier_id = part.carrier_message_id
                if carrier_id in wanted and part.route == route:
                    found[carrier_id] = (message, part.index)
        return found

    def summaries(self, tenant_id: str) -> Sequence[MessageSummary]:
        return [
            MessageSummary(m.id, m.status, m.price_paise, m.sandbox)
            for m, _ in self._d.messages.values()
            if m.tenant_id == tenant_id
        ]

    def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        q = query
        found = []
        for m, _ in self._d.messages.values():
            if m.tenant_id != tenant_id:
                continue
            if (
                (q.status is not None and m.status.value != q.status)
                or (q.phone is not None and m.phone != q.phone)
                or (q.client_message_id is not None and m.client_message_id != q.client_message_id)
                or (q.template_id is not None and m.template_id != q.template_id)
                or (q.created_from is not None and m.created_at < q.created_from)
                or (q.created_to is not None and m.created_at >= q.created_to)
                or (q.after is not None and (m.created_at, m.id) >= q.after)
            ):
                continue
            found.append(m)
        found.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        limit = max(q.limit, 0)
        return MessagePage(tuple(found[:limit]), len(found) > limit)

    def count_recent(
        self, tenant_id: str, phone: str, categories: frozenset[str], since: datetime
    ) -> tuple[int, datetime | None]:
        count, oldest = 0, None
        for message_id in self._d.by_phone.get((tenant_id, phone), ()):
            m = self._d.messages[message_id][0]
            if m.category in categories and m.created_at >= since:
                count += 1
                oldest = m.created_at if oldest is None else min(oldest, m.created_at)
        return count, oldest

    def count_recent_many(
        self, tenant_id: str, phones: Sequence[str], categories: frozenset[str], since: datetime
    ) -> Mapping[str, tuple[int, datetime | None]]:
        found = {}
        for phone in set(phones):
            count, oldest = self.count_recent(tenant_id, phone, categories, since)
            if count:
                found[phone] = (count, oldest)
        return found

    def report_rows(
        self,
        since: datetime,
        until: datetime,
        tenant_id: str | None = None,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 5000,
    ) -> Sequence[ReportInput]:
        chosen = sorted(
            (
                m
                for m, _ in self._d.messages.values()
                if since <= m.created_at < until
                and (tenant_id is None or m.tenant_id == tenant_id)
                and (after is None or (m.created_at, m.id) > after)
            ),
            key=lambda m: (m.created_at, m.id),
        )
        return [
            ReportInput(
                id=m.id,
                template_id=m.template_id,
                route=m.route,
                phone=m.phone,
                status=m.status,
                error_code=None if m.error is None else m.error.code,
                created_at=m.created_at,
                updated_at=m.updated_at,
            )
            for m in chosen[: max(limit, 0)]
        ]


class _Ledger(_Repo):
    def ensure_account(self, account_id: str, tenant_id: str | None) -> None:
        if account_id not in self._d.accounts:
            self._j.set(self._d.accounts, account_id, AccountBalance(account_id))
            self._j.set(self._d.account_tenants, account_id, tenant_id)

    def record(self, transfer: Transfer) -> Transfer:
        seq = self._d.transfer_seq.get(transfer.id)
        if seq is not None:
            stored = self._d.transfers[seq - 1]
            if same_transfer(stored, transfer):
                return stored
            raise TransferConflict(
                f"transfer {transfer.id} was already recorded with different fields",
                field="id",
            )
        for account_id in (transfer.debit_account, transfer.credit_account):
            if account_id not in self._d.accounts:
                raise TransferConflict(f"unknown ledger account {account_id}", field="account")
        settles = self.get(transfer.pending_id) if transfer.pending_id else None
        changes = effects(transfer, settles)  # validates the pairing first
        if transfer.kind in (TransferKind.POST, TransferKind.VOID):
            index = self._d.settlements
        elif transfer.kind is TransferKind.REFUND:
            index = self._d.refunds
        else:
            index = None
        if index is not None and transfer.pending_id in index:
            raise TransferConflict(
                f"{transfer.pending_id} is already settled by {index[transfer.pending_id]}",
                field="pending_id",
            )
        updated = apply_effects(self._d.accounts, changes)
        for account_id, balance in updated.items():
            self._j.set(self._d.accounts, account_id, balance)
        if index is not None:
            self._j.set(index, transfer.pending_id, transfer.id)
        self._j.append(self._d.transfers, transfer)
        self._j.set(self._d.transfer_seq, transfer.id, len(self._d.transfers))
        return transfer

    def reserve_many(self, transfers: Sequence[Transfer]) -> None:
        ids = set()
        for t in transfers:
            if t.kind is not TransferKind.RESERVE:
                raise TransferConflict(f"{t.id} is not a reservation", field="kind")
            if t.id in self._d.transfer_seq or t.id in ids:
                raise TransferConflict(f"transfer {t.id} already exists", field="id")
            for account_id in (t.debit_account, t.credit_account):
                if account_id not in self._d.accounts:
                    raise TransferConflict(f"unknown ledger account {account_id}", field="account")
            ids.add(t.id)
        changes = [change for t in transfers for change in effects(t)]
        for account_id, balance in apply_effects(self._d.accounts, changes).items():
            self._j.set(self._d.accounts, account_id, balance)
        for t in transfers:
            self._j.append(self._d.transfers, t)
            self._j.set(self._d.transfer_seq, t.id, len(self._d.transfers))

    def get(self, transfer_id: str) -> Transfer | None:
        seq = self._d.transfer_seq.get(transfer_id)
        return None if seq is None else self._d.transfers[seq - 1]

    def get_many(self, transfer_ids: Sequence[str]) -> Mapping[str, Transfer]:
        found = {}
        for transfer_id in transfer_ids:
            transfer = self.get(transfer_id)
            if transfer is not None:
                found[transfer_id] = transfer
        return found

    def settle_many(
        self, transfers: Sequence[Transfer], *, known: Mapping[str, Transfer] | None = None
    ) -> None:
        for t in transfers:
            if t.kind is TransferKind.RESERVE or t.pending_id is None:
                raise TransferConflict(f"{t.id} does not settle anything", field="kind")
            if t.id in self._d.transfer_seq:
                raise TransferConflict(f"transfer {t.id} already exists", field="id")
            self.record(t)

    def settlement_of(self, reservation_id: str) -> Transfer | None:
        settled_by = self._d.settlements.get(reservation_id)
        return None if settled_by is None else self.get(settled_by)

    def balance(self, account_id: str) -> AccountBalance:
        return self._d.accounts.get(account_id) or AccountBalance(account_id)

    def balances(self) -> Sequence[AccountBalance]:
        return [self._d.accounts[k] for k in sorted(self._d.accounts)]

    def transfers(
        self,
        *,
        account_id: str | None = None,
        tenant_id: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Sequence[tuple[int, Transfer]]:
        found: list[tuple[int, Transfer]] = []
        for seq, t in enumerate(self._d.transfers[after or 0 :], start=(after or 0) + 1):
            if account_id is not None and account_id not in (t.debit_account, t.credit_account):
                continue
            if tenant_id is not None and t.tenant_id != tenant_id:
                continue
            found.append((seq, t))
            if limit is not None and len(found) >= limit:
                break
        return found


class _Dispatch(_Repo):
    def __init__(self, data: _Data, journal: _Journal, on_work: Callable[[], None]) -> None:
        super().__init__(data, journal)
        # Tells the unit of work that rows became claimable: it wakes waiters at commit.
        self._on_work = on_work

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
        if message_id in self._d.dispatch:
            raise AlreadyExists(f"message {message_id} is already queued", field="message_id")
        held = owner is not None and lease_expires_at is not None
        row = _Row(message_id, tenant_id, due_at, priority)
        if held:
            row = evolve(row, owner=owner, lease_expires_at=lease_expires_at)
        self._j.set(self._d.dispatch, message_id, row)
        if not held:
            self._on_work()

    def enqueue_many(
        self,
        rows: Iterable[tuple[str, str, datetime, int]],
        *,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        until = lease_expires_at
        for message_id, tenant, due_at, priority in rows:
            self.enqueue(message_id, tenant, due_at, priority, owner=owner, lease_expires_at=until)

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[DispatchClaim]:
        free = [
            r
            for r in self._d.dispatch.values()
            if r.due_at <= now and (r.lease_expires_at is None or r.lease_expires_at <= now)
        ]
        free.sort(key=lambda r: (-r.priority, r.due_at, r.message_id))
        claims = []
        for row in free[:limit]:
            until = now + lease
            self._j.set(
                self._d.dispatch, row.message_id, evolve(row, owner=owner, lease_expires_at=until)
            )
            claims.append(
                DispatchClaim(row.message_id, row.tenant_id, owner, until, row.due_at, row.priority)
            )
        return claims

    def _held(self, message_id: str, owner: str) -> _Row | None:
        row = self._d.dispatch.get(message_id)
        return row if row is not None and row.owner == owner else None

    def ack(self, message_id: str, owner: str) -> bool:
        if self._held(message_id, owner) is None:
            return False
        self._j.delete(self._d.dispatch, message_id)
        return True

    def release(self, message_id: str, owner: str, due_at: datetime) -> bool:
        row = self._held(message_id, owner)
        if row is None:
            return False
        released = evolve(row, due_at=due_at, owner=None, lease_expires_at=None)
        self._j.set(self._d.dispatch, message_id, released)
        self._on_work()
        return True

    def extend(self, message_id: str, owner: str, until: datetime) -> bool:
        row = self._held(message_id, owner)
        if row is None:
            return False
        self._j.set(self._d.dispatch, message_id, evolve(row, lease_expires_at=until))
        return True

    def extend_many(self, message_ids: Sequence[str], owner: str, until: datetime) -> int:
        return sum(self.extend(message_id, owner, until) for message_id in message_ids)

    def depth(self, now: datetime) -> int:
        return sum(1 for r in self._d.dispatch.values() if r.due_at <= now)

    def ack_many(self, message_ids: Sequence[str], owner: str) -> int:
        return sum(self.ack(message_id, owner) for message_id in message_ids)

    def release_many(self, rows: Sequence[tuple[str, datetime]], owner: str) -> int:
        return sum(self.release(message_id, owner, due_at) for message_id, due_at in rows)

    def next_due(self) -> datetime | None:
        return min(
            (
                r.due_at
                if r.owner is None or r.lease_expires_at is None
                else max(r.due_at, r.lease_expires_at)
                for r in self._d.dispatch.values()
            ),
            default=None,
        )


class _Routes(_Repo):
    def add(self, config: RouteConfig) -> None:
        if config.name in self._d.routes:
            raise AlreadyExists(f"route {config.name} already exists", field="name")
        self._j.set(self._d.routes, config.name, config)

    def get(self, name: str) -> RouteConfig | None:
        return self._d.routes.get(name)

    def list(self) -> Sequence[RouteConfig]:
        return [self._d.routes[name] for name in sorted(self._d.routes)]

    def update(self, config: RouteConfig) -> None:
        if config.name not in self._d.routes:
            raise RouteNotFound(f"no route {config.name}", field="route")
        self._j.set(self._d.routes, config.name, config)


class _Heartbeats(_Repo):
    def beat(self, heartbeat: Heartbeat) -> None:
        self._j.set(self._d.heartbeats, heartbeat.owner, heartbeat)

    def list(self) -> Sequence[Heartbeat]:
        return sorted(self._d.heartbeats.values(), key=lambda h: (h.seen_at, h.owner), reverse=True)

    def remove(self, owner: str) -> None:
        if owner in self._d.heartbeats:
            self._j.delete(self._d.heartbeats, owner)

    def prune(self, before: datetime) -> int:
        stale = [o for o, h in self._d.heartbeats.items() if h.seen_at < before]
        for owner in stale:
            self._j.delete(self._d.heartbeats, owner)
        return len(stale)


def _receipt_key(receipt: StoredReceipt) -> tuple[str, str, str]:
    return (receipt.route, receipt.carrier_message_id, receipt.outcome.value)


class _Receipts(_Repo):
    def add(self, receipt: StoredReceipt) -> bool:
        key = _receipt_key(receipt)
        if key in self._d.receipts:
            return False
        self._j.set(self._d.receipts, key, receipt)
        return True

    def add_many(self, receipts: Sequence[StoredReceipt]) -> Sequence[bool]:
        return [self.add(r) for r in receipts]

    def parked(self, route: str, carrier_message_ids: Sequence[str]) -> Sequence[StoredReceipt]:
        wanted = set(carrier_message_ids)
        found = [
            r
            for r in self._d.receipts.values()
            if r.state == "parked" and r.route == route and r.carrier_message_id in wanted
        ]
        return sorted(found, key=lambda r: (r.received_at, r.carrier_message_id, r.outcome))

    def resolve(
        self,
        receipt: StoredReceipt,
        *,
        state: ReceiptState,
        tenant_id: str | None = None,
        message_id: str | None = None,
        part_index: int | None = None,
    ) -> None:
        key = _receipt_key(receipt)
        stored = self._d.receipts.get(key)
        if stored is None:
            return
        resolved = evolve(
            stored, state=state, tenant_id=tenant_id, message_id=message_id, part_index=part_index
        )
        self._j.set(self._d.receipts, key, resolved)

    def expire_parked(self, received_before: datetime) -> int:
        expired = [
            key
            for key, r in self._d.receipts.items()
            if r.state == "parked" and r.received_at < received_before
        ]
        for key in expired:
            self._j.set(self._d.receipts, key, evolve(self._d.receipts[key], state="unknown"))
        return len(expired)

    def list(
        self,
        *,
        state: ReceiptState | None = None,
        message_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[StoredReceipt]:
        found = [
            r
            for r in self._d.receipts.values()
            if (state is None or r.state == state)
            and (message_id is None or r.message_id == message_id)
        ]
        # Newest first, then by carrier id, outcome and route (as the SQL adapter orders).
        found.sort(key=lambda r: (r.carrier_message_id, r.outcome, r.route))
        found.sort(key=lambda r: r.received_at, reverse=True)
        return found[: max(limit, 0)]


class _Webhooks(_Repo):
    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        if endpoint.id in self._d.endpoints:
            raise AlreadyExists(f"webhook endpoint {endpoint.id} already exists", field="id")
        self._j.set(self._d.endpoints, endpoint.id, endpoint)

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        endpoint = self._d.endpoints.get(endpoint_id)
        return endpoint if endpoint is not None and endpoint.tenant_id == tenant_id else None

    def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        found = [e for e in self._d.endpoints.values() if e.tenant_id == tenant_id]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        stored = self._d.endpoints.get(endpoint.id)
        if stored is None or stored.tenant_id != endpoint.tenant_id:
            raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint.id}", field="id")
        self._j.set(self._d.endpoints, endpoint.id, endpoint)

    def enqueue(self, entries: Sequence[OutboxEntry]) -> int:
        added = 0
        for entry in entries:
            key = (entry.event_id, entry.endpoint_id)
            if key in self._d.outbox:
                continue
            self._j.set(self._d.outbox, key, _Outbox(entry))
            added += 1
        return added

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[OutboxEntry]:
        due = [
            (key, row)
            for key, row in self._d.outbox.items()
            if row.entry.state == "pending"
            and row.entry.next_attempt_at is not None
            and row.entry.next_attempt_at <= now
            and (row.owner is None or (row.lease_expires_at or now) <= now)
        ]
        due.sort(key=lambda item: (item[1].entry.next_attempt_at, item[0]))
        claimed = []
        for key, row in due[: max(limit, 0)]:
            self._j.set(self._d.outbox, key, _Outbox(row.entry, owner, now + lease))
            claimed.append(row.entry)
        return claimed

    def finish(self, entry: OutboxEntry, attempt: DeliveryAttempt, owner: str) -> bool:
        key = (entry.event_id, entry.endpoint_id)
        row = self._d.outbox.get(key)
        if row is None or row.owner != owner:
            return False
        stored = evolve(
            row.entry,
            state=entry.state,
            attempts=entry.attempts,
            next_attempt_at=entry.next_attempt_at,
            last_status=entry.last_status,
            last_error=entry.last_error,
            finished_at=entry.finished_at,
        )
        log = self._d.attempts.get(key, ())
        if all(a.number != attempt.number for a in log):
            self._j.set(self._d.attempts, key, (*log, attempt))
        self._j.set(self._d.outbox, key, _Outbox(stored))
        return True

    def get(self, event_id: str, endpoint_id: str) -> OutboxEntry | None:
        row = self._d.outbox.get((event_id, endpoint_id))
        return None if row is None else row.entry

    def list(
        self,
        tenant_id: str,
        *,
        state: OutboxState | None = None,
        endpoint_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxEntry]:
        found = [
            row.entry
            for row in self._d.outbox.values()
            if row.entry.tenant_id == tenant_id
            and (state is None or row.entry.state == state)
            and (endpoint_id is None or row.entry.endpoint_id == endpoint_id)
        ]
        # Newest first, then by event and endpoint (as the SQL adapter orders).
        found.sort(key=lambda e: (e.event_id, e.endpoint_id))
        found.sort(key=lambda e: e.created_at, reverse=True)
        return found[: max(limit, 0)]

    def attempts(self, event_id: str, endpoint_id: str) -> Sequence[DeliveryAttempt]:
        log = self._d.attempts.get((event_id, endpoint_id), ())
        return sorted(log, key=lambda a: a.number)

    def replay(self, event_id: str, endpoint_id: str, now: datetime) -> bool:
        key = (event_id, endpoint_id)
        row = self._d.outbox.get(key)
        if row is None:
            return False
        replayed = evolve(row.entry, state="pending", next_attempt_at=now, finished_at=None)
        self._j.set(self._d.outbox, key, _Outbox(replayed))
        return True


class _UnitOfWork:
    def __init__(self, data: _Data, lock: threading.RLock, signal: DispatchSignal) -> None:
        self._lock = lock
        self._signal = signal
        self._new_work = False
        self._pending: list[Callable[[], None]] = []
        self._committed: list[Callable[[], None]] = []
        self._journal = _Journal()
        self.tenants = _Tenants(data, self._journal)
        self.keys = _Keys(data, self._journal)
        self.dlt = _Dlt(data, self._journal)
        self.messages = _Messages(data, self._journal)
        self.ledger = _Ledger(data, self._journal)
        self.dispatch = _Dispatch(data, self._journal, self._work_queued)
        self.routes = _Routes(data, self._journal)
        self.receipts = _Receipts(data, self._journal)
        self.webhooks = _Webhooks(data, self._journal)
        self.heartbeats = _Heartbeats(data, self._journal)

    def _work_queued(self) -> None:
        self._new_work = True

    def __enter__(self) -> Self:
        self._lock.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._new_work = False
        self._pending.clear()
        committed, self._committed = self._committed, []
        try:
            self._journal.rollback()
        finally:
            self._lock.release()
        run_callbacks(committed)

    def commit(self) -> None:
        self._journal.forget()
        self._committed.extend(self._pending)
        self._pending.clear()
        if self._new_work:
            self._new_work = False
            self._signal.notify()

    def rollback(self) -> None:
        self._new_work = False
        self._pending.clear()
        self._journal.rollback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._pending.append(callback)


class MemoryStorage:
    """A complete storage backend in process memory; nothing survives the process."""

    def __init__(self) -> None:
        self._data = _Data()
        self._lock = threading.RLock()
        self._signal = DispatchSignal()
        self.migrate()

    def unit_of_work(self) -> _UnitOfWork:
        """A new transaction; it holds the storage's lock from ``with`` until its end."""
        return _UnitOfWork(self._data, self._lock, self._signal)

    def wait_for_dispatch(self, timeout: float) -> bool:
        """Block until a unit of work that queued dispatch rows commits, or ``timeout`` passes.

        True when woken, including by a wake-up since this thread's previous wait returned.
        """
        return self._signal.wait(timeout)

    def wake_dispatch(self) -> None:
        """Wake every waiter now."""
        self._signal.notify()

    def migrate(self) -> None:
        """Create the system ledger accounts (there is no schema to migrate)."""
        with self.unit_of_work() as uow:
            uow.ledger.ensure_account(TOPUPS_ACCOUNT, None)
            uow.ledger.ensure_account(REVENUE_ACCOUNT, None)
            uow.commit()

    def close(self) -> None:
        """Nothing to release."""
