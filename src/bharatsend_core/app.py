"""``BharatSend``: the facade a host application uses, and the one composition root.

This is the only place that picks concrete adapters (by database URL) and
wires them to the use cases. Nothing is created at import time: no engine, no
socket, no thread, no environment read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import attrs

from bharatsend_core.config import Settings
from bharatsend_core.domain.dlt import Entity, Header, Template
from bharatsend_core.domain.errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidPhoneNumber,
    MessageNotFound,
    RouteNotFound,
    UnsupportedDestination,
)
from bharatsend_core.domain.keys import ApiKey, IssuedKey, KeyMode, Scope
from bharatsend_core.domain.ledger import Transfer
from bharatsend_core.domain.message import Message, Status
from bharatsend_core.domain.phone import parse_phone
from bharatsend_core.domain.reports import DeliveryReport
from bharatsend_core.domain.routing import Connection, Route, RouteConfig
from bharatsend_core.domain.tenants import BillingPoint, RateCard, Tenant, TenantStatus
from bharatsend_core.domain.webhooks import WebhookEndpoint
from bharatsend_core.ports import Clock, IdGenerator, Storage, TemplateVersion
from bharatsend_core.ports.carrier import Carrier
from bharatsend_core.ports.storage import (
    DeliveryAttempt,
    Heartbeat,
    MessagePage,
    MessageQuery,
    OutboxEntry,
    OutboxState,
    StoredReceipt,
)
from bharatsend_core.ports.webhook_transport import WebhookTransport
from bharatsend_core.service.context import Context
from bharatsend_core.service.dispatch import DispatchOptions
from bharatsend_core.service.events import StatusListener, WebhookFailureListener
from bharatsend_core.service.keys import KeyService, Principal
from bharatsend_core.service.ledger import Balance, LedgerService, ReconcileReport, Statement
from bharatsend_core.service.receipts import check_receipt_threads
from bharatsend_core.service.reports import ReportService
from bharatsend_core.service.routes import RouteService
from bharatsend_core.service.send import (
    BatchResult,
    Estimate,
    SendRequest,
    SendResult,
    SendService,
)
from bharatsend_core.service.templates import (
    DltImportReport,
    RegisteredTemplate,
    RegistryCache,
    RegistryService,
)
from bharatsend_core.service.tenants import TenantService
from bharatsend_core.service.webhook_delivery import WebhookDeliverer
from bharatsend_core.service.webhooks import CreatedEndpoint, WebhookService
from bharatsend_core.service.worker import CarrierFactory, Worker, process_owner

__all__ = ["BharatSend"]


def storage_for_url(url: str, *, pool_size: int) -> Storage:
    """The storage adapter for a database URL (``memory://``, ``sqlite:…``, ``postgresql…``).

    ``pool_size``: connections kept open (``Settings.database_pool_size``).
    """
    if url in ("memory://", "memory:"):
        from bharatsend_core.adapters.memory import MemoryStorage

        return MemoryStorage()
    if url.startswith(("sqlite", "postgresql")):
        from bharatsend_core.adapters.sqlalchemy import SqlStorage

        return SqlStorage.from_url(url, pool_size=pool_size)
    raise ConfigurationError(
        f"unsupported database_url scheme in {url.split(':', 1)[0]!r}; use sqlite:///path.db,"
        " postgresql+psycopg://user@host/db or memory://",
        field="database_url",
    )


class BharatSend:
    """Send India OTP and transactional SMS from your own backend.

    Build one per process with :meth:`from_url` (or :meth:`in_memory` for tests),
    call :meth:`migrate` once, and share it between threads.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        settings: Settings,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
    ) -> None:
        from bharatsend_core.adapters.system import SystemClock, SystemIds

        self._storage = storage
        self._ctx = Context(storage, clock or SystemClock(), ids or SystemIds(), settings)
        cache = RegistryCache()
        self._tenants = TenantService(self._ctx)
        self._keys = KeyService(self._ctx)
        self._registry = RegistryService(self._ctx, cache)
        self._ledger = LedgerService(self._ctx)
        self._send = SendService(self._ctx, cache)
        self._routes = RouteService(self._ctx)
        self._webhooks = WebhookService(self._ctx)
        self._reports = ReportService(self._ctx)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        **settings: Any,
    ) -> BharatSend:
        """Build from a database URL and settings (keyword arguments, then ``BHARATSEND_*``)."""
        if url is not None:
            settings["database_url"] = url
        resolved = Settings.resolve(environ, **settings)
        return cls(
            storage=storage_for_url(resolved.database_url, pool_size=resolved.database_pool_size),
            settings=resolved,
            clock=clock,
            ids=ids,
        )

    @classmethod
    def in_memory(
        cls, *, clock: Clock | None = None, ids: IdGenerator | None = None, **settings: Any
    ) -> BharatSend:
        """A complete instance on in-memory storage: for tests and the sandbox."""
        return cls.from_url("memory://", environ={}, clock=clock, ids=ids, **settings)

    @property
    def settings(self) -> Settings:
        """The resolved settings."""
        return self._ctx.settings

    @property
    def storage(self) -> Storage:
        """The storage adapter (for workers and tests)."""
        return self._storage

    def migrate(self) -> None:
        """Create or upgrade the database schema (idempotent; safe on every start)."""
        self._storage.migrate()

    def worker_heartbeats(self) -> Sequence[Heartbeat]:
        """Running workers (any host) by their last heartbeat, most recent first."""
        return self._ctx.read(lambda uow: uow.heartbeats.list())

    def worker_heartbeat_age(self) -> float | None:
        """Seconds since the freshest worker heartbeat; None when no worker is running."""
        beats = self.worker_heartbeats()
        if not beats:
            return None
        return max(0.0, (self._ctx.clock.now() - beats[0].seen_at).total_seconds())

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` with the events of each committed change made in this process.

        Runs on the thread that made the change, after its commit; returns the
        unsubscribe function. Sends committed together (``send_group_commits``)
        notify on the thread that committed the group, which may be another
        caller's. The webhook outbox is the cross-process channel.
        """
        return self._ctx.hub.on_status(listener)

    def on_webhook_failure(self, listener: WebhookFailureListener) -> Callable[[], None]:
        """Call ``listener`` for each failed webhook delivery attempt made in this process."""
        return self._ctx.hub.on_webhook_failure(listener)

    def ping(self) -> None:
        """One trivial read; ``StorageUnavailable`` when the database does not answer."""
        self._ctx.read(lambda uow: uow.tenants.get("ten_ping"))

    def close(self) -> None:
        """Release database connections."""
        self._storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ tenants

    def create_tenant(
        self,
        name: str,
        *,
        rates: RateCard | None = None,
        billing_point: BillingPoint | str | None = None,
    ) -> Tenant:
        """Create a tenant (a customer of yours) with an empty credit account."""
        return self._tenants.create(name, rates=rates, billing_point=billing_point)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """The tenant, or ``TenantNotFound``."""
        return self._tenants.get(tenant_id)

    def list_tenants(self) -> Sequence[Tenant]:
        """Every tenant."""
        return self._tenants.list()

    def suspend_tenant(self, tenant_id: str) -> Tenant:
        """Stop a tenant from sending (its data and keys stay)."""
        return self._tenants.set_status(tenant_id, TenantStatus.SUSPENDED)

    def activate_tenant(self, tenant_id: str) -> Tenant:
        """Let a suspended tenant send again."""
        return self._tenants.set_status(tenant_id, TenantStatus.ACTIVE)

    def set_rates(self, tenant_id: str, rates: RateCard) -> Tenant:
        """Replace a tenant's prices (paise per segment by category and route)."""
        return self._tenants.set_rates(tenant_id, rates)

    def set_billing_point(self, tenant_id: str, billing_point: BillingPoint | str) -> Tenant:
        """Charge at carrier acceptance (``submit``) or at delivery (``delivery``)."""
        return self._tenants.set_billing_point(tenant_id, billing_point)

    # ------------------------------------------------------------------ API keys

    def create_api_key(
        self,
        tenant_id: str,
        *,
        scopes: Iterable[Scope | str],
        mode: KeyMode | str = KeyMode.LIVE,
        name: str = "",
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """Issue an API key; ``.secret`` is the full key, shown this once and never stored."""
        return self._keys.create(
            tenant_id, scopes=scopes, mode=mode, name=name, expires_at=expires_at
        )

    def list_api_keys(self, tenant_id: str) -> Sequence[ApiKey]:
        """The tenant's keys."""
        return self._keys.list(tenant_id)

    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a key at once."""
        return self._keys.revoke(tenant_id, key_id)

    def authenticate(self, api_key: str, scope: Scope | str | None = None) -> Principal:
        """The tenant and scopes behind a key; ``InvalidApiKey`` / ``InsufficientScope``."""
        return self._keys.authenticate(api_key, scope)

    # ------------------------------------------------------------------ DLT registry

    def register_entity(self, tenant_id: str, pe_id: str, name: str = "") -> Entity:
        """Register your principal entity (PE ID) from the DLT portal."""
        return self._registry.register_entity(tenant_id, pe_id, name)

    def register_header(
        self,
        tenant_id: str,
        sender_id: str,
        *,
        category: str,
        entity_id: str | None = None,
    ) -> Header:
        """Register a header (sender ID); the entity defaults to the tenant's only one."""
        return self._registry.register_header(
            tenant_id, sender_id, category=category, entity_id=entity_id
        )

    def list_entities(self, tenant_id: str) -> Sequence[Entity]:
        """The tenant's registered entities."""
        return self._registry.entities(tenant_id)

    def list_headers(self, tenant_id: str) -> Sequence[Header]:
        """The tenant's registered headers (active and not)."""
        return self._registry.headers(tenant_id)

    def deactivate_header(self, tenant_id: str, sender_id: str) -> Header:
        """Stop sending with a header."""
        return self._registry.set_header_active(tenant_id, sender_id, False)

    def register_template(
        self,
        tenant_id: str,
        *,
        template_id: str,
        body: str,
        category: str,
        header: str | None = None,
        headers: Iterable[str] | None = None,
        entity_id: str | None = None,
        content_type: str = "text",
        name: str = "",
    ) -> RegisteredTemplate:
        """Register a content template exactly as approved on the DLT portal."""
        linked = _headers(header, headers)
        return self._registry.register_template(
            tenant_id,
            template_id=template_id,
            body=body,
            category=category,
            headers=linked,
            entity_id=entity_id,
            content_type=content_type,
            name=name,
        )

    def update_template(
        self,
        tenant_id: str,
        template_id: str,
        *,
        body: str | None = None,
        category: str | None = None,
        headers: Iterable[str] | None = None,
        content_type: str | None = None,
        active: bool | None = None,
    ) -> RegisteredTemplate:
        """Change a template; earlier versions stay in :meth:`template_history`."""
        return self._registry.update_template(
            tenant_id,
            template_id,
            body=body,
            category=category,
            headers=headers,
            content_type=content_type,
            active=active,
        )

    def deactivate_template(self, tenant_id: str, template_id: str) -> RegisteredTemplate:
        """Stop a template from being used."""
        return self._registry.deactivate_template(tenant_id, template_id)

    def get_template(self, tenant_id: str, template_id: str) -> Template:
        """A registered template."""
        return self._registry.template(tenant_id, template_id)

    def list_templates(self, tenant_id: str) -> Sequence[Template]:
        """The tenant's templates."""
        return self._registry.templates(tenant_id)

    def template_history(self, tenant_id: str, template_id: str) -> Sequence[TemplateVersion]:
        """Every version of a template, oldest first."""
        return self._registry.template_history(tenant_id, template_id)

    def add_url_whitelist(self, tenant_id: str, prefix: str) -> bool:
        """Whitelist a URL prefix for ``{#url#}``/``{#urlott#}`` values."""
        return self._registry.add_whitelist(tenant_id, "url", prefix)

    def add_callback_whitelist(self, tenant_id: str, number: str) -> bool:
        """Whitelist a call-back number for ``{#cbn#}`` values."""
        return self._registry.add_whitelist(tenant_id, "callback", number)

    def import_dlt_csv(
        self, tenant_id: str, data: str | bytes, *, pe_id: str | None = None
    ) -> DltImportReport:
        """Import your DLT portal's template CSV: all rows or none (``dlt_csv_invalid``)."""
        return self._registry.import_dlt_csv(tenant_id, data, pe_id=pe_id)

    # ------------------------------------------------------------------ credits

    def top_up(self, tenant_id: str, paise: int, *, reference: str | None = None) -> Transfer:
        """Add credits; with a ``reference`` (your payment id) a repeat is a no-op."""
        return self._ledger.top_up(tenant_id, paise, reference=reference)

    def balance(self, tenant_id: str) -> Balance:
        """Available, posted and reserved paise."""
        return self._ledger.balance(tenant_id)

    def statement(self, tenant_id: str, *, after: int | None = None, limit: int = 100) -> Statement:
        """Transfers with the running available balance, oldest first, paginated."""
        return self._ledger.statement(tenant_id, after=after, limit=limit)

    def reconcile(self, tenant_id: str | None = None) -> ReconcileReport:
        """Check that the books agree to the last paisa."""
        return self._ledger.reconcile(tenant_id)

    # ------------------------------------------------------------------ messages

    def send(
        self,
        tenant_id: str,
        *,
        phone_number: str,
        content: str,
        dlt_template_id: str,
        header: str | None = None,
        client_message_id: str | None = None,
        validity_seconds: int | None = None,
        priority: int = 0,
        metadata: Mapping[str, Any] | None = None,
        sandbox: bool = False,
    ) -> SendResult:
        """Validate, price and durably queue one message; a retry with the same id is a replay."""
        request = SendRequest(
            phone_number=phone_number,
            content=content,
            dlt_template_id=dlt_template_id,
            header=header,
            client_message_id=client_message_id,
            validity_seconds=validity_seconds,
            priority=priority,
            metadata=metadata or {},
        )
        return self._send.send(tenant_id, request, sandbox=sandbox)

    def send_batch(
        self,
        tenant_id: str,
        messages: Sequence[SendRequest | Mapping[str, Any]],
        *,
        all_or_nothing: bool = False,
        sandbox: bool = False,
    ) -> BatchResult:
        """Accept up to 1,000 messages; per-item results by index."""
        requests = [_request(m, i) for i, m in enumerate(messages)]
        return self._send.send_batch(
            tenant_id, requests, sandbox=sandbox, all_or_nothing=all_or_nothing
        )

    def estimate(
        self,
        tenant_id: str,
        *,
        phone_number: str = "",
        content: str,
        dlt_template_id: str,
        header: str | None = None,
        sandbox: bool = False,
    ) -> Estimate:
        """Segments, encoding, price and DLT verdict, without sending."""
        request = SendRequest(
            phone_number=phone_number,
            content=content,
            dlt_template_id=dlt_template_id,
            header=header,
        )
        return self._send.estimate(tenant_id, request, sandbox=sandbox)

    def get_message(self, tenant_id: str, message_id: str) -> Message:
        """A message with parts and timeline; ``MessageNotFound`` (also for another tenant's)."""
        message = self._ctx.read(lambda uow: uow.messages.get(tenant_id, message_id))
        if message is None:
            raise MessageNotFound(f"no message {message_id!r}", field="id")
        return message

    def list_messages(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        phone: str | None = None,
        client_message_id: str | None = None,
        template_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """The tenant's messages, newest first, filtered; page on with ``after``.

        ``after`` is (created_at, id) of the last message of the previous
        page. ``phone`` may be typed any way ``send`` accepts
        (``9876543210`` finds ``+919876543210``). ``created_from`` is
        inclusive, ``created_to`` exclusive. ``InvalidArgument`` names the bad
        filter.
        """
        query = self._message_query(
            status, phone, client_message_id, template_id, created_from, created_to, after, limit
        )
        return self._ctx.read(lambda uow: uow.messages.list(tenant_id, query))

    def _message_query(
        self,
        status: str | None,
        phone: str | None,
        client_message_id: str | None,
        template_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> MessageQuery:
        """Validate and normalise the filters of ``list_messages``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise InvalidArgument("limit must be a whole number from 1 to 100", field="limit")
        if status is not None and status not in {s.value for s in Status}:
            known = ", ".join(s.value for s in Status)
            raise InvalidArgument(f"status must be one of {known}", field="status")
        e164 = None
        if phone is not None:
            try:
                e164 = parse_phone(phone, allowed_regions=self.settings.allowed_regions).e164
            except (InvalidPhoneNumber, UnsupportedDestination) as e:
                raise type(e)(e.message, field="phone", detail=e.detail) from None
        for name, value in (("client_message_id", client_message_id), ("template_id", template_id)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgument(f"{name} must be text", field=name)
        for name, instant in (("created_from", created_from), ("created_to", created_to)):
            if instant is not None and (
                not isinstance(instant, datetime) or instant.utcoffset() is None
            ):
                raise InvalidArgument(f"{name} must be a timezone-aware datetime", field=name)
        if created_from is not None and created_to is not None and created_from >= created_to:
            raise InvalidArgument("created_from must be before created_to", field="created_from")
        if after is not None and (
            not isinstance(after, tuple)
            or len(after) != 2
            or not isinstance(after[0], datetime)
            or after[0].utcoffset() is None
            or not isinstance(after[1], str)
        ):
            raise InvalidArgument(
                "after must be (created_at, id) of the last message seen", field="after"
            )
        return MessageQuery(
            status=status,
            phone=e164,
            client_message_id=client_message_id,
            template_id=template_id,
            created_from=created_from,
            created_to=created_to,
            after=after,
            limit=limit,
        )

    def delivery_report(
        self, *, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> DeliveryReport:
        """Delivery figures of messages created in [since, until), by route, operator, template.

        Of one tenant, or of all when ``tenant_id`` is None (operators' view).
        See ``domain/reports.py`` for the definitions.
        """
        return self._reports.delivery_report(since=since, until=until, tenant_id=tenant_id)

    def message_receipts(self, tenant_id: str, message_id: str) -> Sequence[StoredReceipt]:
        """The delivery receipts applied to a message's parts, newest first."""
        self.get_message(tenant_id, message_id)  # MessageNotFound for another tenant's
        return self._ctx.read(lambda uow: uow.receipts.list(message_id=message_id, limit=1000))

    def unmatched_receipts(self, *, limit: int = 100) -> Sequence[StoredReceipt]:
        """Receipts no part ever claimed (kept for inspection), newest first."""
        return self._ctx.read(lambda uow: uow.receipts.list(state="unknown", limit=limit))

    # ------------------------------------------------------------------ webhooks

    def add_webhook_endpoint(
        self, tenant_id: str, url: str, *, events: Sequence[str] = ("sms.*",)
    ) -> CreatedEndpoint:
        """Send the tenant's ``events`` (``sms.*`` by default) to ``url``, signed.

        The returned ``secret`` (``whsec_…``) is shown once. Errors:
        ``WebhookUrlForbidden`` (not https, or a private address without
        ``webhooks_allow_private``), ``InvalidArgument``, ``TenantNotFound``.
        """
        return self._webhooks.add_endpoint(tenant_id, url, events)

    def rotate_webhook_secret(
        self, tenant_id: str, endpoint_id: str, *, overlap_seconds: int = 86_400
    ) -> CreatedEndpoint:
        """A new signing secret; the old one keeps signing for ``overlap_seconds``."""
        return self._webhooks.rotate_secret(
            tenant_id, endpoint_id, timedelta(seconds=overlap_seconds)
        )

    def list_webhook_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        """The tenant's webhook endpoints."""
        return self._webhooks.list_endpoints(tenant_id)

    def disable_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
        """Stop sending to an endpoint (its pending events wait)."""
        return self._webhooks.set_enabled(tenant_id, endpoint_id, False)

    def enable_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
        """Send to an endpoint again (its failure record is cleared)."""
        return self._webhooks.set_enabled(tenant_id, endpoint_id, True)

    def webhook_deliveries(
        self, tenant_id: str, *, state: OutboxState | None = None, limit: int = 100
    ) -> Sequence[OutboxEntry]:
        """The tenant's webhook outbox, newest first; ``state="dead"`` lists dead letters."""
        return self._webhooks.deliveries(tenant_id, state=state, limit=limit)

    def webhook_attempts(
        self, tenant_id: str, event_id: str, endpoint_id: str
    ) -> Sequence[DeliveryAttempt]:
        """Every attempt at one delivery (status, latency, error, response start), oldest first."""
        return self._webhooks.attempts(tenant_id, event_id, endpoint_id)

    def replay_webhook(self, tenant_id: str, event_id: str, endpoint_id: str) -> bool:
        """Deliver an event to an endpoint again; False if there is no such delivery."""
        return self._webhooks.replay(tenant_id, event_id, endpoint_id)

    # ------------------------------------------------------------------ routes

    def add_route(
        self,
        name: str,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        tps: float | None = None,
        window: int = 10,
        categories: Iterable[str] = (),
        operators: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        priority: int = 0,
        weight: int = 100,
        enabled: bool = True,
        sandbox: bool = False,
        retry_permanent_elsewhere: bool = False,
        **connection: Any,
    ) -> RouteConfig:
        """Add a carrier route (an SMPP bind) that workers will use.

        ``connection`` takes the rest of :class:`~bharatsend_core.domain.routing.Connection`:
        ``dlt_tlvs`` (default ``{"pe_id": 0x1400, "template_id": 0x1401}``),
        ``bind`` ("transceiver" or "pair"), ``system_type``,
        ``tlv_nul_terminated``, ``dlt_chain``, ``id_mode``,
        ``status_overrides``, ``response_timeout``, ``enquire_interval``,
        ``resend_unknown``. Errors: ``InvalidArgument``, ``AlreadyExists``.
        """
        try:
            config = RouteConfig(
                Route(
                    name=name,
                    priority=priority,
                    weight=weight,
                    tps=tps,
                    window=window,
                    categories=categories,
                    operators=operators,
                    prefixes=prefixes,
                    enabled=enabled,
                    sandbox=sandbox,
                    retry_permanent_elsewhere=retry_permanent_elsewhere,
                ),
                Connection(
                    host=host, port=port, system_id=system_id, password=password, **connection
                ),
            )
        except TypeError as e:
            raise InvalidArgument(f"unknown route setting: {e}", field="connection") from None
        return self._routes.add(config)

    def apply_routes(self, specs: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Add or update routes from configuration (``add_route`` keyword dicts with a ``name``).

        A route that exists is updated with the keys its dict gives; the rest
        keep their stored values (a route an operator disabled stays disabled
        unless the dict says ``"enabled": True``). Returns (added, updated).
        """
        added = updated = 0
        for spec in specs:
            options = dict(spec)
            name = options.pop("name", None)
            if not isinstance(name, str) or not name:
                raise InvalidArgument("every route needs a 'name'", field="name")
            try:
                self.get_route(name)
            except RouteNotFound:
                self.add_route(name, **options)
                added += 1
            else:
                if options:
                    self.update_route(name, **options)
                updated += 1
        return added, updated

    def update_route(self, name: str, **changes: Any) -> RouteConfig:
        """Change some of a route's settings (any ``add_route`` keyword but the name).

        Running workers rebind it with the new settings at their next reload.
        Errors: ``RouteNotFound``, ``InvalidArgument`` (an unknown or invalid setting).
        """
        config = self._routes.get(name)
        route_fields = {f.name for f in attrs.fields(Route)} - {"name"}
        connection_fields = {f.name for f in attrs.fields(Connection)}
        unknown = sorted(set(changes) - route_fields - connection_fields)
        if unknown:
            raise InvalidArgument(f"unknown route settings: {', '.join(unknown)}", field=unknown[0])
        route = attrs.evolve(
            config.route, **{k: v for k, v in changes.items() if k in route_fields}
        )
        connection = attrs.evolve(
            config.connection, **{k: v for k, v in changes.items() if k in connection_fields}
        )
        return self._routes.replace(RouteConfig(route, connection))

    def get_route(self, name: str) -> RouteConfig:
        """A route; ``RouteNotFound`` if there is none."""
        return self._routes.get(name)

    def list_routes(self) -> Sequence[RouteConfig]:
        """Every route, by name."""
        return self._routes.list()

    def disable_route(self, name: str) -> RouteConfig:
        """Stop choosing a route; running workers unbind it at their next reload."""
        return self._routes.set_enabled(name, False)

    def enable_route(self, name: str) -> RouteConfig:
        """Choose a route again; running workers bind it at their next reload."""
        return self._routes.set_enabled(name, True)

    # ------------------------------------------------------------------ workers

    def worker(
        self,
        *,
        carrier_factory: CarrierFactory | None = None,
        options: DispatchOptions | None = None,
        sandbox_carrier: bool = True,
        webhooks: bool = True,
        **worker_options: Any,
    ) -> Worker:
        """A dispatch worker (not started): call ``start()``/``stop()``, or ``run()``.

        Routes come from the database. With ``sandbox_carrier`` and no stored
        sandbox route, the worker also runs the built-in SMSC simulator as
        route ``sandbox``, so sandbox messages (``bs_test_`` keys) are
        delivered to it and never reach a real carrier.
        """
        if "receipt_threads" in worker_options:
            # Refused before the database is read or the sandbox SMSC starts.
            check_receipt_threads(worker_options["receipt_threads"])
        factory = carrier_factory or self._smpp_carrier
        extra: list[RouteConfig] = []
        cleanup = None
        if sandbox_carrier and not any(r.route.sandbox for r in self.list_routes()):
            from bharatsend_core.adapters.smpp.simulator import SmscSimulator

            simulator = SmscSimulator(
                credentials={"sandbox": "sandbox"}, receipt_delay=0.01, record_limit=1000
            ).start()
            extra.append(
                RouteConfig(
                    Route(name="sandbox", sandbox=True, priority=1000),
                    Connection(
                        host="127.0.0.1",
                        port=simulator.port,
                        system_id="sandbox",
                        password="sandbox",  # noqa: S106 - the loopback simulator's
                    ),
                )
            )
            cleanup = simulator.stop
        try:
            worker = Worker(
                self._ctx,
                factory,
                options=options,
                extra_routes=extra,
                on_stop=cleanup,
                **worker_options,
            )
        except BaseException:
            if cleanup is not None:
                cleanup()  # a refused option must not leave the sandbox SMSC running
            raise
        if webhooks:
            worker.webhooks = self.webhook_deliverer(owner=worker.owner)
        return worker

    def webhook_deliverer(
        self, *, transport: WebhookTransport | None = None, owner: str | None = None, **options: Any
    ) -> WebhookDeliverer:
        """A webhook deliverer (``run_once()`` delivers one batch); workers run one by default.

        ``transport`` defaults to urllib3 with the SSRF guard (off only with
        ``webhooks_allow_private``); ``options`` tune concurrency, batch,
        schedule and ``disable_after``.
        """
        if transport is None:
            from bharatsend_core.adapters.http import HttpTransport

            transport = HttpTransport(allow_private=self.settings.webhooks_allow_private)
        return WebhookDeliverer(
            self._ctx,
            transport,
            owner=owner or process_owner("webhooks"),
            **options,
        )

    def run_worker(self, *, cpus: Iterable[int] | None = None, **options: Any) -> None:
        """Run a worker until SIGTERM/SIGINT, then drain and exit (the CLI's ``worker``).

        ``cpus`` pins the whole process to those CPUs first (:func:`pin_process`;
        one is what a worker can use, and it runs faster pinned to it);
        ``InvalidArgument`` for CPUs the process may not use, before anything starts.
        """
        if cpus is not None:
            from bharatsend_core.adapters.system import pin_process

            pin_process(cpus)
        self.worker(**options).run()

    def _smpp_carrier(self, config: RouteConfig) -> Carrier:
        from bharatsend_core.adapters.smpp.carrier import SmppCarrier

        return SmppCarrier(config, clock=self._ctx.clock)


def _headers(header: str | None, headers: Iterable[str] | None) -> list[str]:
    if header is not None and headers is not None:
        raise InvalidArgument("give header or headers, not both", field="headers")
    if header is not None:
        return [header]
    if headers is None:
        raise InvalidArgument("a template needs the header it is linked to", field="header")
    return list(headers)


_REQUEST_FIELDS = frozenset(
    {
        "phone_number",
        "content",
        "dlt_template_id",
        "header",
        "client_message_id",
        "validity_seconds",
        "priority",
        "metadata",
    }
)


def _request(item: SendRequest | Mapping[str, Any], index: int) -> SendRequest:
    if isinstance(item, SendRequest):
        return item
    if not isinstance(item, Mapping):
        raise InvalidArgument(
            "each message is a SendRequest or a mapping", field=f"messages[{index}]"
        )
    unknown = set(item) - _REQUEST_FIELDS
    if unknown:
        raise InvalidArgument(
            f"unknown field(s) {', '.join(sorted(unknown))}", field=f"messages[{index}]"
        )
    missing = {"phone_number", "content", "dlt_template_id"} - set(item)
    if missing:
        raise InvalidArgument(
            f"missing field(s) {', '.join(sorted(missing))}", field=f"messages[{index}]"
        )
    return SendRequest(**item)
