"""The delivery report: counts, delivery rate, latency percentiles and failure codes.

Pure computation over :class:`ReportInput` rows (a few columns of each
message, never its content), grouped three ways: by route, by the number
series' operator, and by DLT template, plus one ``all`` total. Rows are fed
one at a time to :class:`ReportBuilder`, so a long period is aggregated while
storage pages through it, without holding whole messages.

Definitions:

- *delivered*: status ``delivered``; *failed*: any other final status
  (undelivered, expired, rejected, failed); *pending*: not final yet;
- *delivery rate*: delivered / (delivered + failed), None while nothing is final;
- *latency*: accepted → delivered (``updated_at - created_at``: a final
  message never changes again, so its last update is its delivery), over
  delivered messages only;
- *percentiles*: nearest-rank (the smallest value with at least p% of the
  values at or below it), so every percentile is an observed latency and
  p50 <= p90 <= p99 always holds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from datetime import datetime

import phonenumbers
from attrs import field, frozen
from phonenumbers import carrier

from bharatsend_core.domain.message import FINAL_STATUSES, Status

__all__ = [
    "DIMENSIONS",
    "NO_ROUTE",
    "UNKNOWN_OPERATOR",
    "DeliveryReport",
    "ReportBuilder",
    "ReportInput",
    "ReportRow",
    "build_report",
    "nearest_rank",
    "series_operator",
]

#: The grouping dimensions, in the order rows are reported.
DIMENSIONS: tuple[str, ...] = ("operator", "route", "template")
#: The route key of messages never submitted.
NO_ROUTE = "(none)"
#: The operator key of numbers whose series phonenumbers does not know.
UNKNOWN_OPERATOR = "(unknown)"
#: Key of failed messages that carry no error code.
_NO_CODE = "(none)"
#: National digits that decide an Indian number's series operator
#: (phonenumbers' +91 carrier prefixes are at most "91" + 5 digits).
_SERIES_DIGITS = 5


@frozen
class ReportInput:
    """What the report reads of one message: no content, no metadata."""

    id: str
    template_id: str
    route: str | None
    phone: str
    status: Status = field(converter=Status)
    #: ``MessageError.code`` of a message that ended badly, else None.
    error_code: str | None
    created_at: datetime
    updated_at: datetime


@frozen
class ReportRow:
    """One group's figures (``dimension`` is route, operator, template, or ``all``)."""

    dimension: str
    key: str
    messages: int
    delivered: int
    #: Final but not delivered.
    failed: int
    pending: int
    #: delivered / (delivered + failed); None when nothing is final.
    delivery_rate: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    #: (error code, count) of failed messages, most frequent first.
    failure_codes: tuple[tuple[str, int], ...]


@frozen
class DeliveryReport:
    """Messages created in [since, until), of one tenant or of all (``tenant_id`` None)."""

    since: datetime
    until: datetime
    tenant_id: str | None
    #: Every message: dimension ``all``, key ``all``.
    total: ReportRow
    #: Ordered by dimension (operator, route, template), then messages descending, then key.
    rows: tuple[ReportRow, ...]


def nearest_rank(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of values sorted ascending; None for no values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@functools.lru_cache(maxsize=65_536)
def _operator_of_series(country_code: int, series: str, full: bool) -> str:
    digits = series if full else series + "0" * 5
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(digits))
    return carrier.name_for_number(number, "en") or UNKNOWN_OPERATOR


def series_operator(e164: str) -> str:
    """The operator the number's *series* was allocated to, or ``(unknown)``.

    Numbers port between operators (MNP) and keep their series, so this is
    the original operator, not necessarily the one delivering today: read the
    operator rows as "numbers first issued by". Indian numbers are looked up
    once per 5-digit series (all phonenumbers needs for +91); others once
    per number.
    """
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return UNKNOWN_OPERATOR
    national = str(parsed.national_number)
    country_code = parsed.country_code or 0
    if country_code == 91 and len(national) == 10:
        return _operator_of_series(91, national[:_SERIES_DIGITS], False)
    return _operator_of_series(country_code, national, True)


class _Group:
    """Running figures of one group."""

    __slots__ = ("codes", "delivered", "failed", "latencies", "pending")

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.pending = 0
        self.latencies: list[float] = []
        self.codes: dict[str, int] = {}

    def add(self, row: ReportInput) -> None:
        if row.status is Status.DELIVERED:
            self.delivered += 1
            delta = row.updated_at - row.created_at
            self.latencies.append(max(delta.total_seconds() * 1000, 0.0))
        elif row.status in FINAL_STATUSES:
            self.failed += 1
            code = row.error_code or _NO_CODE
            self.codes[code] = self.codes.get(code, 0) + 1
        else:
            self.pending += 1

    def row(self, dimension: str, key: str) -> ReportRow:
        final = self.delivered + self.failed
        ordered = sorted(self.latencies)
        return ReportRow(
            dimension=dimension,
            key=key,
            messages=final + self.pending,
            delivered=self.delivered,
            failed=self.failed,
            pending=self.pending,
            delivery_rate=self.delivered / final if final else None,
            latency_p50_ms=nearest_rank(ordered, 50),
            latency_p90_ms=nearest_rank(ordered, 90),
            latency_p99_ms=nearest_rank(ordered, 99),
            failure_codes=tuple(sorted(self.codes.items(), key=lambda kv: (-kv[1], kv[0]))),
        )


class ReportBuilder:
    """Aggregates rows one at a time; ``build`` makes the report (no I/O, no clock).

    ``operator_of`` maps an E.164 number to its operator key; the default is
    :func:`series_operator`.
    """

    def __init__(self, operator_of: Callable[[str], str] = series_operator) -> None:
        self._operator_of = operator_of
        self._total = _Group()
        self._groups: dict[tuple[str, str], _Group] = {}

    def add(self, row: ReportInput) -> None:
        """Count one message in the total and in its route, operator and template groups."""
        self._total.add(row)
        for key in (
            ("operator", self._operator_of(row.phone)),
            ("route", row.route or NO_ROUTE),
            ("template", row.template_id),
        ):
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            group.add(row)

    def build(self, since: datetime, until: datetime, tenant_id: str | None) -> DeliveryReport:
        """The report over every row added so far."""
        rows = [group.row(dim, key) for (dim, key), group in self._groups.items()]
        order = {dim: i for i, dim in enumerate(DIMENSIONS)}
        rows.sort(key=lambda r: (order[r.dimension], -r.messages, r.key))
        return DeliveryReport(
            since=since,
            until=until,
            tenant_id=tenant_id,
            total=self._total.row("all", "all"),
            rows=tuple(rows),
        )


def build_report(
    rows: Iterable[ReportInput],
    *,
    since: datetime,
    until: datetime,
    tenant_id: str | None = None,
    operator_of: Callable[[str], str] = series_operator,
) -> DeliveryReport:
    """The report over ``rows`` (the caller has already kept those created in [since, until))."""
    builder = ReportBuilder(operator_of)
    for row in rows:
        builder.add(row)
    return builder.build(since, until, tenant_id)
