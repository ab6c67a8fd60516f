"""Webhooks over real HTTP: a loopback receiver verifies what the worker signs; the SSRF guard."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.adapters.http import HttpTransport
from bharatsend_core.domain.errors import WebhookSignatureInvalid
from bharatsend_core.service.webhook_delivery import WebhookDeliverer
from bharatsend_core.webhooks import verify

from ..unit.service.world import OTP_TEMPLATE, OTP_TEXT, PEPPER, make_world


class Receiver:
    """A loopback HTTP server that verifies each delivery with the shipped ``verify``."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.redirected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    event = verify(receiver.secret, dict(self.headers), body)
                except WebhookSignatureInvalid as e:
                    receiver.refused.append(e.code)
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.events.append(event)
                self.send_response(receiver.status)
                if receiver.status in (301, 302):
                    self.send_header("location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _world(allow_private: bool = True) -> Any:
    bs = BharatSend.in_memory(key_pepper=PEPPER, webhooks_allow_private=allow_private)
    return make_world(bs, None)  # type: ignore[arg-type]


def _deliverer(world: Any, transport: HttpTransport) -> WebhookDeliverer:
    deliverer: WebhookDeliverer = world.bs.webhook_deliverer(
        transport=transport, owner="it", concurrency=8
    )
    return deliverer


def _send(world: Any, n: int = 1) -> None:
    for _ in range(n):
        world.bs.send(
            world.tenant_id,
            phone_number="+919812345678",
            content=OTP_TEXT,
            dlt_template_id=OTP_TEMPLATE,
        )


def test_signed_events_reach_a_real_receiver_that_verifies_them(receiver: Receiver) -> None:
    world = _world()
    ep = world.bs.add_webhook_endpoint(world.tenant_id, receiver.url)
    receiver.secret = ep.secret
    _send(world, 5)
    transport = HttpTransport(allow_private=True)
    try:
        assert _deliverer(world, transport).run_once() == 5
    finally:
        transport.close()
    assert receiver.refused == []
    assert [e["type"] for e in receiver.events] == ["sms.accepted"] * 5
    assert {e.state for e in world.bs.webhook_deliveries(world.tenant_id)} == {"delivered"}


def test_a_wrong_secret_and_a_redirect_are_failed_deliveries(receiver: Receiver) -> None:
    world = _world()
    world.bs.add_webhook_endpoint(world.tenant_id, receiver.url)
    receiver.secret = "whsec_" + "A" * 40  # not the endpoint's secret
    _send(world)
    transport = HttpTransport(allow_private=True)
    try:
        _deliverer(world, transport).run_once()
        [entry] = world.bs.webhook_deliveries(world.tenant_id)
        assert entry.state == "pending"
        assert entry.last_status == 400
        assert receiver.refused == ["webhook_signature_invalid"]
    finally:
        transport.close()


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    world = _world()
    ep = world.bs.add_webhook_endpoint(world.tenant_id, receiver.url)
    receiver.secret = ep.secret
    receiver.status = 302
    _send(world)
    transport = HttpTransport(allow_private=True)
    try:
        _deliverer(world, transport).run_once()
    finally:
        transport.close()
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.last_status == 302
    assert entry.state == "pending"


def test_a_slow_receiver_times_out_and_a_closed_port_is_refused() -> None:
    slow = Receiver(delay=1.0)
    try:
        transport = HttpTransport(allow_private=True, read_timeout=0.2)
        result = transport.post(slow.url, {}, b"{}")
        assert result.status is None
        assert result.error == "timeout"
        closed = transport.post("http://127.0.0.1:1/hooks", {}, b"{}")
        assert closed.status is None
        assert closed.error is not None
        assert closed.error.startswith("connect_failed")
        transport.close()
    finally:
        slow.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1:9/x", "loopback"),
        ("https://localhost:9/x", "loopback"),
        ("https://[::1]:9/x", "loopback"),
        ("https://10.0.0.1:9/x", "private"),
        ("https://169.254.169.254/latest", "link_local"),
    ],
)
def test_the_guard_refuses_internal_addresses_at_connect_time(url: str, reason: str) -> None:
    transport = HttpTransport(allow_private=False)
    try:
        result = transport.post(url, {}, b"{}")
    finally:
        transport.close()
    assert result.status is None
    assert result.error == f"forbidden_address:{reason}"


def test_the_guard_holds_even_if_the_endpoint_was_created_with_a_hostname() -> None:
    # A hostname passes creation (no DNS there); what it resolves to is checked per delivery.
    world = _world(allow_private=False)
    world.bs.add_webhook_endpoint(world.tenant_id, "https://localhost:9/hooks")
    _send(world)
    transport = HttpTransport(allow_private=False)
    try:
        _deliverer(world, transport).run_once()
    finally:
        transport.close()
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.last_error == "forbidden_address:loopback"
    assert json.dumps(entry.payload)  # still stored for a replay


def test_a_running_worker_delivers_every_status_change(receiver: Receiver) -> None:
    from bharatsend_core.adapters.memory.carrier import MemoryCarrier
    from bharatsend_core.adapters.system import SystemClock

    world = _world()
    ep = world.bs.add_webhook_endpoint(world.tenant_id, receiver.url)
    receiver.secret = ep.secret
    world.bs.add_route("agg1", host="127.0.0.1", port=2775, system_id="bsend", password="secret")
    worker = world.bs.worker(
        carrier_factory=lambda config: MemoryCarrier(config.name, clock=SystemClock()),
        sandbox_carrier=False,
        poll_interval=0.05,
    ).start()
    try:
        _send(world)
        deadline = time.monotonic() + 10
        while len(receiver.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert sorted(e["type"] for e in receiver.events) == [
        "sms.accepted", "sms.delivered", "sms.sent",
    ]  # fmt: skip
    assert receiver.refused == []


def _tls_receiver(tmp: Any, name: str) -> tuple[Any, str, int]:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp / "c.pem", tmp / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    receiver = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    return receiver, str(cert), receiver.server.server_address[1]


def test_https_goes_to_the_vetted_address_and_verifies_the_hostname(tmp_path: Any) -> None:
    receiver, cert, port = _tls_receiver(tmp_path, "localhost")
    try:
        world = _world()
        ep = world.bs.add_webhook_endpoint(world.tenant_id, f"https://localhost:{port}/hooks")
        receiver.secret = ep.secret
        _send(world)
        transport = HttpTransport(allow_private=True, ca_certs=cert)
        try:
            _deliverer(world, transport).run_once()
        finally:
            transport.close()
        assert [e["type"] for e in receiver.events] == ["sms.accepted"]
        # A certificate for another name is refused, even on the right address.
        wrong = HttpTransport(allow_private=True, ca_certs=cert)
        try:
            result = wrong.post(f"https://127.0.0.1:{port}/hooks", {}, b"{}")
        finally:
            wrong.close()
        assert result.status is None
        assert result.error is not None
        assert result.error.startswith("connect_failed")
    finally:
        receiver.close()
