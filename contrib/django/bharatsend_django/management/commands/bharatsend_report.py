"""``manage.py bharatsend_report``: delivery figures, as ``bharatsend report`` prints them."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Delivery figures of the messages created in a period, overall and by route,"
        " operator (of the number series; ported numbers count under their original"
        " operator) and template: delivered, failed, pending, delivery rate (delivered of"
        " final), accepted-to-delivered latency percentiles (nearest rank), and the most"
        " frequent failure codes. The output is that of 'bharatsend report'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--since", default="24h", help="start: ISO 8601 date/time or 90m/24h/7d back (24h)"
        )
        parser.add_argument("--until", default=None, help="end (exclusive); default now")
        parser.add_argument(
            "--tenant", default=None, metavar="ID", help="one tenant (default: all tenants)"
        )
        parser.add_argument(
            "--format", choices=("table", "csv", "json"), default="table", help="output format"
        )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core.cli import render_report, report_period
        from bharatsend_django import runtime

        since, until = report_period(options["since"], options["until"])
        tenant = options["tenant"]
        report = runtime.facade().delivery_report(since=since, until=until, tenant_id=tenant)
        self.stdout.write(render_report(report, tenant, options["format"])[1])
