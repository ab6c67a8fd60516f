"""The v1 HTTP API: every endpoint as one :class:`Operation`, served by :class:`ApiApp`.

The operations table is the single source of truth: the router serves it and
:mod:`bharatsend_core.http.openapi` publishes it, so the document cannot drift
from what the handlers do. Handlers only translate between the models of
:mod:`bharatsend_core.http.models` and the :class:`~bharatsend_core.BharatSend`
facade; every rule lives in the service layer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from bharatsend_core.domain.errors import (
    BharatSendError,
    InsufficientScope,
    InvalidArgument,
    PayloadTooLarge,
    WebhookEndpointNotFound,
)
from bharatsend_core.domain.keys import ApiKey, Scope
from bharatsend_core.domain.message import Message
from bharatsend_core.domain.webhooks import WebhookEndpoint
from bharatsend_core.http import models as m
from bharatsend_core.http.core import (
    CSV,
    ApiConfig,
    ApiRequest,
    ApiResponse,
    Call,
    KeyRateLimiter,
    Operation,
    PrincipalCache,
    Reply,
    Router,
    bounded_body,
    error_response,
)
from bharatsend_core.http.openapi import openapi_document
from bharatsend_core.service.send import SendRequest, SendResult

if TYPE_CHECKING:
    from bharatsend_core.app import BharatSend
    from bharatsend_core.domain.dlt import Template
    from bharatsend_core.service.templates import RegisteredTemplate

__all__ = ["ApiApp"]

_SEND = (Scope.SMS_SEND,)
_READ = (Scope.SMS_READ,)
_BALANCE = (Scope.BALANCE_READ,)
_DLT_READ = (Scope.TEMPLATES_WRITE, Scope.SMS_SEND, Scope.SMS_READ)
_DLT_WRITE = (Scope.TEMPLATES_WRITE,)
_HOOKS = (Scope.WEBHOOKS_WRITE,)
_KEYS = (Scope.KEYS_ADMIN,)


class ApiApp:
    """The HTTP API over a facade; ``handle()`` it requests, or serve it as WSGI.

    ``heartbeats`` returns the age in seconds of the freshest worker
    heartbeat, or None if no worker is running (default: the facade's
    :meth:`~bharatsend_core.BharatSend.worker_heartbeat_age`); ``/readyz`` uses it.
    """

    def __init__(
        self,
        bs: BharatSend,
        config: ApiConfig | None = None,
        *,
        limiter: KeyRateLimiter | None = None,
        heartbeats: Callable[[], float | None] | None = None,
    ) -> None:
        self.bs = bs
        self.config = config or ApiConfig()
        self._heartbeats = heartbeats if heartbeats is not None else bs.worker_heartbeat_age
        self._principals = PrincipalCache(self.config.key_cache_seconds)
        self.operations = self._operations()
        self._openapi: dict[str, Any] | None = None
        self.router = Router(
            self.operations,
            self._authenticate,
            self.config,
            limiter or KeyRateLimiter(self.config.key_rate, self.config.key_burst),
        )

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request (never raises)."""
        return self.router.handle(request)

    def serve(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: str,
        length: int | None,
        read: Callable[[int], bytes] | None,
    ) -> ApiResponse:
        """Answer a request whose body is still a stream (what every integration calls).

        ``length`` is the declared ``Content-Length`` (None if absent or
        garbled); ``read`` reads the body stream, or is None when there is none
        to read. The body is refused with 413 before it is read in full.
        """
        try:
            body = bounded_body(self.config.max_body_bytes, length, read)
        except PayloadTooLarge as err:
            return error_response(err)
        return self.handle(ApiRequest(method, path, headers, body, query))

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every endpoint."""
        if self._openapi is None:
            self._openapi = openapi_document(self.operations)
        return self._openapi

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """This API as a WSGI application (for waitress, gunicorn or wsgiref)."""
        from bharatsend_core.http.wsgi import call_wsgi

        return call_wsgi(self, environ, start_response)

    # ------------------------------------------------------------------ auth

    def _authenticate(self, raw_key: str, scopes: Sequence[Scope]) -> tuple[str, str, bool]:
        principal = self._principals.get(raw_key)
        if principal is None:
            principal = self.bs.authenticate(raw_key)
            self._principals.put(raw_key, principal)
        if scopes and not principal.scopes & set(scopes):
            needed = " or ".join(s.value for s in scopes)
            raise InsufficientScope(f"this API key needs the {needed} scope", field="scope")
        return principal.tenant.id, principal.key.id, principal.sandbox

    # ------------------------------------------------------------------ operations

    def _operations(self) -> list[Operation]:
        o = Operation
        return [
            o("POST", "/v1/sms/send", "sendSms", "Send one message", "sms", self._send,
              _SEND, body=m.SendBody, response=m.Accepted, errors=(402, 409, 422, 429)),
            o("POST", "/v1/sms/batch", "sendBatch", "Send up to 1,000 messages", "sms",
              self._batch, _SEND, body=m.BatchBody, response=m.BatchOut, errors=(402, 422)),
            o("POST", "/v1/sms/estimate", "estimateSms", "Price and check without sending",
              "sms", self._estimate, _SEND, body=m.EstimateBody, response=m.EstimateOut,
              errors=(422,)),
            o("GET", "/v1/sms", "listSms", "List messages, newest first", "sms", self._list,
              _READ, query=m.MessageQuery, response=list[m.MessageOut], paginated=True,
              errors=(422,)),
            o("GET", "/v1/sms/{id}", "getSms", "A message with parts and timeline", "sms",
              self._get, _READ, response=m.MessageOut, errors=(404,)),
            o("GET", "/v1/balance", "getBalance", "The tenant's credits", "credits",
              self._balance, _BALANCE, response=m.BalanceOut),
            o("GET", "/v1/ledger", "getLedger", "Ledger statement, oldest first", "credits",
              self._ledger, _BALANCE, query=m.LedgerQuery, response=list[m.LedgerLineOut],
              paginated=True, errors=(422,)),
            o("GET", "/v1/dlt/entities", "listEntities", "Registered principal entities", "dlt",
              self._entities, _DLT_READ, response=list[m.EntityOut]),
            o("POST", "/v1/dlt/entities", "createEntity", "Register a principal entity", "dlt",
              self._create_entity, _DLT_WRITE, body=m.EntityBody, response=m.EntityOut,
              status=201, errors=(409, 422)),
            o("GET", "/v1/dlt/headers", "listHeaders", "Registered headers", "dlt",
              self._headers, _DLT_READ, response=list[m.HeaderOut]),
            o("POST", "/v1/dlt/headers", "createHeader", "Register a header (sender ID)", "dlt",
              self._create_header, _DLT_WRITE, body=m.HeaderBody, response=m.HeaderOut,
              status=201, errors=(404, 409, 422)),
            o("GET", "/v1/dlt/templates", "listTemplates", "Registered templates", "dlt",
              self._templates, _DLT_READ, response=list[m.TemplateOut]),
            o("POST", "/v1/dlt/templates", "createTemplate", "Register a content template",
              "dlt", self._create_template, _DLT_WRITE, body=m.TemplateBody,
              response=m.TemplateOut, status=201, errors=(404, 409, 422)),
            o("GET", "/v1/dlt/templates/{template_id}", "getTemplate", "One template", "dlt",
              self._template, _DLT_READ, response=m.TemplateOut, errors=(404,)),
            o("PATCH", "/v1/dlt/templates/{template_id}", "updateTemplate",
              "Change a template (history kept)", "dlt", self._update_template, _DLT_WRITE,
              body=m.TemplatePatch, response=m.TemplateOut, errors=(404, 422)),
            o("POST", "/v1/dlt/import", "importDltCsv", "Import a DLT portal CSV export", "dlt",
              self._import, _DLT_WRITE, body_type=CSV, query=m.ImportQuery,
              response=m.ImportOut, errors=(422,)),
            o("GET", "/v1/webhooks", "listWebhooks", "Webhook endpoints", "webhooks",
              self._webhooks, _HOOKS, response=list[m.WebhookOut]),
            o("POST", "/v1/webhooks", "createWebhook", "Add a webhook endpoint", "webhooks",
              self._create_webhook, _HOOKS, body=m.WebhookBody, response=m.WebhookOut,
              status=201, errors=(422,)),
            o("DELETE", "/v1/webhooks/{id}", "disableWebhook",
              "Disable an endpoint (history kept)", "webhooks", self._disable_webhook, _HOOKS,
              response=m.WebhookOut, errors=(404,)),
            o("POST", "/v1/webhooks/{id}/enable", "enableWebhook", "Enable an endpoint again",
              "webhooks", self._enable_webhook, _HOOKS, response=m.WebhookOut, errors=(404,)),
            o("POST", "/v1/webhooks/{id}/rotate-secret", "rotateWebhookSecret",
              "A new signing secret, with overlap", "webhooks", self._rotate, _HOOKS,
              body=m.RotateBody, response=m.WebhookOut, errors=(404, 422)),
            o("GET", "/v1/webhooks/{id}/attempts", "listWebhookAttempts",
              "Attempts at delivering an event", "webhooks", self._attempts, _HOOKS,
              query=m.AttemptsQuery, response=list[m.AttemptOut], errors=(404, 422)),
            o("POST", "/v1/webhooks/{id}/replay", "replayWebhook", "Deliver an event again",
              "webhooks", self._replay, _HOOKS, body=m.ReplayBody, response=m.ReplayOut,
              errors=(404, 422)),
            o("GET", "/v1/webhook-deliveries", "listWebhookDeliveries",
              "The webhook outbox, newest first", "webhooks", self._deliveries, _HOOKS,
              query=m.DeliveriesQuery, response=list[m.DeliveryOut], errors=(422,)),
            o("GET", "/v1/keys", "listKeys", "The tenant's API keys", "keys", self._keys,
              _KEYS, response=list[m.KeyOut]),
            o("POST", "/v1/keys", "createKey", "Issue an API key (shown once)", "keys",
              self._create_key, _KEYS, body=m.KeyBody, response=m.KeyOut, status=201,
              errors=(422,)),
            o("DELETE", "/v1/keys/{id}", "revokeKey", "Revoke an API key at once", "keys",
              self._revoke_key, _KEYS, response=m.KeyOut, errors=(404,)),
            o("GET", "/v1/openapi.json", "openapi", "This document", "meta", self._document,
              auth=False, raw=True),
            o("GET", "/healthz", "healthz", "The process is alive", "meta", self._healthz,
              auth=False, response=m.HealthOut),
            o("GET", "/readyz", "readyz", "Storage reachable and a worker alive", "meta",
              self._readyz, auth=False, response=m.HealthOut, errors=(503,)),
        ]  # fmt: skip

    # ------------------------------------------------------------------ sms

    def _send(self, call: Call) -> Reply:
        body: m.SendBody = call.body
        client_id = _client_id(body.client_message_id, call.request.header("idempotency-key"))
        result = self.bs.send(
            call.tenant_id,
            phone_number=body.phone_number,
            content=body.content,
            dlt_template_id=body.dlt_template_id,
            header=body.header,
            client_message_id=client_id,
            validity_seconds=body.validity_seconds,
            priority=body.priority,
            metadata=body.metadata,
            sandbox=call.sandbox,
        )
        headers = (("Idempotent-Replayed", "true"),) if result.replayed else ()
        return Reply(_accepted(result), headers=headers)

    def _batch(self, call: Call) -> Reply:
        body: m.BatchBody = call.body
        requests = [
            SendRequest(
                phone_number=item.phone_number,
                content=item.content,
                dlt_template_id=item.dlt_template_id,
                header=item.header,
                client_message_id=item.client_message_id,
                validity_seconds=item.validity_seconds,
                priority=item.priority,
                metadata=item.metadata,
            )
            for item in body.messages
        ]
        result = self.bs.send_batch(
            call.tenant_id, requests, all_or_nothing=body.all_or_nothing, sandbox=call.sandbox
        )
        items = [
            m.BatchItemOut(
                index=item.index,
                data=_accepted(item.result) if item.result is not None else None,
                error=_error_info(item.error) if item.error is not None else None,
                replayed=bool(item.result and item.result.replayed),
            )
            for item in result.items
        ]
        return Reply(m.BatchOut(accepted=result.accepted, rejected=result.rejected, items=items))

    def _estimate(self, call: Call) -> Reply:
        body: m.EstimateBody = call.body
        estimate = self.bs.estimate(
            call.tenant_id,
            phone_number=body.phone_number or "",
            content=body.content,
            dlt_template_id=body.dlt_template_id,
            header=body.header,
            sandbox=call.sandbox,
        )
        return Reply(
            m.EstimateOut(
                segments=estimate.segments,
                encoding=estimate.encoding,
                units=estimate.units,
                price_paise=estimate.price_paise,
                dlt_ok=estimate.dlt_ok,
                dlt_error=_error_info(estimate.dlt_error) if estimate.dlt_error else None,
            )
        )

    def _get(self, call: Call) -> Reply:
        message = self.bs.get_message(call.tenant_id, call.params["id"])
        return Reply(message_out(message, timeline=True))

    def _list(self, call: Call) -> Reply:
        query: m.MessageQuery = call.query
        page = self.bs.list_messages(
            call.tenant_id,
            status=query.status,
            phone=query.phone_number,
            client_message_id=query.client_message_id,
            template_id=query.dlt_template_id,
            created_from=query.created_from,
            created_to=query.created_to,
            after=_decode_cursor(query.cursor),
            limit=query.limit,
        )
        data = [message_out(msg, timeline=False) for msg in page.messages]
        cursor = _encode_cursor(page.messages[-1]) if page.has_more and page.messages else None
        return Reply(data, has_more=page.has_more, next_cursor=cursor)

    # ------------------------------------------------------------------ credits

    def _balance(self, call: Call) -> Reply:
        balance = self.bs.balance(call.tenant_id)
        return Reply(
            m.BalanceOut(
                available_paise=balance.available_paise,
                posted_paise=balance.posted_paise,
                reserved_paise=balance.reserved_paise,
            )
        )

    def _ledger(self, call: Call) -> Reply:
        query: m.LedgerQuery = call.query
        after = None
        if query.cursor is not None:
            if not query.cursor.isdigit() or len(query.cursor) > 18:
                raise InvalidArgument("cursor is not one this API gave out", field="cursor")
            after = int(query.cursor)
        statement = self.bs.statement(call.tenant_id, after=after, limit=query.limit)
        lines = [
            m.LedgerLineOut(
                id=line.transfer.id,
                kind=line.transfer.kind.value,
                amount_paise=line.transfer.amount,
                delta_paise=line.delta,
                balance_after_paise=line.balance_after,
                created_at=line.transfer.created_at,
                message_id=line.transfer.message_id,
                reference=line.transfer.reference,
            )
            for line in statement.lines
        ]
        cursor = None if statement.next_cursor is None else str(statement.next_cursor)
        return Reply(lines, has_more=cursor is not None, next_cursor=cursor)

    # ------------------------------------------------------------------ DLT

    def _entities(self, call: Call) -> Reply:
        return Reply([m.EntityOut(e.pe_id, e.name) for e in self.bs.list_entities(call.tenant_id)])

    def _create_entity(self, call: Call) -> Reply:
        body: m.EntityBody = call.body
        entity = self.bs.register_entity(call.tenant_id, body.pe_id, body.name)
        return Reply(m.EntityOut(entity.pe_id, entity.name), status=201)

    def _headers(self, call: Call) -> Reply:
        return Reply(
            [
                m.HeaderOut(h.sender_id, h.entity_id, h.category.value, h.active)
                for h in self.bs.list_headers(call.tenant_id)
            ]
        )

    def _create_header(self, call: Call) -> Reply:
        body: m.HeaderBody = call.body
        h = self.bs.register_header(
            call.tenant_id, body.sender_id, category=body.category, entity_id=body.entity_id
        )
        return Reply(m.HeaderOut(h.sender_id, h.entity_id, h.category.value, h.active), status=201)

    def _templates(self, call: Call) -> Reply:
        return Reply([template_out(t) for t in self.bs.list_templates(call.tenant_id)])

    def _template(self, call: Call) -> Reply:
        return Reply(template_out(self.bs.get_template(call.tenant_id, call.params["template_id"])))

    def _create_template(self, call: Call) -> Reply:
        body: m.TemplateBody = call.body
        registered = self.bs.register_template(
            call.tenant_id,
            template_id=body.template_id,
            body=body.body,
            category=body.category,
            headers=body.headers,
            entity_id=body.entity_id,
            content_type=body.content_type,
            name=body.name,
        )
        return Reply(registered_out(registered), status=201)

    def _update_template(self, call: Call) -> Reply:
        body: m.TemplatePatch = call.body
        registered = self.bs.update_template(
            call.tenant_id,
            call.params["template_id"],
            body=body.body,
            category=body.category,
            headers=body.headers,
            content_type=body.content_type,
            active=body.active,
        )
        return Reply(registered_out(registered))

    def _import(self, call: Call) -> Reply:
        query: m.ImportQuery = call.query
        report = self.bs.import_dlt_csv(call.tenant_id, call.body, pe_id=query.pe_id)
        return Reply(
            m.ImportOut(
                created=list(report.created),
                updated=list(report.updated),
                unchanged=list(report.unchanged),
                entities_created=list(report.entities_created),
                headers_created=list(report.headers_created),
                headers_updated=list(report.headers_updated),
                warnings=[f"line {w.line}: {w.code}: {w.message}" for w in report.warnings],
                skipped=[f"line {s.line}: {s.template_id}: {s.reason}" for s in report.skipped],
            )
        )

    # ------------------------------------------------------------------ webhooks

    def _webhooks(self, call: Call) -> Reply:
        return Reply([webhook_out(e) for e in self.bs.list_webhook_endpoints(call.tenant_id)])

    def _create_webhook(self, call: Call) -> Reply:
        body: m.WebhookBody = call.body
        created = self.bs.add_webhook_endpoint(call.tenant_id, body.url, events=body.events)
        return Reply(webhook_out(created.endpoint, created.secret), status=201)

    def _disable_webhook(self, call: Call) -> Reply:
        endpoint = self.bs.disable_webhook_endpoint(call.tenant_id, call.params["id"])
        return Reply(webhook_out(endpoint))

    def _enable_webhook(self, call: Call) -> Reply:
        endpoint = self.bs.enable_webhook_endpoint(call.tenant_id, call.params["id"])
        return Reply(webhook_out(endpoint))

    def _rotate(self, call: Call) -> Reply:
        body: m.RotateBody = call.body
        created = self.bs.rotate_webhook_secret(
            call.tenant_id, call.params["id"], overlap_seconds=body.overlap_seconds
        )
        return Reply(webhook_out(created.endpoint, created.secret))

    def _endpoint(self, call: Call) -> WebhookEndpoint:
        wanted = call.params["id"]
        for endpoint in self.bs.list_webhook_endpoints(call.tenant_id):
            if endpoint.id == wanted:
                return endpoint
        raise WebhookEndpointNotFound(f"no webhook endpoint {wanted[:64]!r}", field="id")

    def _attempts(self, call: Call) -> Reply:
        endpoint = self._endpoint(call)
        query: m.AttemptsQuery = call.query
        attempts = self.bs.webhook_attempts(call.tenant_id, query.event_id, endpoint.id)
        return Reply(
            [
                m.AttemptOut(
                    number=a.number,
                    at=a.at,
                    status=a.status,
                    latency_ms=a.latency_ms,
                    error=a.error,
                    response_snippet=a.response_snippet,
                )
                for a in attempts
            ]
        )

    def _replay(self, call: Call) -> Reply:
        endpoint = self._endpoint(call)
        body: m.ReplayBody = call.body
        queued = self.bs.replay_webhook(call.tenant_id, body.event_id, endpoint.id)
        if not queued:
            raise WebhookEndpointNotFound(
                "no delivery of that event to this endpoint", field="event_id"
            )
        return Reply(m.ReplayOut(body.event_id, endpoint.id, queued))

    def _deliveries(self, call: Call) -> Reply:
        query: m.DeliveriesQuery = call.query
        entries = self.bs.webhook_deliveries(call.tenant_id, state=query.state, limit=query.limit)
        return Reply(
            [
                m.DeliveryOut(
                    event_id=e.event_id,
                    endpoint_id=e.endpoint_id,
                    event_type=e.event_type,
                    state=e.state,
                    attempts=e.attempts,
                    created_at=e.created_at,
                    next_attempt_at=e.next_attempt_at,
                    last_error=e.last_error,
                )
                for e in entries
            ]
        )

    # ------------------------------------------------------------------ keys

    def _keys(self, call: Call) -> Reply:
        return Reply([key_out(k) for k in self.bs.list_api_keys(call.tenant_id)])

    def _create_key(self, call: Call) -> Reply:
        body: m.KeyBody = call.body
        expires = None
        if body.expires_at is not None:
            try:
                expires = datetime.fromisoformat(body.expires_at)
            except ValueError:
                raise InvalidArgument(
                    "expires_at must be an ISO 8601 date-time", field="expires_at"
                ) from None
            if expires.tzinfo is None:
                raise InvalidArgument("expires_at needs a time zone", field="expires_at")
        mode = body.mode
        if call.sandbox and mode == "live":
            # A test key must not mint a live one: that would escape the sandbox.
            raise InsufficientScope("a test key can only create test keys", field="mode")
        issued = self.bs.create_api_key(
            call.tenant_id, scopes=body.scopes, mode=mode, name=body.name, expires_at=expires
        )
        return Reply(key_out(issued.key, issued.secret), status=201)

    def _revoke_key(self, call: Call) -> Reply:
        revoked = self.bs.revoke_api_key(call.tenant_id, call.params["id"])
        self._principals.clear()  # revoked through this process: effective at once
        return Reply(key_out(revoked))

    # ------------------------------------------------------------------ meta

    def _document(self, _call: Call) -> Reply:
        return Reply(self.openapi())

    def _healthz(self, _call: Call) -> Reply:
        return Reply(m.HealthOut(status="ok", checks={"process": "ok"}))

    def _readyz(self, _call: Call) -> Reply:
        checks: dict[str, str] = {}
        ready = True
        try:
            self.bs.ping()
            checks["storage"] = "ok"
        except BharatSendError as err:
            checks["storage"] = err.code
            ready = False
        max_age = self.config.worker_heartbeat_max_age
        if max_age is not None and self._heartbeats is not None:
            age = self._heartbeats()
            if age is None:
                checks["worker"] = "no heartbeat"
                ready = False
            elif age > max_age:
                checks["worker"] = f"last heartbeat {age:.0f}s ago"
                ready = False
            else:
                checks["worker"] = "ok"
        if ready:
            return Reply(m.HealthOut(status="ok", checks=checks))
        return Reply(m.HealthOut(status="unavailable", checks=checks), status=503)


# --------------------------------------------------------------------------- rendering


def _client_id(body_id: str | None, header_id: str | None) -> str | None:
    if header_id is not None:
        header_id = header_id.strip()
        if not 1 <= len(header_id) <= 64:
            raise InvalidArgument(
                "the Idempotency-Key header must be 1 to 64 characters", field="idempotency-key"
            )
        if body_id is not None and body_id != header_id:
            raise InvalidArgument(
                "client_message_id and the Idempotency-Key header differ; give one",
                field="client_message_id",
            )
        return header_id
    return body_id


def _accepted(result: SendResult) -> m.Accepted:
    message = result.message
    return m.Accepted(
        id=message.id,
        status=message.status.value,
        client_message_id=message.client_message_id,
        segments=message.segments,
        encoding=message.encoding,
        created_at=message.created_at,
        price_paise=message.price_paise,
    )


def _error_info(err: BharatSendError) -> m.ErrorInfo:
    return m.ErrorInfo(code=err.code, message=err.message, field=err.field)


def message_out(message: Message, *, timeline: bool) -> m.MessageOut:
    """The API's view of a message (never the raw row)."""
    error = message.error
    return m.MessageOut(
        id=message.id,
        status=message.status.value,
        client_message_id=message.client_message_id,
        phone_number=message.phone,
        header=message.header,
        dlt_template_id=message.template_id,
        category=message.category,
        segments=message.segments,
        encoding=message.encoding,
        price_paise=message.price_paise,
        priority=message.priority,
        sandbox=message.sandbox,
        route=message.route,
        attempts=message.attempts,
        possible_duplicate=message.possible_duplicate,
        error=None
        if error is None
        else m.FailureOut(error.code, error.reason.value, error.carrier_code),
        metadata=dict(message.metadata),
        created_at=message.created_at,
        updated_at=message.updated_at,
        expires_at=message.expires_at,
        parts=[
            m.PartOut(
                index=p.index,
                status=p.status.value,
                carrier_message_id=p.carrier_message_id,
                route=p.route,
                submitted_at=p.submitted_at,
                final_at=p.final_at,
                error_code=p.error_code,
            )
            for p in message.parts
        ],
        timeline=[
            m.TimelineOut(
                sequence=t.sequence, at=t.at, kind=t.kind, status=t.status.value,
                detail=dict(t.detail),
            )
            for t in message.timeline
        ]
        if timeline
        else None,
    )  # fmt: skip


def template_out(t: Template) -> m.TemplateOut:
    """The API's view of a template."""
    return m.TemplateOut(
        template_id=t.template_id,
        entity_id=t.entity_id,
        category=t.category.value,
        body=t.body,
        content_type=t.content_type.value,
        headers=sorted(t.headers),
        active=t.active,
        name=t.name,
    )


def registered_out(registered: RegisteredTemplate) -> m.TemplateOut:
    """A template as just registered or changed, with its warnings and version."""
    out = template_out(registered.template)
    return attrs.evolve(
        out,
        warnings=[f"{w.code}: {w.message}" for w in registered.warnings],
        version=registered.version,
    )


def webhook_out(endpoint: WebhookEndpoint, secret: str | None = None) -> m.WebhookOut:
    """The API's view of an endpoint (the secret only when just made)."""
    return m.WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        secret=secret,
    )


def key_out(key: ApiKey, secret: str | None = None) -> m.KeyOut:
    """The API's view of a key (the full key only when just issued)."""
    return m.KeyOut(
        id=key.id,
        prefix=key.prefix,
        mode=key.mode.value,
        name=key.name,
        scopes=sorted(s.value for s in key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        key=secret,
    )


def _encode_cursor(message: Message) -> str:
    raw = f"{message.created_at.isoformat()}|{message.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, message_id = raw.partition("|")
        parsed = datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor is not one this API gave out", field="cursor") from None
    if parsed.tzinfo is None or not message_id:
        raise InvalidArgument("cursor is not one this API gave out", field="cursor")
    return parsed, message_id
