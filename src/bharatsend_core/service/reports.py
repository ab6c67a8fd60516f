"""The delivery report: pages through a period's messages and aggregates them.

Storage hands over a few narrow columns per message (``report_rows``), one
keyset page per short read transaction, so a month of traffic neither loads
whole messages nor holds a lock (SQLite takes its write lock per unit of
work) for the length of the report. The arithmetic lives in
``domain/reports.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.reports import DeliveryReport, ReportBuilder, ReportInput
from bharatsend_core.service.context import Context, require_tenant

__all__ = ["PAGE_SIZE", "ReportService"]

#: Rows read per transaction.
PAGE_SIZE: Final = 5000


class ReportService:
    """Delivery reports over stored messages."""

    def __init__(self, ctx: Context, *, page_size: int = PAGE_SIZE) -> None:
        self._ctx = ctx
        self._page_size = page_size

    def delivery_report(
        self, *, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> DeliveryReport:
        """Messages created in [since, until), of one tenant or of all, by route, operator
        and template; ``TenantNotFound`` for an unknown tenant.
        """
        for name, value in (("since", since), ("until", until)):
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise InvalidArgument(f"{name} must be a timezone-aware datetime", field=name)
        if not since < until:
            raise InvalidArgument("since must be before until", field="since")
        if tenant_id is not None:
            self._ctx.read(lambda uow: require_tenant(uow, tenant_id))
        builder = ReportBuilder()
        after: tuple[datetime, str] | None = None
        while True:
            page = self._page(since, until, tenant_id, after)
            for row in page:
                builder.add(row)
            if len(page) < self._page_size:
                break
            after = (page[-1].created_at, page[-1].id)
        return builder.build(since, until, tenant_id)

    def _page(
        self,
        since: datetime,
        until: datetime,
        tenant_id: str | None,
        after: tuple[datetime, str] | None,
    ) -> Sequence[ReportInput]:
        """One page in its own short read transaction."""
        return self._ctx.read(
            lambda uow: uow.messages.report_rows(
                since, until, tenant_id, after=after, limit=self._page_size
            )
        )
