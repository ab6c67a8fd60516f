"""Narrow reads over messages: recent counts per number (the per-number limit) and report rows."""

from __future__ import annotations

from datetime import datetime

from attrs import evolve

from bharatsend_core.domain.message import FailureReason, Message, MessageError, Status
from bharatsend_core.domain.reports import ReportInput
from bharatsend_core.ports.storage import Storage

from .builders import at, message, new_id

OTP = frozenset({"transactional", "service_implicit"})
PHONE = "+919812345678"
OTHER_PHONE = "+919900011122"


def add(storage: Storage, *stored: Message) -> None:
    with storage.unit_of_work() as uow:
        uow.messages.add_many([(m, None) for m in stored])
        uow.commit()


def count(storage: Storage, tenant_id: str, phone: str, since: datetime) -> tuple[int, object]:
    with storage.unit_of_work() as uow:
        return uow.messages.count_recent(tenant_id, phone, OTP, since)


# --------------------------------------------------------------------------- count_recent


def test_count_recent_counts_the_numbers_messages_since_the_instant(storage: Storage) -> None:
    tenant_id = new_id("ten")
    add(storage, *(message(tenant_id, accepted=s) for s in (10, 20, 30)))
    assert count(storage, tenant_id, PHONE, at(20)) == (2, at(20))  # since is inclusive
    assert count(storage, tenant_id, PHONE, at(0)) == (3, at(10))
    assert count(storage, tenant_id, PHONE, at(31)) == (0, None)


def test_count_recent_skips_other_categories_numbers_and_tenants(storage: Storage) -> None:
    tenant_id = new_id("ten")
    counted = message(tenant_id, accepted=5)
    service = evolve(message(tenant_id, accepted=1), category="service_implicit")
    add(
        storage,
        counted,
        service,
        evolve(message(tenant_id, accepted=2), category="government"),
        evolve(message(tenant_id, accepted=3), phone=OTHER_PHONE),
        message(new_id("ten"), accepted=4),
    )
    assert count(storage, tenant_id, PHONE, at(0)) == (2, at(1))


def test_count_recent_many_answers_every_number_in_one_call(storage: Storage) -> None:
    tenant_id = new_id("ten")
    add(
        storage,
        message(tenant_id, accepted=3),
        message(tenant_id, accepted=7),
        evolve(message(tenant_id, accepted=5), phone=OTHER_PHONE),
        evolve(message(tenant_id, accepted=6), phone=OTHER_PHONE, category="promotional"),
        evolve(message(new_id("ten"), accepted=6), phone="+919811122233"),
    )
    with storage.unit_of_work() as uow:
        found = uow.messages.count_recent_many(
            tenant_id, [PHONE, OTHER_PHONE, "+919811122233", PHONE], OTP, at(0)
        )
        later = uow.messages.count_recent_many(tenant_id, [PHONE, OTHER_PHONE], OTP, at(6))
        nothing = uow.messages.count_recent_many(tenant_id, [], OTP, at(0))
    assert dict(found) == {PHONE: (2, at(3)), OTHER_PHONE: (1, at(5))}
    assert dict(later) == {PHONE: (1, at(7))}
    assert dict(nothing) == {}


def test_count_recent_sees_the_transactions_own_writes(storage: Storage) -> None:
    tenant_id = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.messages.add(message(tenant_id, accepted=1), fingerprint=None)
        assert uow.messages.count_recent(tenant_id, PHONE, OTP, at(0)) == (1, at(1))
        uow.rollback()
    assert count(storage, tenant_id, PHONE, at(0)) == (0, None)


# --------------------------------------------------------------------------- report_rows


def test_report_rows_carry_the_report_columns_oldest_first(storage: Storage) -> None:
    tenant_id = new_id("ten")
    failed = evolve(
        message(tenant_id, accepted=2),
        status=Status.REJECTED,
        route="airtel-1",
        error=MessageError("carrier_rejected", FailureReason.REJECTED, "0x45"),
        updated_at=at(9),
    )
    plain = message(tenant_id, accepted=1)
    add(storage, failed, plain)
    with storage.unit_of_work() as uow:
        rows = uow.messages.report_rows(at(0), at(10), tenant_id)
    assert list(rows) == [
        ReportInput(
            id=plain.id,
            template_id=plain.template_id,
            route=None,
            phone=PHONE,
            status=Status.ACCEPTED,
            error_code=None,
            created_at=at(1),
            updated_at=at(1),
        ),
        ReportInput(
            id=failed.id,
            template_id=failed.template_id,
            route="airtel-1",
            phone=PHONE,
            status=Status.REJECTED,
            error_code="carrier_rejected",
            created_at=at(2),
            updated_at=at(9),
        ),
    ]


def test_report_rows_keep_the_period_and_the_tenant_and_page_by_cursor(storage: Storage) -> None:
    tenant_id, other = new_id("ten"), new_id("ten")
    mine = [message(tenant_id, accepted=s) for s in (1, 2, 2, 2, 3, 10)]
    theirs = message(other, accepted=2)
    add(storage, *mine, theirs)
    expected = sorted(
        (m for m in mine if m.created_at < at(10)), key=lambda m: (m.created_at, m.id)
    )
    with storage.unit_of_work() as uow:
        seen: list[str] = []
        after = None
        while True:
            page = uow.messages.report_rows(at(1), at(10), tenant_id, after=after, limit=2)
            seen += [r.id for r in page]
            if len(page) < 2:
                break
            after = (page[-1].created_at, page[-1].id)
        everyone = uow.messages.report_rows(at(2), at(3), None)
    assert seen == [m.id for m in expected]
    assert {r.id for r in everyone} == {m.id for m in mine[1:4]} | {theirs.id}
