"""Standard Webhooks signing and verification, and the SSRF guard for webhook targets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain.errors import (
    InvalidArgument,
    WebhookSignatureInvalid,
    WebhookUrlForbidden,
)
from bharatsend_core.domain.message import (
    Claim,
    Message,
    PartReceipt,
    PartSubmitted,
    ReceiptOutcome,
    SubmitFailed,
)
from bharatsend_core.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    EndpointSecret,
    WebhookEndpoint,
    WebhookEvent,
    check_url,
    events_from,
    makes_events,
    refused_address,
)
from bharatsend_core.webhooks import (
    generate_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)

SECRET = generate_secret(bytes(range(32)))
OTHER = generate_secret(bytes(range(1, 33)))
T = 1_790_000_000
BODY = json.dumps({"type": "sms.delivered", "data": {"id": "msg_1"}}).encode()


def headers(secrets: list[str] = [SECRET], event_id: str = "evt_1", at: int = T) -> dict[str, str]:  # noqa: B006
    return signature_headers(secrets, event_id, at, BODY)


def test_the_published_standard_webhooks_example_signs_identically() -> None:
    # The example in the Standard Webhooks specification.
    assert (
        sign(
            ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_signed_delivery_verifies_and_returns_the_event() -> None:
    event = verify(SECRET, headers(), BODY, now=T + 10)
    assert event == {"type": "sms.delivered", "data": {"id": "msg_1"}}


def test_header_names_are_case_insensitive_and_str_bodies_work() -> None:
    upper = {k.upper(): v for k, v in headers().items()}
    assert verify(SECRET, upper, BODY.decode(), now=T)["type"] == "sms.delivered"


@pytest.mark.parametrize(
    "tamper",
    ["body", "id", "timestamp", "old_timestamp", "future_timestamp", "wrong_secret", "v2_only"],
)
def test_every_tampering_is_refused(tamper: str) -> None:
    sent = headers()
    body = BODY
    secret = SECRET
    now = T
    if tamper == "body":
        body = BODY.replace(b"msg_1", b"msg_2")
    elif tamper == "id":
        sent["webhook-id"] = "evt_2"
    elif tamper == "timestamp":
        sent["webhook-timestamp"] = str(T + 1)
    elif tamper == "old_timestamp":
        sent = headers(at=T - 301)
    elif tamper == "future_timestamp":
        sent = headers(at=T + 301)
    elif tamper == "wrong_secret":
        secret = OTHER
    else:
        sent["webhook-signature"] = sent["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookSignatureInvalid):
        verify(secret, sent, body, now=now)


def test_missing_headers_and_non_json_bodies_are_refused() -> None:
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in headers().items() if k != name}
        with pytest.raises(WebhookSignatureInvalid) as caught:
            verify(SECRET, partial, BODY, now=T)
        assert caught.value.field == name
    text = b"not json"
    with pytest.raises(WebhookSignatureInvalid):
        verify(SECRET, signature_headers([SECRET], "e", T, text), text, now=T)


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    both = headers([SECRET, OTHER])
    assert len(both["webhook-signature"].split()) == 2
    assert verify(SECRET, both, BODY, now=T)
    assert verify(OTHER, both, BODY, now=T)
    assert verify([OTHER, SECRET], headers([SECRET]), BODY, now=T)
    with pytest.raises(WebhookSignatureInvalid):
        verify(OTHER, headers([SECRET]), BODY, now=T)


def test_secrets_have_the_whsec_format_and_enough_entropy() -> None:
    assert SECRET.startswith("whsec_")
    assert secret_key(SECRET) == bytes(range(32))
    for bad in ("", "whsec_", "sk_abc", "whsec_!!!", generate_secret(bytes(24))[:-8]):
        with pytest.raises(InvalidArgument):
            secret_key(bad)
    with pytest.raises(InvalidArgument):
        generate_secret(bytes(23))


@given(
    key=st.binary(min_size=24, max_size=64),
    event_id=st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True),
    at=st.integers(0, 2**40),
    body=st.dictionaries(st.text(max_size=8), st.integers(), max_size=4),
    flip=st.integers(min_value=0),
)
def test_signing_round_trips_and_any_flipped_byte_fails(
    key: bytes, event_id: str, at: int, body: dict[str, int], flip: int
) -> None:
    secret = generate_secret(key)
    raw = json.dumps(body).encode()
    sent = signature_headers([secret], event_id, at, raw)
    assert verify(secret, sent, raw, now=at) == body
    index = flip % len(raw)
    tampered = raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]
    with pytest.raises(WebhookSignatureInvalid):
        verify(secret, sent, tampered, now=at)


# --------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.10", "private"),
        ("172.16.5.4", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not_global"),
        ("fc00::1", "private"),
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    assert refused_address(address) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_address(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://app.example.com/hooks",
        "ftp://app.example.com/hooks",
        "https://user:pass@app.example.com/hooks",
        "https:///nohost",
        "https://10.0.0.1/hooks",
        "https://[::1]:8443/hooks",
        "https://169.254.169.254/latest/meta-data",
        " https://app.example.com/",
        "",
    ],
)
def test_forbidden_webhook_urls_are_refused_at_creation(url: str) -> None:
    with pytest.raises(WebhookUrlForbidden):
        check_url(url)


def test_allowed_webhook_urls_and_the_development_switch() -> None:
    assert check_url("https://app.example.com/hooks/sms").hostname == "app.example.com"
    assert check_url("https://8.8.8.8/x").hostname == "8.8.8.8"
    assert check_url("http://127.0.0.1:8080/hooks", allow_private=True).port == 8080


def test_the_default_retry_schedule_grows_and_spans_more_than_a_day() -> None:
    delays = [d.total_seconds() for d in DEFAULT_RETRY_SCHEDULE]
    assert delays == sorted(delays)
    assert sum(delays) > 24 * 3600


# --------------------------------------------------------------------------- events


def _lifecycle(final: str) -> list[Message]:
    from tests.unit.test_message import accepted, at

    m = accepted()
    steps = [m]
    m = m.apply(Claim(at(1), "route_a"))
    m = m.apply(SubmitFailed(at(2), "carrier_throttled", "0x00000058", at(30)))
    steps.append(m)
    m = m.apply(Claim(at(31), "route_b"))
    m = m.apply(PartSubmitted(at(32), 0, "c-1"))
    steps.append(m)
    m = m.apply(PartReceipt(at(40), 0, ReceiptOutcome(final), "633"))
    steps.append(m)
    return steps


@pytest.mark.parametrize("final", ["delivered", "rejected"])
def test_a_lifecycle_produces_one_event_per_status_change(final: str) -> None:
    steps = _lifecycle(final)
    produced = []
    before = -1
    for m in steps:
        produced += events_from(m, before)
        before = len(m.timeline) - 1
    types = [e.type for e in produced]
    last = "sms.delivered" if final == "delivered" else "sms.failed"
    assert types == ["sms.accepted", "sms.retrying", "sms.sent", last]

    # The same events, however the changes were cut (the payload is the state
    # when the event was written: the outbox stores it, replays resend it).
    def key(e: WebhookEvent) -> tuple[str, str, int]:
        return (e.id, e.type, e.sequence)

    assert [key(e) for e in events_from(steps[-1])] == [key(e) for e in produced]
    assert len({e.id for e in produced}) == len(produced)
    sequences = [e.payload["data"]["sequence"] for e in produced]
    assert sequences == sorted(sequences)
    final_event = produced[-1].payload
    assert final_event["data"]["route"] == "route_b"
    if final == "rejected":
        assert final_event["data"]["error"] == {
            "code": "rejected", "reason": "rejected", "carrier_code": "633",
        }  # fmt: skip
    retrying = produced[1].payload["data"]
    assert retrying["status"] == "retrying"
    assert retrying["next_attempt_at"] is not None


def test_a_claim_or_a_part_submitted_makes_no_event() -> None:
    from tests.unit.test_message import accepted, at

    m = accepted()
    claimed = m.apply(Claim(at(1), "route_a"))
    assert not makes_events(claimed, len(m.timeline) - 1)
    assert events_from(claimed, len(m.timeline) - 1) == ()
    assert makes_events(claimed)  # "accepted" is still an event from the start
    sent = claimed.apply(PartSubmitted(at(2), 0, "c-1"))
    assert makes_events(sent, len(claimed.timeline) - 1)  # the message is now sent


def test_events_never_carry_the_message_content() -> None:
    from tests.unit.test_message import OTP

    for m in _lifecycle("delivered"):
        for event in events_from(m):
            assert OTP not in json.dumps(event.payload)
            assert "content" not in event.payload["data"]


def test_event_filters() -> None:
    from bharatsend_core.domain.webhooks import check_filters, wants

    assert check_filters(["sms.*", "sms.*"]) == ("sms.*",)
    assert wants(["sms.*"], "sms.failed")
    assert wants(["sms.delivered", "sms.failed"], "sms.failed")
    assert not wants(["sms.delivered"], "sms.sent")
    for bad in ([], ["email.*"], ["sms.deliverd"]):
        with pytest.raises(InvalidArgument):
            check_filters(bad)


# --------------------------------------------------------------------------- endpoints


def _endpoint() -> WebhookEndpoint:
    return WebhookEndpoint(
        id="whe_1",
        tenant_id="ten_1",
        url="https://app.example.com/hooks",
        events=("sms.*",),
        secrets=(EndpointSecret(SECRET, datetime(2026, 1, 1, tzinfo=UTC)),),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_rotation_signs_with_both_secrets_during_the_overlap_only() -> None:
    now = datetime(2026, 2, 1, tzinfo=UTC)
    ep = _endpoint().rotated(OTHER, now, timedelta(hours=24))
    assert ep.signing_secrets(now) == (OTHER, SECRET)
    assert ep.signing_secrets(now + timedelta(hours=23)) == (OTHER, SECRET)
    assert ep.signing_secrets(now + timedelta(hours=24)) == (OTHER,)
    third = generate_secret(bytes(range(2, 34)))
    later = ep.rotated(third, now + timedelta(hours=1), timedelta(hours=1))
    # A second rotation never extends an older secret's life.
    assert later.signing_secrets(now + timedelta(hours=1, minutes=30)) == (third, OTHER, SECRET)
    assert later.signing_secrets(now + timedelta(hours=2)) == (third,)
    assert SECRET not in repr(ep)


def test_an_endpoint_failing_long_enough_is_disabled_and_410_disables_at_once() -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    ep = _endpoint().failed(start, timedelta(days=3))
    assert ep.enabled
    assert ep.failing_since == start
    assert ep.delivered().failing_since is None
    ep = ep.failed(start + timedelta(days=2), timedelta(days=3))
    assert ep.enabled
    ep = ep.failed(start + timedelta(days=3), timedelta(days=3))
    assert not ep.enabled
    assert ep.disabled_reason == "failing"
    gone = _endpoint().gone()
    assert not gone.enabled
    assert gone.disabled_reason == "gone"
