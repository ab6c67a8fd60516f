"""Accepting messages: validate, price, and persist in one transaction, exactly once.

``send`` parses the number, checks the message against the tenant's DLT
registry, segments and prices it, then in ONE transaction: looks up the
client_message_id, reserves the credits, inserts the message with its parts and
``accepted`` timeline entry, and queues it for dispatch. When a worker runs in
this process (``EventHub.set_hand_off``) it may claim the message in that same
transaction (``submitting`` on a route, the dispatch row leased to it) and
submit it the moment the commit returns, with no claim transaction between
accept and the wire. A request that fails validation writes nothing. A
repeated client_message_id with the same request returns the original message
(a replay); with a different request it is an ``IdempotencyConflict``.
Concurrent duplicates are settled by the storage's unique constraint: the
loser rolls back and answers as a replay.

The per-number limit (SMS-pumping defence) is checked in the same
transaction, once the template (so the category) is known and after the
replay check, so a replay is never refused: at most ``number_limit``
messages of ``number_limit_categories`` per (tenant, number) in the trailing
``number_limit_window``, else ``RateLimited`` with ``retry_after``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from attrs import field, frozen

from bharatsend_core.domain.dlt import Category, DltVerdict, DltWarning, validate
from bharatsend_core.domain.encoding import Segmentation, segment
from bharatsend_core.domain.errors import (
    BatchAborted,
    BharatSendError,
    DltDndBlocked,
    DltTemplateUnknown,
    InsufficientCredits,
    InvalidArgument,
    RateLimited,
)
from bharatsend_core.domain.idempotency import check_client_message_id, fingerprint, require_same
from bharatsend_core.domain.ledger import tenant_account
from bharatsend_core.domain.message import Message
from bharatsend_core.domain.phone import PhoneNumber, parse_phone
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports import DuplicateClientMessageId, UnitOfWork
from bharatsend_core.service.context import Context, require_tenant
from bharatsend_core.service.events import Handed
from bharatsend_core.service.grouping import GroupCommit
from bharatsend_core.service.ledger import reserve_transfer
from bharatsend_core.service.templates import RegistryCache, TenantRegistry
from bharatsend_core.service.webhooks import record_events

__all__ = [
    "MAX_BATCH",
    "MAX_METADATA_BYTES",
    "BatchItem",
    "BatchResult",
    "Estimate",
    "SendRequest",
    "SendResult",
    "SendService",
]

#: Most messages one send_batch call takes.
MAX_BATCH: Final = 1000
#: Largest metadata object (as compact JSON) a message may carry.
MAX_METADATA_BYTES: Final = 2048
#: Highest dispatch priority (0 is the default; OTPs usually go higher).
MAX_PRIORITY: Final = 9


def _metadata(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return {} if value is None else value


@frozen
class SendRequest:
    """One message as the caller asks for it."""

    phone_number: str
    content: str = field(repr=False)
    dlt_template_id: str
    header: str | None = None
    client_message_id: str | None = None
    validity_seconds: int | None = None
    priority: int = 0
    metadata: Mapping[str, Any] = field(factory=dict, converter=_metadata)


@frozen
class SendResult:
    """An accepted message; ``replayed`` when it was accepted earlier under the same id."""

    message: Message
    replayed: bool = False
    warnings: tuple[DltWarning, ...] = ()

    @property
    def id(self) -> str:
        """The message id (``msg_…``)."""
        return self.message.id

    @property
    def status(self) -> str:
        """The message status when this result was made."""
        return self.message.status.value


@frozen
class Estimate:
    """What a message would cost and whether DLT would pass it, without sending it."""

    encoding: str
    units: int
    segments: int
    price_paise: int
    dlt_error: BharatSendError | None
    warnings: tuple[DltWarning, ...]
    header: str | None

    @property
    def dlt_ok(self) -> bool:
        """Whether the message passes every DLT check."""
        return self.dlt_error is None


@frozen
class BatchItem:
    """The outcome of one item of a batch, by its index in the request."""

    index: int
    result: SendResult | None = None
    error: BharatSendError | None = None

    @property
    def ok(self) -> bool:
        """Whether the item was accepted (or replayed)."""
        return self.result is not None


@frozen
class BatchResult:
    """Every item's outcome, in request order."""

    items: tuple[BatchItem, ...]

    @property
    def accepted(self) -> int:
        """Items accepted now or earlier (replays)."""
        return sum(1 for i in self.items if i.ok)

    @property
    def rejected(self) -> int:
        """Items refused."""
        return len(self.items) - self.accepted


@frozen
class _Checked:
    """A request that passed every check the registry-free stage can make."""

    phone: PhoneNumber
    client_message_id: str | None
    validity: timedelta
    fingerprint: str


@frozen
class _Prepared:
    message: Message
    fingerprint: str
    warnings: tuple[DltWarning, ...]


class SendService:
    """The accept path."""

    def __init__(self, ctx: Context, cache: RegistryCache) -> None:
        self._ctx = ctx
        self._cache = cache
        leaders = ctx.settings.send_group_commits
        self._group = (
            GroupCommit(
                leaders,
                self._send_one,
                lambda tenant_id, requests, sandbox: self.send_batch(
                    tenant_id, requests, sandbox=sandbox
                ),
            )
            if leaders
            else None
        )

    # ------------------------------------------------------------------ single

    def send(self, tenant_id: str, request: SendRequest, *, sandbox: bool = False) -> SendResult:
        """Accept one message (or replay it); see the module docstring for the guarantees.

        With ``Settings.send_group_commits``, sends of a tenant that arrive
        while that many of its accepts are committing wait and are committed
        together (``service/grouping.py``); each still gets its own answer.
        """
        sandbox = sandbox or self._ctx.settings.sandbox
        if self._group is not None:
            return self._group.send(tenant_id, request, sandbox)
        return self._send_one(tenant_id, request, sandbox)

    def _send_one(self, tenant_id: str, request: SendRequest, sandbox: bool) -> SendResult:
        checked = self._check(request, sandbox)
        now = self._ctx.clock.now()
        try:
            with self._ctx.storage.unit_of_work() as uow:
                tenant = require_tenant(uow, tenant_id)
                replay = self._replay(uow, tenant_id, checked)
                if replay is not None:
                    return replay
                tenant.require_active()
                snapshot = self._cache.get(uow, tenant)
                prepared = self._prepare(tenant, snapshot, request, checked, now, sandbox)
                message = prepared.message
                self._check_number_limit(uow, message, now)
                offered = self._hand_off([message], now)
                stored = _stored(offered[0])
                uow.messages.add(stored, fingerprint=prepared.fingerprint)
                self._queue(uow, offered, now)
                record_events(uow, [(stored, 0)], now, self._ctx.hub)
                # Last: the reservation locks the tenant's account row until the
                # commit, and every accept of the tenant waits for that lock.
                if message.price_paise:
                    uow.ledger.record(reserve_transfer(message, now))
                uow.commit()
                # The result is the acceptance, whatever the worker did next.
                return SendResult(message, False, prepared.warnings)
        except DuplicateClientMessageId:
            # A concurrent request with the same id won the unique constraint.
            with self._ctx.storage.unit_of_work() as uow:
                replay = self._replay(uow, tenant_id, checked)
            if replay is None:  # pragma: no cover - the constraint said it exists
                raise
            return replay

    def _hand_off(self, messages: list[Message], now: datetime) -> list[Message | Handed]:
        """Offer the accepted messages to this process's worker (if one runs here).

        For each, the message to store as accepted, or what the worker took:
        the message claimed (``submitting``), to be queued leased to the
        worker and submitted by it after the commit (:meth:`_queue`).
        """
        hand_off = self._ctx.hub.hand_off
        if hand_off is None:
            return list(messages)
        return [hand_off(m, now) or m for m in messages]

    @staticmethod
    def _queue(uow: UnitOfWork, offered: Sequence[Message | Handed], now: datetime) -> None:
        """Queue the dispatch rows: free for any worker, or leased to the one that took them."""
        free = [m for m in offered if isinstance(m, Message)]
        if free:
            uow.dispatch.enqueue_many((m.id, m.tenant_id, now, m.priority) for m in free)
        held: dict[tuple[str, datetime], list[Handed]] = {}
        for item in offered:
            if isinstance(item, Handed):
                held.setdefault((item.owner, item.lease_expires_at), []).append(item)
        for (owner, until), taken in held.items():
            uow.dispatch.enqueue_many(
                ((h.message.id, h.message.tenant_id, now, h.message.priority) for h in taken),
                owner=owner,
                lease_expires_at=until,
            )
            for handed in taken:
                uow.after_commit(handed.submit)

    def estimate(self, tenant_id: str, request: SendRequest, *, sandbox: bool = False) -> Estimate:
        """Segments, encoding, price and the DLT verdict of a message, without sending it."""
        sandbox = sandbox or self._ctx.settings.sandbox
        seg = segment(request.content, max_segments=self._ctx.settings.max_segments)
        now = self._ctx.clock.now()

        def run(uow: UnitOfWork) -> Estimate:
            tenant = require_tenant(uow, tenant_id)
            snapshot = self._cache.get(uow, tenant)
            template = snapshot.registry.template(request.dlt_template_id)
            category = template.category if template is not None else Category.TRANSACTIONAL
            price = 0 if sandbox else tenant.rates.reserve_price(category, seg.segments)
            header = request.header
            try:
                header = self._header(snapshot, request)
                verdict = validate(
                    snapshot.registry,
                    header=header,
                    template_id=request.dlt_template_id,
                    text=request.content,
                    now=now,
                    policy=self._ctx.settings.dlt,
                )
            except BharatSendError as e:
                return Estimate(seg.encoding.value, seg.units, seg.segments, price, e, (), header)
            return Estimate(
                seg.encoding.value, seg.units, seg.segments, price, None, verdict.warnings, header
            )

        return self._ctx.read(run)

    # ------------------------------------------------------------------ batch

    def send_batch(
        self,
        tenant_id: str,
        requests: Sequence[SendRequest],
        *,
        sandbox: bool = False,
        all_or_nothing: bool = False,
    ) -> BatchResult:
        """Accept many messages; each is checked on its own and errors come back by index.

        The valid ones are written in one transaction. With ``all_or_nothing``
        one failing item fails them all (the others get ``batch_aborted``).
        """
        if not 1 <= len(requests) <= MAX_BATCH:
            raise InvalidArgument(f"a batch holds 1 to {MAX_BATCH} messages", field="messages")
        sandbox = sandbox or self._ctx.settings.sandbox
        for attempt in range(3):
            try:
                return self._send_batch(tenant_id, requests, sandbox, all_or_nothing)
            except (DuplicateClientMessageId, InsufficientCredits):
                # A concurrent request took an id or the credits between our reads
                # and writes; everything was rolled back, so run it again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_batch(
        self,
        tenant_id: str,
        requests: Sequence[SendRequest],
        sandbox: bool,
        all_or_nothing: bool,
    ) -> BatchResult:
        now = self._ctx.clock.now()
        items: list[BatchItem | None] = [None] * len(requests)
        checked: list[_Checked | None] = [None] * len(requests)
        for i, request in enumerate(requests):
            try:
                checked[i] = self._check(request, sandbox)
            except BharatSendError as e:
                items[i] = BatchItem(i, error=e)
        with self._ctx.storage.unit_of_work() as uow:
            tenant = require_tenant(uow, tenant_id)
            snapshot: TenantRegistry | None = None
            new: list[tuple[int, _Prepared]] = []
            first_use: dict[str, tuple[int, str]] = {}
            client_ids = [c.client_message_id for c in checked if c and c.client_message_id]
            existing = uow.messages.find_by_client_ids(tenant_id, client_ids) if client_ids else {}
            for i, request in enumerate(requests):
                c = checked[i]
                if c is None:
                    continue
                try:
                    if c.client_message_id is not None:
                        earlier = first_use.get(c.client_message_id)
                        if earlier is not None:
                            require_same(earlier[1], c.fingerprint, c.client_message_id)
                            items[i] = BatchItem(i, error=None, result=None)
                            continue  # resolved to the earlier item's result below
                        stored = existing.get(c.client_message_id)
                        if stored is not None:
                            require_same(stored[1] or "", c.fingerprint, c.client_message_id)
                            items[i] = BatchItem(i, result=SendResult(stored[0], replayed=True))
                            continue
                        first_use[c.client_message_id] = (i, c.fingerprint)
                    tenant.require_active()
                    if snapshot is None:
                        snapshot = self._cache.get(uow, tenant)
                    new.append((i, self._prepare(tenant, snapshot, request, c, now, sandbox)))
                except BharatSendError as e:
                    items[i] = BatchItem(i, error=e)
            new = self._within_number_limit(uow, tenant_id, new, items, now)
            failed = any(item is not None and item.error is not None for item in items)
            if all_or_nothing and failed:
                return BatchResult(tuple(_abort(items)))
            new = self._affordable(uow, tenant_id, new, items)
            if all_or_nothing and any(item is not None and item.error for item in items):
                return BatchResult(tuple(_abort(items)))
            offered = self._hand_off([p.message for _, p in new], now)
            inserted = [_stored(item) for item in offered]
            uow.messages.add_many(
                [(m, p.fingerprint) for m, (_, p) in zip(inserted, new, strict=True)]
            )
            self._queue(uow, offered, now)
            record_events(uow, [(m, 0) for m in inserted], now, self._ctx.hub)
            # Last, as in send(): the account row stays locked until the commit.
            uow.ledger.reserve_many(
                [reserve_transfer(p.message, now) for _, p in new if p.message.price_paise]
            )
            uow.commit()
        for i, p in new:
            items[i] = BatchItem(i, result=SendResult(p.message, False, p.warnings))
        # Repeats of a client_message_id inside the batch answer as replays of the first.
        for i, c in enumerate(checked):
            item = items[i]
            if c is None or c.client_message_id is None:
                continue
            first = first_use.get(c.client_message_id)
            if item is not None and item.error is None and item.result is None and first:
                source = items[first[0]]
                if source is not None and source.result is not None:
                    items[i] = BatchItem(i, result=SendResult(source.result.message, True))
                elif source is not None:
                    items[i] = BatchItem(i, error=source.error)
        return BatchResult(tuple(item for item in items if item is not None))

    def _check_number_limit(self, uow: UnitOfWork, message: Message, now: datetime) -> None:
        """``RateLimited`` when the number already had its quota in the window (one query)."""
        settings = self._ctx.settings
        categories = settings.number_limit_categories
        if not settings.number_limit or message.category not in categories:
            return
        since = now - settings.number_limit_window
        count, oldest = uow.messages.count_recent(
            message.tenant_id, message.phone, categories, since
        )
        if count >= settings.number_limit:
            raise self._rate_limited(oldest or now, now)

    def _within_number_limit(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        new: list[tuple[int, _Prepared]],
        items: list[BatchItem | None],
        now: datetime,
    ) -> list[tuple[int, _Prepared]]:
        """Keep the items within the per-number limit, in order; the rest get ``rate_limited``.

        One query counts the stored messages of every number of the batch;
        the batch's own earlier items count too.
        """
        settings = self._ctx.settings
        categories = settings.number_limit_categories
        limit = settings.number_limit
        counted = [(i, p) for i, p in new if p.message.category in categories]
        if not limit or not counted:
            return new
        since = now - settings.number_limit_window
        phones = sorted({p.message.phone for _, p in counted})
        recent = dict(uow.messages.count_recent_many(tenant_id, phones, categories, since))
        refused: set[int] = set()
        for i, p in counted:
            phone = p.message.phone
            count, oldest = recent.get(phone, (0, None))
            if count >= limit:
                items[i] = BatchItem(i, error=self._rate_limited(oldest or now, now))
                refused.add(i)
                continue
            recent[phone] = (count + 1, now if oldest is None else min(oldest, now))
        return new if not refused else [(i, p) for i, p in new if i not in refused]

    def _rate_limited(self, oldest: datetime, now: datetime) -> RateLimited:
        settings = self._ctx.settings
        window = settings.number_limit_window
        retry_after = _retry_after(oldest, window, now)
        return RateLimited(
            f"this number already had {settings.number_limit} messages in the last"
            f" {_duration(window)}, the most one number may get (the SMS-pumping defence);"
            f" retry in {retry_after} s",
            field="phone_number",
            detail={
                "limit": settings.number_limit,
                "window_seconds": math.ceil(window.total_seconds()),
            },
            retry_after=retry_after,
        )

    def _affordable(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        new: list[tuple[int, _Prepared]],
        items: list[BatchItem | None],
    ) -> list[tuple[int, _Prepared]]:
        """Keep the items the balance covers, in order; the rest get ``insufficient_credits``."""
        if not any(p.message.price_paise for _, p in new):
            return new
        available = uow.ledger.balance(tenant_account(tenant_id)).available
        kept: list[tuple[int, _Prepared]] = []
        for i, p in new:
            price = p.message.price_paise
            if price > available:
                items[i] = BatchItem(
                    i,
                    error=InsufficientCredits(
                        f"the balance available is {available} paise; this message needs"
                        f" {price}. Top up to continue",
                        detail={"available_paise": available},
                    ),
                )
                continue
            available -= price
            kept.append((i, p))
        return kept

    # ------------------------------------------------------------------ steps

    def _check(self, request: SendRequest, sandbox: bool) -> _Checked:
        """Checks that need no storage: ids, number, options. Raises on the first problem."""
        settings = self._ctx.settings
        cmid = check_client_message_id(request.client_message_id)
        if not isinstance(request.content, str):
            raise InvalidArgument("content must be a string", field="content")
        phone = parse_phone(request.phone_number, allowed_regions=settings.allowed_regions)
        validity = settings.default_validity
        if request.validity_seconds is not None:
            seconds = request.validity_seconds
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise InvalidArgument(
                    "validity_seconds must be a whole number", field="validity_seconds"
                )
            validity = timedelta(seconds=seconds)
            if not timedelta(seconds=30) <= validity <= settings.max_validity:
                longest = int(settings.max_validity.total_seconds())
                raise InvalidArgument(
                    f"validity_seconds must be from 30 to {longest}",
                    field="validity_seconds",
                )
        priority = request.priority
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not 0 <= priority <= MAX_PRIORITY
        ):
            raise InvalidArgument(f"priority is 0 to {MAX_PRIORITY}", field="priority")
        metadata = _check_metadata(request.metadata)
        fp = fingerprint(
            {
                "phone": phone.e164,
                "content": request.content,
                "template": request.dlt_template_id,
                "header": request.header,
                "validity": request.validity_seconds,
                "priority": priority,
                "metadata": metadata,
                "sandbox": sandbox,
            }
        )
        return _Checked(phone, cmid, validity, fp)

    def _replay(self, uow: UnitOfWork, tenant_id: str, checked: _Checked) -> SendResult | None:
        if checked.client_message_id is None:
            return None
        found = uow.messages.find_by_client_id(tenant_id, checked.client_message_id)
        if found is None:
            return None
        message, stored = found
        require_same(stored or "", checked.fingerprint, checked.client_message_id)
        return SendResult(message, replayed=True)

    @staticmethod
    def _header(snapshot: TenantRegistry, request: SendRequest) -> str:
        if request.header is not None:
            return request.header
        template = snapshot.registry.template(request.dlt_template_id)
        if template is None:
            raise DltTemplateUnknown(
                f"DLT template {request.dlt_template_id} is not registered; import it from"
                " your DLT portal",
                field="dlt_template_id",
            )
        if len(template.headers) != 1:
            raise InvalidArgument(
                f"template {template.template_id} is linked to {len(template.headers)} headers;"
                " say which one to send with",
                field="header",
            )
        return next(iter(template.headers))

    def _prepare(
        self,
        tenant: Tenant,
        snapshot: TenantRegistry,
        request: SendRequest,
        checked: _Checked,
        now: datetime,
        sandbox: bool,
    ) -> _Prepared:
        settings = self._ctx.settings
        seg: Segmentation = segment(request.content, max_segments=settings.max_segments)
        header = self._header(snapshot, request)
        verdict: DltVerdict = validate(
            snapshot.registry,
            header=header,
            template_id=request.dlt_template_id,
            text=request.content,
            now=now,
            policy=settings.dlt,
        )
        if verdict.template.category.is_promotional:
            raise _dnd_unavailable()
        category = verdict.template.category
        price = 0 if sandbox else tenant.rates.reserve_price(category, seg.segments)
        message = Message.accept(
            id=self._ctx.ids.new_id("msg"),
            tenant_id=tenant.id,
            phone=checked.phone.e164,
            content=request.content,
            template_id=verdict.template_id,
            header=header,
            entity_id=verdict.pe_id,
            category=category.value,
            encoding=seg.encoding.value,
            segments=seg.segments,
            now=now,
            validity=checked.validity,
            client_message_id=checked.client_message_id,
            sandbox=sandbox,
            priority=request.priority,
            price_paise=price,
            metadata=request.metadata,
        )
        return _Prepared(message, checked.fingerprint, verdict.warnings)


def _stored(item: Message | Handed) -> Message:
    """The message to insert: as accepted, or as the worker claimed it."""
    return item.message if isinstance(item, Handed) else item


def _retry_after(oldest: datetime, window: timedelta, now: datetime) -> int:
    """Seconds until the oldest counted message leaves the window, rounded up, at least 1."""
    return max(1, math.ceil((oldest + window - now).total_seconds()))


def _duration(window: timedelta) -> str:
    seconds = math.ceil(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _dnd_unavailable() -> DltDndBlocked:
    """Promotional messages need a DND registry lookup; none is wired yet, so fail closed."""
    return DltDndBlocked(
        "promotional messages are refused: no DND (do not disturb) registry is configured,"
        " so the recipient's preference cannot be checked",
        field="phone_number",
        detail={"reason": "no_dnd_registry"},
    )


def _check_metadata(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(value, Mapping) and not value:
        return value  # the common case: nothing to encode or measure
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument("metadata must be a JSON object with string keys", field="metadata")
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgument("metadata must be plain JSON", field="metadata") from None
    if len(encoded.encode("utf-8")) > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON", field="metadata"
        )
    return value


def _abort(items: list[BatchItem | None]) -> list[BatchItem]:
    out = []
    for i, item in enumerate(items):
        if item is not None and item.error is not None:
            out.append(item)
        else:
            out.append(
                BatchItem(
                    i,
                    error=BatchAborted(
                        "not sent: another item of this all-or-nothing batch failed",
                        field=f"messages[{i}]",
                    ),
                )
            )
    return out
