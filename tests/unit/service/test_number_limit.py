"""The per-number limit (SMS-pumping defence): at most N OTP messages per number per window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bharatsend_core import BharatSend, Settings
from bharatsend_core.domain.errors import ConfigurationError, RateLimited
from bharatsend_core.service.send import SendRequest, SendResult
from bharatsend_core.testing import FakeClock, SequentialIds

from .world import ORDER_TEMPLATE, OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world

PHONE = "+919876543210"
ORDER_TEXT = "Dear Asha, your order AB12 of Rs 499 is shipped. -ACME"


def limited_world(clock: FakeClock, **settings: Any) -> World:
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER, **settings)
    return make_world(bs, clock, credits=100_000)


@pytest.fixture
def small(clock: FakeClock) -> Iterator[World]:
    """Three per number per minute, to keep the tests short."""
    w = limited_world(clock, number_limit=3, number_limit_window=60)
    yield w
    w.bs.close()


def otp(**overrides: Any) -> SendRequest:
    fields: dict[str, Any] = {
        "phone_number": PHONE,
        "content": OTP_TEXT,
        "dlt_template_id": OTP_TEMPLATE,
        "header": "ACMEOT",
    }
    fields.update(overrides)
    return SendRequest(**fields)


def order(**overrides: Any) -> SendRequest:
    return otp(content=ORDER_TEXT, dlt_template_id=ORDER_TEMPLATE, **overrides)


def send(world: World, request: SendRequest) -> SendResult:
    r = request
    return world.bs.send(
        world.tenant_id,
        phone_number=r.phone_number,
        content=r.content,
        dlt_template_id=r.dlt_template_id,
        header=r.header,
        client_message_id=r.client_message_id,
    )


def stored(world: World) -> int:
    with world.bs.storage.unit_of_work() as uow:
        return len(uow.messages.summaries(world.tenant_id))


# --------------------------------------------------------------------------- send


def test_the_eleventh_otp_to_one_number_in_ten_minutes_is_refused_by_default(
    world: World,
) -> None:
    for _ in range(10):
        send(world, otp())
    with pytest.raises(RateLimited) as info:
        send(world, otp(phone_number="98765 43210"))  # the same number, typed otherwise
    error = info.value
    assert (error.code, error.http_status, error.retry_after) == ("rate_limited", 429, 600)
    assert error.to_dict()["retry_after"] == 600
    assert error.field == "phone_number"
    assert stored(world) == 10  # nothing written for the refused one
    assert world.bs.reconcile().ok


def test_the_window_slides_and_retry_after_counts_down_to_the_oldest(
    small: World, clock: FakeClock
) -> None:
    send(small, otp())
    clock.advance(20)
    send(small, otp())
    send(small, otp())
    clock.advance(15.5)
    with pytest.raises(RateLimited) as info:
        send(small, otp())
    assert info.value.retry_after == 25  # 60 - 35.5, rounded up
    clock.advance(24.5)  # the first message is exactly a window old: still counted
    with pytest.raises(RateLimited) as info:
        send(small, otp())
    assert info.value.retry_after == 1  # 0 s left, but never less than 1
    clock.advance(0.5)
    send(small, otp())
    with pytest.raises(RateLimited) as info:
        send(small, otp())
    assert info.value.retry_after == 20  # the oldest counted is now the one sent at 20 s


def test_both_otp_categories_share_the_quota_and_others_are_unlimited(clock: FakeClock) -> None:
    w = limited_world(clock, number_limit=2, number_limit_categories="transactional")
    for _ in range(5):
        send(w, order())  # service_implicit: not counted under this setting
    send(w, otp())
    send(w, otp())
    with pytest.raises(RateLimited):
        send(w, otp())

    shared = limited_world(clock, number_limit=2)
    send(shared, order())
    send(shared, otp())
    with pytest.raises(RateLimited):
        send(shared, order())


def test_numbers_and_tenants_are_counted_apart(small: World) -> None:
    for _ in range(3):
        send(small, otp())
    send(small, otp(phone_number="+919876543211"))
    other = make_world(small.bs, small.clock)
    send(other, otp())


def test_a_replay_is_never_refused_nor_counted(small: World) -> None:
    first = send(small, otp(client_message_id="login-1"))
    for _ in range(4):
        assert send(small, otp(client_message_id="login-1")).replayed
    send(small, otp())
    send(small, otp())
    # At the limit now, yet the replay still answers with the original.
    again = send(small, otp(client_message_id="login-1"))
    assert again.replayed
    assert again.id == first.id
    with pytest.raises(RateLimited):
        send(small, otp(client_message_id="login-2"))


def test_number_limit_zero_turns_the_limit_off(clock: FakeClock) -> None:
    w = limited_world(clock, number_limit=0)
    for _ in range(25):
        send(w, otp())
    assert stored(w) == 25


# --------------------------------------------------------------------------- batch


def test_a_batch_counts_stored_messages_and_its_own_earlier_items(small: World) -> None:
    send(small, otp())
    result = small.bs.send_batch(
        small.tenant_id,
        [otp(), otp(phone_number="+919876543211"), otp(), otp(), order(), otp()],
    )
    assert [i.error.code if i.error else "ok" for i in result.items] == [
        "ok",
        "ok",
        "ok",
        "rate_limited",
        "rate_limited",
        "rate_limited",
    ]
    refused = result.items[3].error
    assert isinstance(refused, RateLimited)
    assert refused.retry_after == 60
    assert stored(small) == 4
    assert small.bs.reconcile().ok


def test_an_all_or_nothing_batch_over_the_limit_sends_nothing(small: World) -> None:
    result = small.bs.send_batch(small.tenant_id, [otp() for _ in range(4)], all_or_nothing=True)
    assert [i.error.code for i in result.items if i.error] == ["batch_aborted"] * 3 + [
        "rate_limited"
    ]
    assert stored(small) == 0


def test_batch_replays_are_neither_refused_nor_counted(small: World) -> None:
    send(small, otp(client_message_id="a"))
    send(small, otp(client_message_id="b"))
    result = small.bs.send_batch(
        small.tenant_id,
        [
            otp(client_message_id="a"),
            otp(client_message_id="b"),
            otp(client_message_id="c"),
            otp(client_message_id="c"),
            otp(client_message_id="d"),
        ],
    )
    assert [(i.result.replayed if i.result else i.error.code) for i in result.items] == [  # type: ignore[union-attr]
        True,
        True,
        False,
        True,
        "rate_limited",
    ]


# --------------------------------------------------------------------------- settings


def test_the_settings_come_from_the_environment_in_seconds() -> None:
    settings = Settings.resolve(
        {
            "BHARATSEND_NUMBER_LIMIT": "5",
            "BHARATSEND_NUMBER_LIMIT_WINDOW": "90",
            "BHARATSEND_NUMBER_LIMIT_CATEGORIES": "Transactional, government",
        }
    )
    assert settings.number_limit == 5
    assert settings.number_limit_window == timedelta(seconds=90)
    assert settings.number_limit_categories == {"transactional", "government"}
    default = Settings.resolve({})
    assert (default.number_limit, default.number_limit_window) == (10, timedelta(minutes=10))
    assert default.number_limit_categories == {"transactional", "service_implicit"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("number_limit", -1),
        ("number_limit_window", 0),
        ("number_limit_categories", "otp"),
    ],
)
def test_bad_limit_settings_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.resolve({}, **{key: value})
    assert info.value.field == key


def test_retry_after_is_a_whole_number_of_seconds_of_at_least_one() -> None:
    with pytest.raises(ValueError):
        RateLimited("slow down", retry_after=0)
    assert RateLimited("slow down").retry_after == 1
