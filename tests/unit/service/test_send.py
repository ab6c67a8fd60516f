"""The accept path: validate, price, reserve and persist in one transaction, exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bharatsend_core.domain.errors import (
    ContentTooLong,
    DltDndBlocked,
    DltTemplateMismatch,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidArgument,
    InvalidPhoneNumber,
    MessageNotFound,
    TenantNotFound,
    TenantSuspended,
    UnsupportedDestination,
)
from bharatsend_core.domain.message import PartStatus, Status
from bharatsend_core.service.send import SendRequest

from .world import NOON_IST, ORDER_TEMPLATE, OTP_TEMPLATE, OTP_TEXT, PE_ID, World


def send(world: World, **overrides: object) -> object:
    args: dict[str, object] = {
        "phone_number": "+919876543210",
        "header": "ACMEOT",
        "content": OTP_TEXT,
        "dlt_template_id": OTP_TEMPLATE,
    }
    args.update(overrides)
    return world.bs.send(world.tenant_id, **args)  # type: ignore[arg-type]


def queued(world: World) -> int:
    with world.bs.storage.unit_of_work() as uow:
        return uow.dispatch.depth(world.clock.now() + timedelta(days=1))


def test_send_accepts_reserves_and_queues_in_one_go(world: World) -> None:
    result = send(world, client_message_id="order-4821")
    message = world.bs.get_message(world.tenant_id, result.id)  # type: ignore[attr-defined]
    assert message.status is Status.ACCEPTED
    assert message.phone == "+919876543210"
    assert message.entity_id == PE_ID
    assert message.template_id == OTP_TEMPLATE
    assert (message.encoding, message.segments, message.price_paise) == ("gsm7", 1, 25)
    assert [p.status for p in message.parts] == [PartStatus.PENDING]
    assert [e.kind for e in message.timeline] == ["accepted"]
    assert message.expires_at == NOON_IST + timedelta(hours=1)
    balance = world.bs.balance(world.tenant_id)
    assert (balance.available_paise, balance.posted_paise, balance.reserved_paise) == (
        9_975,
        10_000,
        25,
    )
    assert queued(world) == 1
    assert world.bs.reconcile().ok


def test_a_retry_with_the_same_id_and_request_is_a_replay_charged_once(world: World) -> None:
    first = send(world, client_message_id="order-4821")
    again = send(world, client_message_id="order-4821", phone_number="098765 43210")
    assert again.replayed  # type: ignore[attr-defined]
    assert again.id == first.id  # type: ignore[attr-defined]
    assert world.bs.balance(world.tenant_id).reserved_paise == 25
    assert queued(world) == 1


def test_the_same_id_with_a_different_request_is_a_conflict(world: World) -> None:
    send(world, client_message_id="order-4821")
    with pytest.raises(IdempotencyConflict) as info:
        send(
            world,
            client_message_id="order-4821",
            content="Your OTP is 000000. Valid for 5 minutes.",
        )
    assert info.value.http_status == 409
    assert "000000" not in info.value.message


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"phone_number": "12345"}, InvalidPhoneNumber),
        ({"phone_number": "+915123456789"}, UnsupportedDestination),
        ({"content": "Your OTP is 482913. Valid for 10 minutes."}, DltTemplateMismatch),
        ({"content": "Your OTP is " + "1" * 1600 + ". Valid for 5 minutes."}, ContentTooLong),
        ({"validity_seconds": 5}, InvalidArgument),
        ({"priority": 10}, InvalidArgument),
        ({"metadata": {"k": "x" * 3000}}, InvalidArgument),
        ({"client_message_id": "has space"}, InvalidArgument),
    ],
)
def test_a_failed_validation_writes_nothing(
    world: World, overrides: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        send(world, **overrides)
    assert world.bs.balance(world.tenant_id).available_paise == 10_000
    assert queued(world) == 0
    assert world.bs.reconcile().messages == 0


def test_insufficient_credits_refuses_and_writes_nothing(world: World) -> None:
    world.bs.top_up(world.tenant_id, 1)
    # One number each: the per-number limit must not be what refuses.
    for n in range(400):
        send(world, phone_number=f"+91987650{n:04d}")
    with pytest.raises(InsufficientCredits) as info:
        send(world, phone_number="+919876509999")
    assert info.value.http_status == 402
    assert world.bs.balance(world.tenant_id).available_paise == 1
    assert queued(world) == 400
    assert world.bs.reconcile().ok


def test_a_suspended_tenant_cannot_send_but_replays_still_answer(world: World) -> None:
    first = send(world, client_message_id="a")
    world.bs.suspend_tenant(world.tenant_id)
    with pytest.raises(TenantSuspended):
        send(world, client_message_id="b")
    assert send(world, client_message_id="a").id == first.id  # type: ignore[attr-defined]
    world.bs.activate_tenant(world.tenant_id)
    assert send(world, client_message_id="b")


def test_unknown_tenant_and_other_tenants_messages_are_not_found(world: World) -> None:
    result = send(world)
    with pytest.raises(TenantNotFound):
        world.bs.send("ten_nope", phone_number="9876543210", content="x", dlt_template_id="1")
    other = world.bs.create_tenant("Other")
    with pytest.raises(MessageNotFound):
        world.bs.get_message(other.id, result.id)  # type: ignore[attr-defined]


def test_the_header_defaults_to_the_templates_only_header(world: World) -> None:
    result = send(world, header=None)
    assert result.message.header == "ACMEOT"  # type: ignore[attr-defined]


def test_sandbox_messages_are_marked_and_free(world: World) -> None:
    result = send(world, sandbox=True)
    assert result.message.sandbox  # type: ignore[attr-defined]
    assert result.message.price_paise == 0  # type: ignore[attr-defined]
    assert world.bs.balance(world.tenant_id).reserved_paise == 0
    assert world.bs.reconcile().ok


def test_long_messages_are_priced_per_segment(world: World) -> None:
    name = "Ananthapadmanabhan"
    text = f"Dear {name}, your order AB12CD34 of Rs 1499 is shipped. -ACME"
    result = send(world, dlt_template_id=ORDER_TEMPLATE, content=text)
    assert result.message.segments == 1  # type: ignore[attr-defined]
    world.bs.register_template(
        world.tenant_id,
        template_id="1207160000000000077",
        header="ACMEOT",
        category="service_implicit",
        body="प्रिय {#var#}, आपका ऑर्डर {#alphanumeric#} (Rs {#numeric#}) भेज दिया गया है। -ACME",
        content_type="unicode",
    )
    unicode = send(
        world,
        dlt_template_id="1207160000000000077",
        content="प्रिय राहुल शर्मा जी, आपका ऑर्डर AB12CD34 (Rs 1499) भेज दिया गया है। -ACME",
    )
    assert unicode.message.encoding == "ucs2"  # type: ignore[attr-defined]
    assert unicode.message.segments == 2  # type: ignore[attr-defined]
    assert unicode.message.price_paise == 50  # type: ignore[attr-defined]


def test_promotional_messages_fail_closed_without_a_dnd_registry(world: World) -> None:
    bs = world.bs
    bs.register_header(world.tenant_id, "512345", category="promotional")
    bs.register_template(
        world.tenant_id,
        template_id="1207160000000000099",
        header="512345",
        category="promotional",
        body="Flat {#numeric#}% off at ACME this weekend! To opt out reply STOP",
    )
    with pytest.raises(DltDndBlocked) as info:
        send(
            world,
            header="512345",
            dlt_template_id="1207160000000000099",
            content="Flat 20% off at ACME this weekend! To opt out reply STOP",
        )
    assert info.value.detail["reason"] == "no_dnd_registry"


def test_a_template_change_is_seen_by_the_next_send(world: World) -> None:
    send(world)
    world.bs.update_template(
        world.tenant_id, OTP_TEMPLATE, body="Your OTP is {#var#}. Valid for 10 minutes."
    )
    with pytest.raises(DltTemplateMismatch):
        send(world)
    assert send(world, content="Your OTP is 482913. Valid for 10 minutes.")
    world.bs.deactivate_template(world.tenant_id, OTP_TEMPLATE)
    with pytest.raises(Exception, match="not active"):
        send(world, content="Your OTP is 482913. Valid for 10 minutes.")


def test_metadata_and_priority_are_kept(world: World) -> None:
    result = send(world, metadata={"order": 4821, "tags": ["otp"]}, priority=9)
    message = world.bs.get_message(world.tenant_id, result.id)  # type: ignore[attr-defined]
    assert dict(message.metadata) == {"order": 4821, "tags": ["otp"]}
    assert message.priority == 9


def test_no_message_content_in_reprs(world: World) -> None:
    result = send(world)
    assert "482913" not in repr(result)
    assert "482913" not in repr(world.bs.get_message(world.tenant_id, result.id))  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ estimate


def test_estimate_prices_and_judges_without_sending(world: World) -> None:
    est = world.bs.estimate(world.tenant_id, content=OTP_TEXT, dlt_template_id=OTP_TEMPLATE)
    assert (est.encoding, est.segments, est.price_paise, est.dlt_ok, est.header) == (
        "gsm7",
        1,
        25,
        True,
        "ACMEOT",
    )
    bad = world.bs.estimate(world.tenant_id, content="Your OTP is 1.", dlt_template_id=OTP_TEMPLATE)
    assert not bad.dlt_ok
    assert bad.dlt_error is not None
    assert bad.dlt_error.code == "dlt_template_mismatch"
    assert world.bs.balance(world.tenant_id).reserved_paise == 0
    assert queued(world) == 0


# ------------------------------------------------------------------------ batches


def item(i: int, **overrides: object) -> SendRequest:
    fields: dict[str, object] = {
        "phone_number": f"+9198765{43210 + i:05d}",
        "content": OTP_TEXT,
        "dlt_template_id": OTP_TEMPLATE,
        "header": "ACMEOT",
    }
    fields.update(overrides)
    return SendRequest(**fields)  # type: ignore[arg-type]


def test_a_batch_reports_errors_by_index_and_keeps_the_valid_ones(world: World) -> None:
    result = world.bs.send_batch(
        world.tenant_id,
        [item(0), item(1, phone_number="bad"), item(2, content="wrong"), item(3)],
    )
    assert [i.ok for i in result.items] == [True, False, False, True]
    assert [i.error.code for i in result.items if i.error] == [
        "invalid_phone_number",
        "dlt_template_mismatch",
    ]
    assert (result.accepted, result.rejected) == (2, 2)
    assert world.bs.balance(world.tenant_id).reserved_paise == 50
    assert queued(world) == 2
    assert world.bs.reconcile().ok


def test_an_all_or_nothing_batch_with_one_bad_item_sends_nothing(world: World) -> None:
    result = world.bs.send_batch(
        world.tenant_id, [item(0), item(1, content="wrong"), item(2)], all_or_nothing=True
    )
    assert [i.error.code for i in result.items if i.error] == [
        "batch_aborted",
        "dlt_template_mismatch",
        "batch_aborted",
    ]
    assert queued(world) == 0
    assert world.bs.balance(world.tenant_id).reserved_paise == 0


def test_a_batch_takes_what_the_balance_covers(world: World) -> None:
    world.bs.top_up(world.tenant_id, 1)  # total 10,001 paise: 400 messages of 25
    result = world.bs.send_batch(world.tenant_id, [item(i) for i in range(402)])
    assert result.accepted == 400
    assert {i.error.code for i in result.items if i.error} == {"insufficient_credits"}
    assert world.bs.balance(world.tenant_id).available_paise == 1


def test_batch_replays_and_repeats_inside_a_batch(world: World) -> None:
    first = send(world, client_message_id="x-1", phone_number="+919876543210")
    result = world.bs.send_batch(
        world.tenant_id,
        [
            item(0, client_message_id="x-1"),
            item(1, client_message_id="x-2"),
            item(1, client_message_id="x-2"),
            item(2, client_message_id="x-2"),
        ],
    )
    a, b, c, d = result.items
    assert a.result is not None
    assert b.result is not None
    assert c.result is not None
    assert d.error is not None
    assert a.result.replayed
    assert a.result.id == first.id  # type: ignore[attr-defined]
    assert not b.result.replayed
    assert c.result.replayed
    assert c.result.id == b.result.id
    assert d.error.code == "idempotency_conflict"
    assert queued(world) == 2


def test_batch_accepts_mappings_and_limits_its_size(world: World) -> None:
    result = world.bs.send_batch(
        world.tenant_id,
        [{"phone_number": "9876543210", "content": OTP_TEXT, "dlt_template_id": OTP_TEMPLATE}],
    )
    assert result.accepted == 1
    with pytest.raises(InvalidArgument):
        world.bs.send_batch(world.tenant_id, [])
    with pytest.raises(InvalidArgument):
        world.bs.send_batch(world.tenant_id, [item(i) for i in range(1001)])
