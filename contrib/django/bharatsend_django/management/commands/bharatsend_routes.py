"""``manage.py bharatsend_routes list|sync|disable NAME|enable NAME``: carrier routes."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandParser

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Carrier routes (SMPP binds): list them, sync BHARATSEND['ROUTES'] to the database"
        " (add each route by name, or update it), or disable/enable one. Running workers"
        " pick changes up at their next reload."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(
            dest="action", metavar="ACTION", required=True, parser_class=CommandParser
        )
        sub.add_parser("list", help="every route, one line each")
        sub.add_parser("sync", help="add or update the routes in BHARATSEND['ROUTES']")
        for action, what in (("disable", "stop choosing"), ("enable", "choose again")):
            one = sub.add_parser(action, help=f"{what} a route")
            one.add_argument("name", metavar="NAME", help="the route's name")

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core.cli import _route_data, _route_line
        from bharatsend_django import runtime

        bs = runtime.facade()
        action = options["action"]
        if action == "list":
            routes = [_route_line(_route_data(r)) for r in bs.list_routes()]
            self.stdout.write(
                "\n".join(routes)
                or "no routes; add them to BHARATSEND['ROUTES'] and run: bharatsend_routes sync"
            )
        elif action == "sync":
            added, updated = bs.apply_routes(runtime.config().routes)
            self.stdout.write(f"routes: {added} added, {updated} updated")
        else:
            name = options["name"]
            config = bs.enable_route(name) if action == "enable" else bs.disable_route(name)
            self.stdout.write(_route_line(_route_data(config)))
