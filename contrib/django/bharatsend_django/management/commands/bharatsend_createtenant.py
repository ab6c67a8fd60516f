"""``manage.py bharatsend_createtenant NAME``: create a tenant and print its id."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Create a tenant with an empty credit account and print its id (only the id, so"
        " a script can capture it: TENANT=$(python manage.py bharatsend_createtenant Acme))."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", metavar="NAME", help="a display name, 1-200 characters")
        parser.add_argument(
            "--billing-point",
            choices=("submit", "delivery"),
            default=None,
            help="charge at carrier acceptance (submit) or at delivery"
            " (default: BHARATSEND['BILLING_POINT'], submit unless configured)",
        )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_django import runtime

        tenant = runtime.facade().create_tenant(
            options["name"], billing_point=options["billing_point"]
        )
        self.stdout.write(tenant.id)
