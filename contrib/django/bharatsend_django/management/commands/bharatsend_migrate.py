"""``manage.py bharatsend_migrate``: create or upgrade the core's tables."""

from __future__ import annotations

from typing import Any

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Create or upgrade bharatsend-core's tables in the database BHARATSEND['DATABASE']"
        " names (idempotent). 'manage.py migrate' does this too unless"
        " BHARATSEND['MIGRATE_ON_MIGRATE'] is False."
    )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core.cli import _redact
        from bharatsend_django import runtime

        bs = runtime.facade()
        bs.migrate()
        self.stdout.write(f"{_redact(bs.settings.database_url)}: schema is up to date")
