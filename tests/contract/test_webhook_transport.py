"""The webhook transport contract: the same cases on the urllib3 adapter and the memory one."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from bharatsend_core.adapters.http import HttpTransport
from bharatsend_core.adapters.memory.webhook_transport import MemoryTransport
from bharatsend_core.ports.webhook_transport import WebhookTransport


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        status = 503 if self.path == "/down" else 200
        self.send_response(status)
        self.send_header("content-length", "9")
        self.end_headers()
        self.wfile.write(b"answer-ok")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(params=["memory", "http"])
def transport_and_url(request: pytest.FixtureRequest) -> Iterator[tuple[WebhookTransport, str]]:
    if request.param == "memory":
        memory = MemoryTransport()
        yield memory, "http://127.0.0.1:9/hooks"
        memory.close()
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    http = HttpTransport(allow_private=True)
    yield http, f"http://127.0.0.1:{server.server_address[1]}/hooks"
    http.close()
    http.close()  # idempotent
    server.shutdown()
    server.server_close()


def test_a_healthy_receiver_answers_2xx_with_a_snippet(
    transport_and_url: tuple[WebhookTransport, str],
) -> None:
    transport, url = transport_and_url
    result = transport.post(url, {"webhook-id": "evt_1"}, b'{"type":"sms.sent"}')
    assert result.status == 200
    assert result.error is None
    assert result.latency_ms >= 0
    assert result.body_snippet


def test_a_failing_receiver_is_a_result_not_an_exception(
    transport_and_url: tuple[WebhookTransport, str],
) -> None:
    transport, url = transport_and_url
    if isinstance(transport, MemoryTransport):
        transport.script(503)
    result = transport.post(url.replace("/hooks", "/down"), {}, b"{}")
    assert result.status == 503
