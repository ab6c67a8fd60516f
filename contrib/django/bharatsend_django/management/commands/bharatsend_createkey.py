"""``manage.py bharatsend_createkey --tenant ID``: issue an API key, printed once."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import UTC, datetime, timedelta
from typing import Any

from bharatsend_core.domain.keys import Scope
from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Issue an API key. The full key (bs_live_... or bs_test_...) is printed on stdout"
        " this once and never again: only a keyed hash (with BHARATSEND['KEY_PEPPER']) is"
        " stored. Its details and a warning go to stderr."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        from bharatsend_core.cli import _DEFAULT_SCOPES, _positive_int

        scopes = tuple(s.value for s in Scope)
        parser.add_argument("--tenant", required=True, metavar="ID", help="the tenant id (ten_…)")
        parser.add_argument(
            "--scope",
            nargs="+",
            action="extend",
            choices=scopes,
            metavar="SCOPE",
            help=f"what the key may do; repeat or list several ({', '.join(scopes)};"
            f" default: {' '.join(_DEFAULT_SCOPES)})",
        )
        parser.add_argument(
            "--test",
            action="store_true",
            help="a test key (bs_test_...): its messages only ever reach the sandbox carrier",
        )
        parser.add_argument("--name", default="", help="a label to recognise the key by")
        parser.add_argument(
            "--expires-in",
            type=_positive_int,
            metavar="SECONDS",
            help="the key stops working this many seconds from now (default: never)",
        )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core.cli import _DEFAULT_SCOPES, _KEY_WARNING, _iso, _table
        from bharatsend_django import runtime

        now = datetime.now(UTC)
        expires_in = options["expires_in"]
        expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
        issued = runtime.facade().create_api_key(
            options["tenant"],
            scopes=options["scope"] or _DEFAULT_SCOPES,
            mode="test" if options["test"] else "live",
            name=options["name"],
            expires_at=expires_at,
        )
        key = issued.key
        details = _table(
            [
                ("key id", key.id),
                ("mode", key.mode.value),
                ("scopes", " ".join(sorted(s.value for s in key.scopes))),
                ("expires", _iso(key.expires_at) or "never"),
            ]
        )
        # The key alone on stdout (KEY=$(python manage.py bharatsend_createkey ...)).
        self.stdout.write(issued.secret)
        self.stderr.write(f"{details}\nwarning: {_KEY_WARNING}")
