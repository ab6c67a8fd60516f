"""``flask bharatsend ...``: the operator commands, on the app's configured facade."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask.cli import with_appcontext

from bharatsend_core.domain.errors import BharatSendError

__all__ = ["bharatsend_group"]

F = TypeVar("F", bound=Callable[..., Any])


def _errors(func: F) -> F:
    """One line on stderr and exit code 1 for a bharatsend error, no traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BharatSendError as err:
            field = f" ({err.field})" if err.field else ""
            click.echo(f"error: {err.code}{field}: {err.message}", err=True)
            sys.exit(1)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


def _bs() -> Any:
    from bharatsend_flask import facade

    return facade()


@click.group("bharatsend")
def bharatsend_group() -> None:
    """bharatsend-core: database, keys, DLT templates, routes and the worker."""


@bharatsend_group.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_appcontext
@_errors
def db_upgrade() -> None:
    """Create or migrate the tables to the newest schema."""
    _bs().migrate()
    click.echo("database is at the newest schema")


@bharatsend_group.group("keys")
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant id (ten_…)")
@click.option(
    "--scope", "scopes", multiple=True, default=("sms:send", "sms:read"), show_default=True
)
@click.option("--test", is_flag=True, help="A bs_test_ key (sandbox carrier only)")
@click.option("--name", default="", help="A label for people")
@with_appcontext
@_errors
def keys_create(tenant: str, scopes: tuple[str, ...], test: bool, name: str) -> None:
    """Issue a key; the full key is printed once and never again."""
    issued = _bs().create_api_key(tenant, scopes=scopes, mode="test" if test else "live", name=name)
    click.echo(issued.secret)
    click.echo("store this key now: it is not shown again", err=True)


@keys.command("list")
@click.option("--tenant", required=True, help="Tenant id (ten_…)")
@with_appcontext
@_errors
def keys_list(tenant: str) -> None:
    """The tenant's keys (never their secrets)."""
    for key in _bs().list_api_keys(tenant):
        state = "revoked" if key.revoked_at else "active"
        scopes = ",".join(sorted(s.value for s in key.scopes))
        click.echo(f"{key.prefix}  {state}  {scopes}  {key.name}")


@keys.command("revoke")
@click.option("--tenant", required=True, help="Tenant id (ten_…)")
@click.argument("key_id")
@with_appcontext
@_errors
def keys_revoke(tenant: str, key_id: str) -> None:
    """Revoke a key at once."""
    key = _bs().revoke_api_key(tenant, key_id)
    click.echo(f"revoked {key.prefix}")


@bharatsend_group.group("templates")
def templates() -> None:
    """DLT templates."""


@templates.command("import")
@click.option("--tenant", required=True, help="Tenant id (ten_…)")
@click.option("--pe-id", default=None, help="PE ID when the CSV has no entity column")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
@_errors
def templates_import(tenant: str, pe_id: str | None, csv_file: Path) -> None:
    """Import a DLT portal CSV export: every row or none."""
    report = _bs().import_dlt_csv(tenant, csv_file.read_bytes(), pe_id=pe_id)
    click.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, skipped {len(report.skipped)}"
    )


@templates.command("list")
@click.option("--tenant", required=True, help="Tenant id (ten_…)")
@with_appcontext
@_errors
def templates_list(tenant: str) -> None:
    """The tenant's templates."""
    for t in _bs().list_templates(tenant):
        state = "active" if t.active else "inactive"
        click.echo(f"{t.template_id}  {t.category.value}  {state}  {','.join(sorted(t.headers))}")


@bharatsend_group.group("routes")
def routes() -> None:
    """Carrier routes."""


@routes.command("list")
@with_appcontext
@_errors
def routes_list() -> None:
    """Every route."""
    for config in _bs().list_routes():
        route, conn = config.route, config.connection
        state = "enabled" if route.enabled else "disabled"
        click.echo(f"{route.name}  {conn.host}:{conn.port}  {state}  priority={route.priority}")


@routes.command("sync")
@with_appcontext
@_errors
def routes_sync() -> None:
    """Add or update the routes given in BHARATSEND_ROUTES."""
    added, updated = sync_routes()
    click.echo(f"routes: {added} added, {updated} updated")


def sync_routes() -> tuple[int, int]:
    """Apply ``BHARATSEND_ROUTES`` (a list of ``add_route`` keyword dicts) to storage."""
    from bharatsend_flask import state

    added, updated = _bs().apply_routes(state().routes)
    return int(added), int(updated)


@bharatsend_group.command("worker")
@click.option("--no-webhooks", is_flag=True, help="Do not deliver webhooks in this process")
@click.option(
    "--cpus",
    metavar="LIST",
    help="Pin this process to these CPUs (1, 0,2 or 0-3; Linux): a worker uses one,"
    " and runs faster pinned to it",
)
@click.option(
    "--receipt-threads",
    type=int,
    default=1,
    show_default=True,
    help="Threads ingesting delivery receipts, 1 to 8 (2 on PostgreSQL)",
)
@with_appcontext
@_errors
def worker(no_webhooks: bool, cpus: str | None, receipt_threads: int) -> None:
    """Run a dispatch worker (and webhook delivery) until Ctrl-C."""
    from bharatsend_core.adapters.system import parse_cpu_list
    from bharatsend_core.service.receipts import check_receipt_threads

    check_receipt_threads(receipt_threads)  # refused before anything starts
    pinned = None if cpus is None else parse_cpu_list(cpus)  # refused before anything starts
    sync_routes()
    started = {"worker": "starting", "webhooks": not no_webhooks}
    if pinned is not None:
        started["cpus"] = sorted(pinned)
    click.echo(json.dumps(started), err=True)
    _bs().run_worker(webhooks=not no_webhooks, cpus=pinned, receipt_threads=receipt_threads)
