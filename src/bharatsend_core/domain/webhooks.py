"""Webhook rules that need no I/O: the events, which targets are allowed, and when to retry.

Events come from the message timeline: :func:`events_from` turns the entries a
state change appended into ``sms.*`` events, so the outbox row can be written in
the same transaction as the change. An event's id is derived from the message
id and the timeline sequence, so writing it twice (a retried transaction) can
never produce two different events, and receivers deduplicate on it.

A webhook URL is the tenant's input, and the worker will connect to it from
inside the operator's network, so it must never reach private, loopback,
link-local, multicast or reserved addresses (cloud metadata at
169.254.169.254 included) unless the operator allows it for development.
:func:`check_url` refuses what the URL alone gives away (scheme, credentials,
an IP literal in a refused range) when an endpoint is created;
:func:`refused_address` is asked again for the address actually connected to,
on every delivery, because DNS can change between the two (rebinding).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

import attrs
from attrs import frozen

from bharatsend_core.domain.errors import InvalidArgument, WebhookUrlForbidden
from bharatsend_core.domain.message import Message, TimelineEntry

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "EVENT_TYPES",
    "SECRET_PREFIX",
    "EndpointSecret",
    "WebhookEndpoint",
    "WebhookEvent",
    "check_filters",
    "check_url",
    "events_from",
    "generate_secret",
    "makes_events",
    "refused_address",
    "secret_key",
    "sign",
    "signature",
    "signature_headers",
    "wants",
]

#: Every event type an endpoint can subscribe to.
EVENT_TYPES: Final = ("sms.accepted", "sms.sent", "sms.delivered", "sms.failed", "sms.retrying")

# Timeline entry kind -> event type. Final folds other than delivery are failures.
_KIND_TYPES: Final = {
    "accepted": "sms.accepted",
    "sent": "sms.sent",
    "delivered": "sms.delivered",
    "undelivered": "sms.failed",
    "expired": "sms.failed",
    "rejected": "sms.failed",
    "failed": "sms.failed",
    "retry_scheduled": "sms.retrying",
}


@frozen
class WebhookEvent:
    """One event for the outbox: its stable id, type, the message it is about, and the body."""

    id: str
    type: str
    tenant_id: str
    message_id: str
    sequence: int
    at: datetime
    #: The JSON body (``type``, ``timestamp``, ``data``); never the message content.
    payload: dict[str, Any]


def _event_id(message_id: str, sequence: int) -> str:
    return f"evt_{message_id.removeprefix('msg_')}_{sequence}"


def _payload(message: Message, entry: TimelineEntry, event_type: str) -> dict[str, Any]:
    error = message.error
    data: dict[str, Any] = {
        "id": message.id,
        "client_message_id": message.client_message_id,
        "status": entry.status.value,
        "segments": message.segments,
        "route": message.route,
        "attempts": message.attempts,
        "sequence": entry.sequence,
        "error": None,
        # The caller's own object, echoed so a receiver can correlate without a lookup.
        "metadata": dict(message.metadata),
    }
    if event_type == "sms.failed" and error is not None:
        data["error"] = {
            "code": error.code,
            "reason": error.reason.value,
            "carrier_code": error.carrier_code,
        }
    if event_type == "sms.retrying":
        data["next_attempt_at"] = entry.get("retry_at")
    if message.possible_duplicate:
        data["possible_duplicate"] = True
    return {"type": event_type, "timestamp": entry.at.isoformat(), "data": data}


def makes_events(message: Message, after_sequence: int = -1) -> bool:
    """Whether :func:`events_from` would return any event, without building one.

    A claim (``claimed``) or a part submitted makes none, so the unit of work
    recording it need not read the tenant's endpoints.
    """
    for entry in reversed(message.timeline):  # the newest first; sequences only grow
        if entry.sequence <= after_sequence:
            return False
        if entry.kind in _KIND_TYPES:
            return True
    return False


def events_from(message: Message, after_sequence: int = -1) -> tuple[WebhookEvent, ...]:
    """The events of the timeline entries after ``after_sequence`` (all of them by default).

    Pass the length of the timeline as it was before a change minus one to get
    exactly the events that change produced. Entries that are not status
    changes (a part submitted, a receipt that changed nothing) make no event.
    """
    events = []
    for entry in message.timeline:
        if entry.sequence <= after_sequence:
            continue
        event_type = _KIND_TYPES.get(entry.kind)
        if event_type is None:
            continue
        events.append(
            WebhookEvent(
                id=_event_id(message.id, entry.sequence),
                type=event_type,
                tenant_id=message.tenant_id,
                message_id=message.id,
                sequence=entry.sequence,
                at=entry.at,
                payload=_payload(message, entry, event_type),
            )
        )
    return tuple(events)


def check_filters(patterns: Iterable[str]) -> tuple[str, ...]:
    """An endpoint's event filter, validated: exact types or ``sms.*`` / ``*`` patterns."""
    checked = tuple(dict.fromkeys(patterns))
    if not checked:
        raise InvalidArgument("an endpoint subscribes to at least one event type", field="events")
    for pattern in checked:
        if not isinstance(pattern, str) or not any(
            fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES
        ):
            raise InvalidArgument(
                f"{pattern!r} matches no event type; use one of {list(EVENT_TYPES)} or 'sms.*'",
                field="events",
            )
    return checked


def wants(patterns: Iterable[str], event_type: str) -> bool:
    """True when an endpoint's filter selects ``event_type``."""
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


#: When to try again after each failed attempt (Standard Webhooks' usual ladder).
DEFAULT_RETRY_SCHEDULE: Final[tuple[timedelta, ...]] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
_MAX_URL: Final = 2048


def refused_address(address: str) -> str | None:
    """Why ``address`` must not be connected to (``"loopback"``...), or None when it may be.

    IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged as the IPv4
    address they carry; anything not globally routable is refused.
    """
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return "not_an_address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link_local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if hit:
            return reason
    return None if ip.is_global else "not_global"


def check_url(url: str, *, allow_private: bool = False) -> SplitResult:
    """The parsed URL of a webhook endpoint, or ``WebhookUrlForbidden`` saying why not.

    https only (http too with ``allow_private``, for development), a host, no
    credentials in the URL, and an IP-literal host must pass
    :func:`refused_address` unless ``allow_private``. Hostnames are checked at
    connect time instead.
    """
    if not isinstance(url, str) or not url or len(url) > _MAX_URL or url != url.strip():
        raise WebhookUrlForbidden("a webhook URL is a non-empty absolute URL", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlForbidden("the webhook URL cannot be parsed", field="url") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlForbidden(
            "a webhook URL must be https (plain http only with webhooks_allow_private)",
            field="url",
        )
    if not parts.hostname:
        raise WebhookUrlForbidden("the webhook URL has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlForbidden("credentials do not belong in a webhook URL", field="url")
    if port == 0:
        raise WebhookUrlForbidden("port 0 is not a webhook port", field="url")
    reason = refused_address(parts.hostname)
    if reason not in (None, "not_an_address") and not allow_private:
        raise WebhookUrlForbidden(
            f"the webhook host is a {reason.replace('_', '-')} address", field="url"
        )
    return parts


# --------------------------------------------------------------------------- endpoints


@frozen
class EndpointSecret:
    """One signing secret; a rotated-out secret still signs until ``retires_at``."""

    secret: str = attrs.field(repr=False)
    created_at: datetime
    retires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """True while deliveries are signed with it."""
        return self.retires_at is None or now < self.retires_at


@frozen
class WebhookEndpoint:
    """Where a tenant wants its events: URL, filter, secrets, and its health.

    Immutable like the message: every change returns a new value. ``failing_since``
    is the start of the current run of failed deliveries (None while healthy),
    so "failing for N days" needs no history.
    """

    id: str
    tenant_id: str
    url: str
    events: tuple[str, ...]
    secrets: tuple[EndpointSecret, ...]
    created_at: datetime
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets a delivery at ``now`` is signed with, newest first."""
        return tuple(s.secret for s in self.secrets if s.active(now))

    def rotated(self, new_secret: str, now: datetime, overlap: timedelta) -> WebhookEndpoint:
        """Add ``new_secret``; the others keep signing for ``overlap``, then retire.

        Receivers switch to the new secret during the overlap while both
        signatures are sent, so a rotation never breaks verification.
        """
        if overlap < timedelta(0):
            raise InvalidArgument("the overlap cannot be negative", field="overlap")
        kept = tuple(
            attrs.evolve(s, retires_at=min(s.retires_at or now + overlap, now + overlap))
            for s in self.secrets
            if s.active(now)
        )
        return attrs.evolve(self, secrets=(EndpointSecret(new_secret, now), *kept))

    def delivered(self) -> WebhookEndpoint:
        """A delivery succeeded: the endpoint is healthy again."""
        return self if self.failing_since is None else attrs.evolve(self, failing_since=None)

    def failed(self, now: datetime, disable_after: timedelta) -> WebhookEndpoint:
        """A delivery failed for good (retries spent); disabled once failing ``disable_after``."""
        since = self.failing_since or now
        if now - since >= disable_after:
            return attrs.evolve(self, failing_since=since, enabled=False, disabled_reason="failing")
        return attrs.evolve(self, failing_since=since)

    def gone(self) -> WebhookEndpoint:
        """The receiver answered 410 Gone: stop sending."""
        return attrs.evolve(self, enabled=False, disabled_reason="gone")


# --------------------------------------------------------------------------- signatures
# The Standard Webhooks scheme; ``bharatsend_core.webhooks`` re-exports these for receivers.

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a format prefix, not a secret
_MIN_KEY_BYTES: Final = 24


def generate_secret(random_bytes: bytes) -> str:
    """A new ``whsec_`` secret from at least 24 random bytes (the caller draws them)."""
    if not isinstance(random_bytes, bytes) or len(random_bytes) < _MIN_KEY_BYTES:
        raise InvalidArgument(
            f"a webhook secret needs at least {_MIN_KEY_BYTES} random bytes", field="secret"
        )
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ``InvalidArgument`` for anything else."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidArgument("a webhook secret starts with 'whsec_'", field="secret")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("a webhook secret is 'whsec_' + base64", field="secret") from None
    if len(key) < _MIN_KEY_BYTES:
        raise InvalidArgument(
            f"a webhook secret holds at least {_MIN_KEY_BYTES} bytes", field="secret"
        )
    return key


def signature(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under ``key``."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(secrets: Iterable[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<sig>`` per secret, space-separated."""
    keys = [secret_key(s) for s in secrets]
    if not keys:
        raise InvalidArgument("at least one secret is needed to sign", field="secrets")
    if not event_id or any(c in event_id for c in ". \n"):
        raise InvalidArgument("an event id is non-empty, without dots or spaces", field="id")
    return " ".join(f"v1,{signature(k, event_id, timestamp, body)}" for k in keys)


def signature_headers(
    secrets: Iterable[str], event_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, event_id, timestamp, body),
    }
