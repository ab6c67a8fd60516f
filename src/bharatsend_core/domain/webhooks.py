"""Webhook rules that need no I/O: which targets are allowed (the SSRF guard) and when to retry.

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

import ipaddress
from datetime import timedelta
from typing import Final
from urllib.parse import SplitResult, urlsplit

from bharatsend_core.domain.errors import WebhookUrlForbidden

__all__ = ["DEFAULT_RETRY_SCHEDULE", "check_url", "refused_address"]

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
