"""Listing a tenant's messages: filters, newest-first order, keyset paging, tenant isolation."""

from __future__ import annotations

from datetime import datetime

from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bharatsend_core.domain.message import Message, Status
from bharatsend_core.ports.storage import MessagePage, MessageQuery, Storage

from .builders import at, message, new_id

EXAMPLES = settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
OTHER_PHONE = "+919900011122"
OTHER_TEMPLATE = "1207160000000000002"


def add(storage: Storage, *stored: Message) -> None:
    with storage.unit_of_work() as uow:
        uow.messages.add_many([(m, None) for m in stored])
        uow.commit()


def listing(storage: Storage, tenant_id: str, **query: object) -> MessagePage:
    with storage.unit_of_work() as uow:
        return uow.messages.list(tenant_id, MessageQuery(**query))  # type: ignore[arg-type]


def ids(page: MessagePage) -> list[str]:
    return [m.id for m in page.messages]


def newest_first(messages: list[Message]) -> list[str]:
    return [m.id for m in sorted(messages, key=lambda m: (m.created_at, m.id), reverse=True)]


def test_messages_come_newest_first_whole_with_parts_and_timeline(storage: Storage) -> None:
    tenant_id = new_id("ten")
    stored = [message(tenant_id, accepted=s, segments=2) for s in (5, 1, 3)]
    add(storage, *stored)
    page = listing(storage, tenant_id)
    assert ids(page) == newest_first(stored)
    assert not page.has_more
    assert list(page.messages) == sorted(stored, key=lambda m: m.created_at, reverse=True)


def test_only_the_tenants_messages_are_ever_listed(storage: Storage) -> None:
    mine, theirs = new_id("ten"), new_id("ten")
    own = message(mine, accepted=1)
    add(storage, own, message(theirs, accepted=2, client_message_id="shared"))
    assert ids(listing(storage, mine)) == [own.id]
    assert ids(listing(storage, mine, client_message_id="shared")) == []
    assert ids(listing(storage, new_id("ten"))) == []


def test_each_filter_keeps_only_matching_messages(storage: Storage) -> None:
    tenant_id = new_id("ten")
    plain = message(tenant_id, accepted=1)
    delivered = evolve(message(tenant_id, accepted=2), status=Status.DELIVERED)
    elsewhere = evolve(message(tenant_id, accepted=3), phone=OTHER_PHONE)
    keyed = message(tenant_id, accepted=4, client_message_id="order-42")
    other_template = evolve(message(tenant_id, accepted=5), template_id=OTHER_TEMPLATE)
    add(storage, plain, delivered, elsewhere, keyed, other_template)

    assert ids(listing(storage, tenant_id, status="delivered")) == [delivered.id]
    assert ids(listing(storage, tenant_id, phone=OTHER_PHONE)) == [elsewhere.id]
    assert ids(listing(storage, tenant_id, client_message_id="order-42")) == [keyed.id]
    assert ids(listing(storage, tenant_id, template_id=OTHER_TEMPLATE)) == [other_template.id]
    assert ids(listing(storage, tenant_id, status="accepted", phone=OTHER_PHONE)) == [elsewhere.id]
    assert ids(listing(storage, tenant_id, status="failed")) == []


def test_created_from_is_inclusive_and_created_to_exclusive(storage: Storage) -> None:
    tenant_id = new_id("ten")
    stored = {s: message(tenant_id, accepted=s) for s in (1, 2, 3, 4)}
    add(storage, *stored.values())
    page = listing(storage, tenant_id, created_from=at(2), created_to=at(4))
    assert ids(page) == [stored[3].id, stored[2].id]


def test_a_cursor_pages_through_equal_timestamps_by_id(storage: Storage) -> None:
    tenant_id = new_id("ten")
    # Five messages in the same microsecond, two before: order falls back to id.
    stored = [message(tenant_id, accepted=10) for _ in range(5)]
    stored += [message(tenant_id, accepted=1), message(tenant_id, accepted=2)]
    add(storage, *stored)
    seen: list[str] = []
    after: tuple[datetime, str] | None = None
    pages = 0
    while True:
        page = listing(storage, tenant_id, after=after, limit=2)
        pages += 1
        seen += ids(page)
        if not page.has_more:
            break
        last = page.messages[-1]
        after = (last.created_at, last.id)
    assert seen == newest_first(stored)
    assert pages == 4


def test_has_more_is_exact_at_the_page_boundary(storage: Storage) -> None:
    tenant_id = new_id("ten")
    add(storage, *(message(tenant_id, accepted=s) for s in range(3)))
    assert listing(storage, tenant_id, limit=3).has_more is False
    assert listing(storage, tenant_id, limit=2).has_more is True
    assert len(listing(storage, tenant_id, limit=2).messages) == 2


_STATUSES = st.sampled_from([None, "accepted", "delivered"])
_PHONES = st.sampled_from([None, "+919812345678", OTHER_PHONE])


@EXAMPLES
@given(
    data=st.data(),
    limit=st.integers(min_value=1, max_value=7),
    status=_STATUSES,
    phone=_PHONES,
)
def test_paging_with_any_limit_yields_exactly_the_filtered_set_in_order(
    storage: Storage, data: st.DataObject, limit: int, status: str | None, phone: str | None
) -> None:
    tenant_id = new_id("ten")
    drawn = data.draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=4),
                st.sampled_from([Status.ACCEPTED, Status.DELIVERED]),
                st.sampled_from(["+919812345678", OTHER_PHONE]),
            ),
            max_size=12,
        )
    )
    stored = [evolve(message(tenant_id, accepted=s), status=st_, phone=ph) for s, st_, ph in drawn]
    add(storage, *stored, message(new_id("ten"), accepted=2))
    wanted = [
        m
        for m in stored
        if (status is None or m.status.value == status) and (phone is None or m.phone == phone)
    ]
    seen: list[str] = []
    after: tuple[datetime, str] | None = None
    for _ in range(len(stored) + 2):
        page = listing(storage, tenant_id, status=status, phone=phone, after=after, limit=limit)
        assert len(page.messages) <= limit
        seen += ids(page)
        if not page.has_more:
            break
        after = (page.messages[-1].created_at, page.messages[-1].id)
    assert seen == newest_first(wanted)
