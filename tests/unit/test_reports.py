"""The delivery report: pure aggregation (domain) and the facade over stored messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core import BharatSend
from bharatsend_core.domain.errors import InvalidArgument, TenantNotFound
from bharatsend_core.domain.message import (
    FINAL_STATUSES,
    Claim,
    PartReceipt,
    PartSubmitted,
    ReceiptOutcome,
    Status,
)
from bharatsend_core.domain.reports import (
    ReportInput,
    ReportRow,
    build_report,
    nearest_rank,
    series_operator,
)
from bharatsend_core.testing import FakeClock, SequentialIds

from .service.world import OTP_TEMPLATE, OTP_TEXT, PEPPER, make_world

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def row(
    n: int = 0,
    *,
    status: Status = Status.DELIVERED,
    route: str | None = "airtel-1",
    template: str = "T1",
    phone: str = "+919876543210",
    code: str | None = None,
    latency_ms: float = 1000,
) -> ReportInput:
    return ReportInput(
        id=f"msg_{n:04d}",
        template_id=template,
        route=route,
        phone=phone,
        status=status,
        error_code=code,
        created_at=T0 + timedelta(seconds=n),
        updated_at=T0 + timedelta(seconds=n, milliseconds=latency_ms),
    )


def report_of(*rows: ReportInput) -> dict[tuple[str, str], ReportRow]:
    report = build_report(rows, since=T0, until=T0 + timedelta(days=1))
    return {(r.dimension, r.key): r for r in (report.total, *report.rows)}


def test_counts_rate_latency_and_failure_codes_per_group() -> None:
    rows = report_of(
        row(0, latency_ms=2000),
        row(1, latency_ms=4000),
        row(2, status=Status.REJECTED, code="carrier_rejected"),
        row(3, status=Status.UNDELIVERED, code="undelivered"),
        row(4, status=Status.EXPIRED, code="carrier_rejected"),
        row(5, status=Status.SENT, route=None),
    )
    total = rows[("all", "all")]
    assert (total.messages, total.delivered, total.failed, total.pending) == (6, 2, 3, 1)
    assert total.delivery_rate == pytest.approx(2 / 5)
    assert (total.latency_p50_ms, total.latency_p90_ms, total.latency_p99_ms) == (
        2000,
        4000,
        4000,
    )
    assert total.failure_codes == (("carrier_rejected", 2), ("undelivered", 1))
    assert rows[("route", "(none)")].pending == 1
    assert rows[("route", "airtel-1")].messages == 5
    assert rows[("operator", "Airtel")].messages == 6
    assert rows[("template", "T1")].messages == 6


def test_nothing_final_means_no_rate_and_no_latency() -> None:
    total = report_of(row(0, status=Status.ACCEPTED))[("all", "all")]
    assert total.delivery_rate is None
    assert total.latency_p50_ms is None
    assert total.failure_codes == ()


def test_rows_are_ordered_by_dimension_then_messages_descending() -> None:
    report = build_report(
        [row(0, template="A"), row(1, template="B"), row(2, template="B"), row(3, route="x")],
        since=T0,
        until=T0 + timedelta(days=1),
        tenant_id="ten_1",
    )
    assert [(r.dimension, r.key, r.messages) for r in report.rows] == [
        ("operator", "Airtel", 4),
        ("route", "airtel-1", 3),
        ("route", "x", 1),
        ("template", "B", 2),
        ("template", "A", 1),
        ("template", "T1", 1),
    ]
    assert report.tenant_id == "ten_1"


def test_nearest_rank_percentiles_are_observed_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 90) == 90
    assert nearest_rank(values, 99) == 99
    assert nearest_rank([7.0], 99) == 7
    assert nearest_rank([], 50) is None


def test_the_operator_is_the_number_series_original_operator() -> None:
    assert series_operator("+919876543210") == "Airtel"
    assert series_operator("+917012345678") == "Reliance Jio"
    assert series_operator("+14155552671") == "(unknown)"


_STATUS = st.sampled_from(list(Status))
_ROWS = st.lists(
    st.builds(
        row,
        st.integers(min_value=0, max_value=10_000),
        status=_STATUS,
        route=st.sampled_from([None, "r1", "r2"]),
        template=st.sampled_from(["T1", "T2"]),
        phone=st.sampled_from(["+919876543210", "+917012345678", "+14155552671"]),
        code=st.sampled_from([None, "undelivered", "carrier_rejected"]),
        latency_ms=st.floats(min_value=0, max_value=10**7, allow_nan=False),
    ),
    max_size=40,
)


@given(_ROWS)
def test_counts_add_up_rates_are_fractions_and_percentiles_are_ordered(
    rows: list[ReportInput],
) -> None:
    report = build_report(rows, since=T0, until=T0 + timedelta(days=30))
    assert report.total.messages == len(rows)
    for r in (report.total, *report.rows):
        assert r.messages == r.delivered + r.failed + r.pending
        assert sum(n for _, n in r.failure_codes) == r.failed
        if r.delivery_rate is None:
            assert r.delivered + r.failed == 0
        else:
            assert 0 <= r.delivery_rate <= 1
        if r.delivered:
            assert r.latency_p50_ms is not None
            assert r.latency_p90_ms is not None
            assert r.latency_p99_ms is not None
            assert 0 <= r.latency_p50_ms <= r.latency_p90_ms <= r.latency_p99_ms
        else:
            assert r.latency_p50_ms is None
    for dimension in ("route", "operator", "template"):
        group = [r for r in report.rows if r.dimension == dimension]
        assert sum(r.messages for r in group) == len(rows)
        assert sum(r.delivered for r in group) == report.total.delivered
        assert [r.messages for r in group] == sorted((r.messages for r in group), reverse=True)
    final = sum(1 for r in rows if r.status in FINAL_STATUSES)
    assert report.total.delivered + report.total.failed == final


# --------------------------------------------------------------------------- facade


def test_the_facade_reports_the_period_of_one_tenant_or_all() -> None:
    clock = FakeClock(T0)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    world = make_world(bs, clock)
    other = make_world(bs, clock)

    def send(w: object, phone: str) -> str:
        return bs.send(
            w.tenant_id,  # type: ignore[attr-defined]
            phone_number=phone,
            content=OTP_TEXT,
            dlt_template_id=OTP_TEMPLATE,
            header="ACMEOT",
        ).id

    delivered = send(world, "+919876543210")
    rejected = send(world, "+917012345678")
    send(other, "+919876543210")
    clock.advance(3600)
    send(world, "+919876543211")  # after the period
    with bs.storage.unit_of_work() as uow:
        for message_id, outcome in ((delivered, "delivered"), (rejected, "rejected")):
            m = uow.messages.get(world.tenant_id, message_id)
            assert m is not None
            at = T0 + timedelta(seconds=2)
            m = m.apply(Claim(at=at, route="airtel-1"))
            m = m.apply(PartSubmitted(at=at, index=0, carrier_message_id=f"c-{message_id}"))
            m = m.apply(PartReceipt(at=at, index=0, outcome=ReceiptOutcome(outcome)))
            uow.messages.update(m)
        uow.commit()

    report = bs.delivery_report(
        since=T0, until=T0 + timedelta(minutes=30), tenant_id=world.tenant_id
    )
    assert (report.total.messages, report.total.delivered, report.total.failed) == (2, 1, 1)
    assert report.total.latency_p50_ms == 2000
    everyone = bs.delivery_report(since=T0, until=T0 + timedelta(minutes=30))
    assert everyone.total.messages == 3
    with pytest.raises(InvalidArgument):
        bs.delivery_report(since=T0, until=T0)
    with pytest.raises(TenantNotFound):
        bs.delivery_report(since=T0, until=T0 + timedelta(1), tenant_id="ten_nobody")
