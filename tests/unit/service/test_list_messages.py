"""``list_messages``: the facade validates and normalises filters before the storage reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bharatsend_core.domain.errors import InvalidArgument, InvalidPhoneNumber

from .world import OTP_TEMPLATE, OTP_TEXT, World


def send(world: World, phone: str, **options: object) -> str:
    return world.bs.send(
        world.tenant_id,
        phone_number=phone,
        content=OTP_TEXT,
        dlt_template_id=OTP_TEMPLATE,
        header="ACMEOT",
        **options,  # type: ignore[arg-type]
    ).id


def test_a_number_typed_any_way_finds_the_stored_e164(world: World) -> None:
    mine = send(world, "+919876543210")
    send(world, "+919876543211")
    for typed in ("9876543210", "+919876543210", "098765 43210"):
        page = world.bs.list_messages(world.tenant_id, phone=typed)
        assert [m.id for m in page.messages] == [mine]


def test_pages_follow_the_cursor_newest_first(world: World) -> None:
    sent = []
    for n in range(5):
        sent.append(send(world, f"+91987654321{n}"))
        world.clock.advance(1)
    first = world.bs.list_messages(world.tenant_id, limit=3)
    assert first.has_more
    last = first.messages[-1]
    rest = world.bs.list_messages(world.tenant_id, limit=3, after=(last.created_at, last.id))
    assert not rest.has_more
    assert [m.id for m in (*first.messages, *rest.messages)] == sent[::-1]
    window = world.bs.list_messages(
        world.tenant_id,
        status="accepted",
        created_from=sent_at(world, sent[1]),
        created_to=sent_at(world, sent[3]),
    )
    assert [m.id for m in window.messages] == [sent[2], sent[1]]


def sent_at(world: World, message_id: str) -> object:
    return world.bs.get_message(world.tenant_id, message_id).created_at


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": True}, "limit"),
        ({"status": "bounced"}, "status"),
        ({"created_from": "2026-01-01"}, "created_from"),
        ({"after": ("x", "msg_1")}, "after"),
    ],
)
def test_bad_filters_name_their_field(world: World, filters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        world.bs.list_messages(world.tenant_id, **filters)  # type: ignore[arg-type]
    assert info.value.field == field


def test_created_from_must_come_before_created_to(world: World) -> None:
    now = world.clock.now()
    with pytest.raises(InvalidArgument) as info:
        world.bs.list_messages(world.tenant_id, created_from=now, created_to=now)
    assert info.value.field == "created_from"
    world.bs.list_messages(world.tenant_id, created_from=now, created_to=now + timedelta(1))


def test_an_unparseable_number_is_refused_on_the_phone_field(world: World) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        world.bs.list_messages(world.tenant_id, phone="not a number")
    assert info.value.field == "phone"
