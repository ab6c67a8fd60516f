"""The webhook transport on httpx, with the SSRF guard applied to the address actually used.

A hostname is resolved here, every address it resolves to is checked with
``domain.webhooks.refused_address``, and the request goes to the vetted IP
(the ``Host`` header and TLS SNI/certificate name stay the hostname). So a
name that resolves to a public address when the endpoint is created and to
169.254.169.254 later (DNS rebinding) is refused at connect time. Redirects
are never followed: a 3xx is a failed delivery like any other non-2xx.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from bharatsend_core.domain.webhooks import refused_address
from bharatsend_core.ports.webhook_transport import TransportResult

__all__ = ["HttpxTransport"]

_SNIPPET = 512


class HttpxTransport:
    """A :class:`~bharatsend_core.ports.webhook_transport.WebhookTransport` on one httpx client."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        user_agent: str = "bharatsend-webhooks/1",
    ) -> None:
        self.allow_private = allow_private
        self._user_agent = user_agent
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> TransportResult:
        """POST once; a refused address, a timeout or a broken connection is an ``error``."""
        started = time.perf_counter()
        parts = urlsplit(url)
        host = parts.hostname or ""
        send_headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            **headers,
        }
        extensions: dict[str, object] = {}
        target = url
        if not self.allow_private:
            try:
                infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
            except OSError:
                return TransportResult(None, _ms(started), "dns_failed")
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            for address in addresses:
                reason = refused_address(address)
                if reason is not None:
                    return TransportResult(None, _ms(started), f"forbidden_address:{reason}")
            if not addresses:
                return TransportResult(None, _ms(started), "dns_failed")
            chosen = addresses[0]
            literal = f"[{chosen}]" if ":" in chosen else chosen
            netloc = literal if parts.port is None else f"{literal}:{parts.port}"
            target = urlunsplit(parts._replace(netloc=netloc))
            send_headers["host"] = parts.netloc.rsplit("@", 1)[-1]
            extensions["sni_hostname"] = host
        try:
            response = self._client.post(
                target, content=body, headers=send_headers, extensions=extensions
            )
        except httpx.TimeoutException:
            return TransportResult(None, _ms(started), "timeout")
        except httpx.HTTPError as e:
            return TransportResult(None, _ms(started), f"connect_failed:{type(e).__name__}")
        snippet = response.content[:_SNIPPET].decode("utf-8", "replace")
        return TransportResult(response.status_code, _ms(started), None, snippet)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
