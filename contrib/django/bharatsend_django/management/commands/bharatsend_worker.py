"""``manage.py bharatsend_worker``: the dispatch worker, until SIGTERM or SIGINT."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from bharatsend_django.management import BharatSendCommand


class Command(BharatSendCommand):
    help = (
        "Apply BHARATSEND['ROUTES'] (add or update each route by name), then run a dispatch"
        " worker: bind every enabled route, submit accepted messages, ingest delivery"
        " receipts and deliver webhooks. Sandbox messages go to a built-in SMSC simulator"
        " unless a sandbox route is stored. SIGTERM or SIGINT drains in-flight submits and"
        " exits with code 0. Status signals (message_status_changed, webhook_failed) fire in"
        " this process."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--no-webhooks",
            action="store_true",
            help="do not deliver webhooks in this process (run another worker for them)",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=0.5,
            metavar="S",
            help="seconds between polls when idle (default 0.5)",
        )
        parser.add_argument(
            "--no-sandbox",
            action="store_true",
            help="do not run the built-in sandbox SMSC simulator",
        )
        parser.add_argument(
            "--receipt-threads",
            type=int,
            default=1,
            metavar="N",
            help="threads ingesting delivery receipts, 1 to 8 (default 1; 2 on PostgreSQL)",
        )
        parser.add_argument(
            "--cpus",
            metavar="LIST",
            help="pin this process to these CPUs (1, 0,2 or 0-3; Linux): a worker uses one,"
            " and runs faster pinned to it",
        )

    def run(self, *args: Any, **options: Any) -> None:
        from bharatsend_core import pin_process
        from bharatsend_core.adapters.system import parse_cpu_list
        from bharatsend_core.service.receipts import check_receipt_threads
        from bharatsend_django import runtime

        check_receipt_threads(options["receipt_threads"])  # before anything is touched
        # First, so a bad list is refused before routes or the database are touched.
        pinned = None if options["cpus"] is None else pin_process(parse_cpu_list(options["cpus"]))
        bs = runtime.facade()
        added, updated = bs.apply_routes(runtime.config().routes)
        webhooks = not options["no_webhooks"]
        worker = bs.worker(
            webhooks=webhooks,
            sandbox_carrier=not options["no_sandbox"],
            poll_interval=options["poll_interval"],
            receipt_threads=options["receipt_threads"],
        )
        self.stdout.write(
            f"worker {worker.owner} starting: routes {added} added, {updated} updated;"
            f" webhooks {'on' if webhooks else 'off'};"
            + ("" if pinned is None else f" pinned to CPUs {sorted(pinned)};")
            + " SIGTERM or Ctrl-C stops"
        )
        self.stdout.flush()
        worker.run()  # installs the SIGTERM/SIGINT handlers (main thread), drains on a signal
        stats = worker.health().stats
        self.stdout.write(
            f"worker {worker.owner} stopped: {stats.sent} sent, {stats.failed} failed"
        )
