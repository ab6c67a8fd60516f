"""``manage.py bharatsend_import_dlt --tenant ID FILE.csv``: import a DLT portal export."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Import the template CSV exported from a DLT portal (Jio, Airtel, Vi, BSNL...):"
        " entities and headers it names are registered, templates created or updated, in"
        " one transaction. A file with any faulty row imports nothing: every faulty row"
        " is listed by line number and the command exits with code 2."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, metavar="ID", help="the tenant id (ten_…)")
        parser.add_argument("file", metavar="FILE.csv", help="the portal's CSV export (UTF-8)")
        parser.add_argument(
            "--pe-id",
            default=None,
            metavar="PE_ID",
            help="the principal entity id, when the CSV has no entity column",
        )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core.cli import _read_bytes, _row_line, _table
        from bharatsend_django import runtime

        raw = _read_bytes(options["file"], "file")
        report = runtime.facade().import_dlt_csv(options["tenant"], raw, pe_id=options["pe_id"])
        blocks = [
            _table(
                [
                    ("templates created", len(report.created)),
                    ("templates updated", len(report.updated)),
                    ("templates unchanged", len(report.unchanged)),
                    ("rows skipped", len(report.skipped)),
                    ("entities created", len(report.entities_created)),
                    ("headers created", len(report.headers_created)),
                    ("headers updated", len(report.headers_updated)),
                    ("warnings", len(report.warnings)),
                ]
            )
        ]
        if report.skipped:
            blocks.append(
                "\n".join(
                    f"skipped: line {n.line}: {n.template_id}: {n.reason}" for n in report.skipped
                )
            )
        if report.warnings:
            blocks.append(
                "\n".join(
                    "warning: "
                    + _row_line(
                        {"line": w.line, "column": w.column, "code": w.code, "message": w.message}
                    )
                    for w in report.warnings
                )
            )
        self.stdout.write("\n\n".join(blocks))
