"""Webhook endpoints and the outbox: each status change writes its events in its transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.domain.errors import (
    InsufficientCredits,
    WebhookEndpointNotFound,
    WebhookUrlForbidden,
)
from bharatsend_core.domain.message import ReceiptOutcome
from bharatsend_core.ports.storage import DeliveryAttempt
from bharatsend_core.testing import FakeClock, SequentialIds
from bharatsend_core.webhooks import signature_headers, verify

from .test_dispatch import Rig, config
from .world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world

URL = "https://app.example.com/hooks/sms"


@pytest.fixture
def world() -> Iterator[World]:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    yield make_world(bs, clock)
    bs.close()


def types(world: World) -> list[str]:
    entries = world.bs.webhook_deliveries(world.tenant_id)
    return [e.event_type for e in sorted(entries, key=lambda e: e.payload["data"]["sequence"])]


def test_an_endpoint_gets_a_secret_once_and_an_ssrf_safe_url(world: World) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL, events=["sms.*"])
    assert ep.secret.startswith("whsec_")
    assert ep.secret not in repr(ep.endpoint)
    [listed] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert listed.id == ep.id
    assert listed.url == URL
    for bad in ("http://app.example.com/hooks", "https://10.0.0.1/x", "https://[::1]/x"):
        with pytest.raises(WebhookUrlForbidden):
            world.bs.add_webhook_endpoint(world.tenant_id, bad)


def test_development_may_allow_loopback_and_http() -> None:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(
        clock=clock, ids=SequentialIds(), key_pepper=PEPPER, webhooks_allow_private=True
    )
    world = make_world(bs, clock)
    assert bs.add_webhook_endpoint(world.tenant_id, "http://127.0.0.1:8080/hooks").id


def test_each_status_change_enqueues_its_event_for_each_interested_endpoint(
    world: World,
) -> None:
    everything = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    finals = world.bs.add_webhook_endpoint(
        world.tenant_id, "https://other.example.com/h", events=["sms.delivered", "sms.failed"]
    )
    rig = Rig(world, config("agg1"))
    message_id = rig.send(client_message_id="order-42")
    rig.run()
    rig.receipt("agg1", "mem-agg1-1", ReceiptOutcome.DELIVERED)
    entries = world.bs.webhook_deliveries(world.tenant_id)
    by_endpoint: dict[str, list[str]] = {}
    for entry in sorted(entries, key=lambda e: e.payload["data"]["sequence"]):
        by_endpoint.setdefault(entry.endpoint_id, []).append(entry.event_type)
    assert by_endpoint[everything.id] == ["sms.accepted", "sms.sent", "sms.delivered"]
    assert by_endpoint[finals.id] == ["sms.delivered"]
    delivered = next(e for e in entries if e.event_type == "sms.delivered")
    data = delivered.payload["data"]
    assert data["id"] == message_id
    assert data["client_message_id"] == "order-42"
    assert data["status"] == "delivered"
    assert OTP_TEXT not in json.dumps(delivered.payload)
    assert all(e.state == "pending" for e in entries)
    # The stored payload signs and verifies as a receiver would check it.
    body = json.dumps(delivered.payload).encode()
    headers = signature_headers([everything.secret], delivered.event_id, 1_790_000_000, body)
    assert verify(everything.secret, headers, body, now=1_790_000_000)["type"] == "sms.delivered"


def test_a_failed_transaction_writes_no_event(world: World) -> None:
    world.bs.add_webhook_endpoint(world.tenant_id, URL)
    poor_clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=poor_clock, ids=SequentialIds(), key_pepper=PEPPER)
    poor = make_world(bs, poor_clock, credits=0)
    bs.add_webhook_endpoint(poor.tenant_id, URL)
    with pytest.raises(InsufficientCredits):
        bs.send(
            poor.tenant_id,
            phone_number="+919812345678",
            content=OTP_TEXT,
            dlt_template_id=OTP_TEMPLATE,
        )
    assert bs.webhook_deliveries(poor.tenant_id) == []


def test_failures_and_retries_are_events_too(world: World) -> None:
    world.bs.add_webhook_endpoint(world.tenant_id, URL)
    rig = Rig(world, config("agg1"))
    rig.carriers["agg1"].script("throttled", "permanent")
    rig.send()
    rig.run()
    rig.clock.advance(timedelta(seconds=5))
    rig.run()
    assert types(world) == ["sms.accepted", "sms.retrying", "sms.failed"]
    failed = next(
        e for e in world.bs.webhook_deliveries(world.tenant_id) if e.event_type == "sms.failed"
    )
    assert failed.payload["data"]["error"]["code"] == "carrier_rejected"


def test_a_disabled_endpoint_gets_no_new_events_and_rotation_keeps_it_verifiable(
    world: World,
) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    world.bs.disable_webhook_endpoint(world.tenant_id, ep.id)
    Rig(world, config("agg1")).send()
    assert world.bs.webhook_deliveries(world.tenant_id) == []
    world.bs.enable_webhook_endpoint(world.tenant_id, ep.id)
    rotated = world.bs.rotate_webhook_secret(world.tenant_id, ep.id, overlap_seconds=3600)
    assert rotated.secret != ep.secret
    now = world.clock.now()
    assert rotated.endpoint.signing_secrets(now) == (rotated.secret, ep.secret)
    with pytest.raises(WebhookEndpointNotFound):
        world.bs.rotate_webhook_secret(world.tenant_id, "ep_missing")


def test_a_dead_letter_can_be_replayed(world: World) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    Rig(world, config("agg1")).send()
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    now = world.clock.now()
    with world.bs.storage.unit_of_work() as uow:
        [claimed] = uow.webhooks.claim("w1", now, timedelta(seconds=30), 10)
        import attrs

        dead = attrs.evolve(
            claimed, state="dead", attempts=8, next_attempt_at=None, finished_at=now
        )
        attempt = DeliveryAttempt(entry.event_id, ep.id, 8, now, 500, 12, None, "oops")
        assert uow.webhooks.finish(dead, attempt, "w1")
        uow.commit()
    assert [e.state for e in world.bs.webhook_deliveries(world.tenant_id, state="dead")] == ["dead"]
    assert world.bs.replay_webhook(world.tenant_id, entry.event_id, ep.id)
    [again] = world.bs.webhook_deliveries(world.tenant_id)
    assert again.state == "pending"
    assert not world.bs.replay_webhook(world.tenant_id, "evt_nope", ep.id)
