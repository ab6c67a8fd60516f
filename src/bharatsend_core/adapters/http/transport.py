"""The webhook transport on urllib3, with the SSRF guard applied to the address actually used.

A hostname is resolved here, every address it resolves to is checked with
``domain.webhooks.refused_address``, and the request goes to the vetted IP
(the ``Host`` header, TLS SNI and certificate check keep the hostname). So a
name that resolves to a public address when the endpoint is created and to
169.254.169.254 later (DNS rebinding) is refused at connect time. Redirects
are never followed and nothing is retried here: a 3xx is a failed delivery
like any other non-2xx, and the retry ladder belongs to the deliverer.

urllib3 rather than httpx: on this kind of machine it posts 2-2.5x more
requests per second from Python threads (benchmarks/README.md), and webhooks
are a throughput path.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from bharatsend_core.domain.webhooks import refused_address
from bharatsend_core.ports.webhook_transport import TransportResult

__all__ = ["HttpTransport"]

_SNIPPET = 512


class HttpTransport:
    """The ``WebhookTransport`` port on urllib3 connection pools (one per vetted address)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        pool_size: int = 32,
        user_agent: str = "bharatsend-webhooks/1",
        ca_certs: str | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._pool_size = pool_size
        self._user_agent = user_agent
        #: A CA bundle to trust instead of the system's (a private CA, tests).
        self._ca_certs = ca_certs
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, address, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                options = {"maxsize": self._pool_size, "block": True, "timeout": self._timeout}
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        port,
                        server_hostname=host,
                        assert_hostname=host,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=self._ca_certs,
                        **options,  # type: ignore[arg-type]
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, **options)  # type: ignore[arg-type]
                self._pools[key] = pool
            return pool

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> TransportResult:
        """POST once; a refused address, a timeout or a broken connection is an ``error``."""
        started = time.perf_counter()
        parts = urlsplit(url)
        host = parts.hostname or ""
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return TransportResult(None, _ms(started), "dns_failed")
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            return TransportResult(None, _ms(started), "dns_failed")
        if not self.allow_private:
            for address in addresses:
                reason = refused_address(address)
                if reason is not None:
                    return TransportResult(None, _ms(started), f"forbidden_address:{reason}")
        send_headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            **headers,
            "host": parts.netloc.rsplit("@", 1)[-1],
        }
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        try:
            response = self._pool(scheme, addresses[0], port, host).urlopen(
                "POST",
                path,
                body=body,
                headers=send_headers,
                redirect=False,
                retries=False,
                preload_content=True,
            )
        except NewConnectionError as e:  # a subclass of urllib3's TimeoutError: check first
            return TransportResult(None, _ms(started), f"connect_failed:{type(e).__name__}")
        except TimeoutError:
            return TransportResult(None, _ms(started), "timeout")
        except (HTTPError, OSError) as e:
            return TransportResult(None, _ms(started), f"connect_failed:{type(e).__name__}")
        snippet = response.data[:_SNIPPET].decode("utf-8", "replace")
        return TransportResult(response.status, _ms(started), None, snippet)

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
