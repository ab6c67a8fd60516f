"""The app's Django signals, driven by a real in-process worker and webhook deliverer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.dispatch import Signal
from django.test import Client

import bharatsend_django
from bharatsend_core import BharatSend
from bharatsend_core.service.events import WebhookFailure
from bharatsend_django import signals
from tests.api.conftest import OTP_TEMPLATE, PHONE, Seeded, otp

from .conftest import Configure

Seed = Callable[..., Seeded]


class Received:
    """What one signal's receiver got, in order (receivers may run on a worker thread)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append({"sender": sender, **kwargs})

    def events(self, message_id: str | None = None) -> list[signals.StatusEvent]:
        with self._lock:
            found = [c["event"] for c in self.calls]
        return [e for e in found if message_id is None or e.message_id == message_id]


@pytest.fixture
def receive() -> Iterator[Callable[[Signal], Received]]:
    """``receive(signal)``: connect a recorder, disconnected after the test."""
    connected: list[tuple[Signal, Received]] = []

    def connect(signal: Signal) -> Received:
        received = Received()
        signal.connect(received, weak=False)
        connected.append((signal, received))
        return received

    yield connect
    for signal, received in connected:
        signal.disconnect(received)


def api_send(key: str, code: str) -> str:
    resp = Client().post(
        "/v1/sms/send",
        data={"phone_number": PHONE, "content": otp(code), "dlt_template_id": OTP_TEMPLATE},
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.content
    message_id: str = resp.json()["data"]["id"]
    return message_id


def wait_until(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_accepted_then_sent_then_delivered(
    bharatsend_settings: Configure,
    own_sqlite_url: str,
    seeded: Seed,
    receive: Callable[[Signal], Received],
) -> None:
    # A database of its own: workers and deliverers are not per tenant, and the
    # core's tables in Django's test database keep other tests' routes and queue.
    bharatsend_settings(DATABASE=own_sqlite_url)
    accepted = receive(signals.message_accepted)
    changed = receive(signals.message_status_changed)
    acme = seeded("Acme")
    bs = bharatsend_django.facade()

    by_call = bharatsend_django.send_sms(
        tenant_id=acme.tenant_id,
        phone_number=PHONE,
        content=otp(),
        dlt_template_id=OTP_TEMPLATE,
        client_message_id="signup-1",
        metadata={"user": 7},
        sandbox=True,  # the built-in SMSC simulator delivers it
    ).id
    by_api = api_send(acme.test_key, "777777")  # a bs_test_ key: sandbox too
    assert [e.message_id for e in accepted.events()] == [by_call, by_api]
    first = accepted.events()[0]
    assert accepted.calls[0]["sender"] is bs
    assert (first.event_type, first.status, first.tenant_id) == ("sms.accepted", "accepted",
                                                                 acme.tenant_id)  # fmt: skip
    assert (first.client_message_id, first.metadata) == ("signup-1", {"user": 7})
    assert first.event_id.startswith("evt_")
    assert first.receipt is None
    assert otp() not in repr(first.payload)  # events never carry the text
    assert changed.events() == []

    worker = bs.worker(sandbox_carrier=True, webhooks=False).start()
    try:
        wait_until(lambda: len(changed.events()) >= 4)
    finally:
        worker.stop()
    time.sleep(0.05)
    assert len(accepted.events()) == 2  # the worker accepts nothing
    for message_id in (by_call, by_api):
        events = changed.events(message_id)
        assert [e.event_type for e in events] == ["sms.sent", "sms.delivered"]
        sent, delivered = events
        assert (sent.status, delivered.status) == ("sent", "delivered")
        assert sent.receipt is None
        assert delivered.receipt is not None  # the stored DLR behind the change
        assert delivered.receipt.message_id == message_id
        assert delivered.timestamp >= sent.timestamp
        assert delivered.payload["type"] == "sms.delivered"
        assert bs.get_message(acme.tenant_id, message_id).status.value == "delivered"
    assert {c["sender"] for c in changed.calls} == {bs}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.django_db(transaction=True)
def test_webhook_failed_until_dead_lettered(
    bharatsend_settings: Configure,
    own_sqlite_url: str,
    seeded: Seed,
    receive: Callable[[Signal], Received],
) -> None:
    bharatsend_settings(DATABASE=own_sqlite_url)  # no other test's webhook deliveries
    failed = receive(signals.webhook_failed)
    acme = seeded("Acme")
    bs: BharatSend = bharatsend_django.facade()
    assert bs.settings.webhooks_allow_private  # the test project allows 127.0.0.1
    endpoint = bs.add_webhook_endpoint(
        acme.tenant_id, f"http://127.0.0.1:{closed_port()}/hooks", events=["sms.accepted"]
    )
    message = bharatsend_django.send_sms(
        tenant_id=acme.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE
    )
    deliverer = bs.webhook_deliverer(schedule=[timedelta(0), timedelta(0)])
    assert deliverer.run_once() == 1
    [first] = [c["failure"] for c in failed.calls]
    assert isinstance(first, WebhookFailure)
    assert first.final is False
    assert (first.tenant_id, first.event_type) == (acme.tenant_id, "sms.accepted")
    assert first.endpoint_id == endpoint.endpoint.id
    assert first.attempt.status is None  # refused: no HTTP status
    assert deliverer.run_once() == 1
    assert [c["failure"].final for c in failed.calls] == [False, True]
    assert failed.calls[1]["failure"].event_id == first.event_id
    assert {c["sender"] for c in failed.calls} == {bs}
    assert deliverer.run_once() == 0  # dead-lettered: nothing more to try
    assert bs.get_message(acme.tenant_id, message.id).status.value == "accepted"


@pytest.mark.django_db(transaction=True)
def test_no_receivers_no_work(seeded: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without receivers (and outbox off) nothing is looked up per event."""
    acme = seeded("Acme")
    bs = bharatsend_django.facade()
    lookups: list[str] = []
    monkeypatch.setattr(bs, "message_receipts", lambda *a: lookups.append("r") or [])
    monkeypatch.setattr(bs, "get_message", lambda *a: lookups.append("m"))
    assert not signals.message_accepted.has_listeners()
    bharatsend_django.send_sms(
        tenant_id=acme.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE
    )
    assert lookups == []
