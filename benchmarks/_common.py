"""Shared setup for the benchmarks: the bench tenant, texts, phone numbers, machine line,
PostgreSQL schemas.
"""

from __future__ import annotations

import os
import platform
import tempfile
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.service.dispatch import DispatchOptions
from bharatsend_core.service.send import SendRequest
from bharatsend_core.service.worker import Worker

PE_ID = "1201159123456789012"
TEMPLATE = "1207161234567890123"
BODY = "Your OTP is {#var#}. Valid for 5 minutes. Do not share it. -ACME"
POSTGRES_SKIPPED = "[postgresql] skipped: pass --postgres URL or set BHARATSEND_TEST_POSTGRES_URL"


def text(n: int) -> str:
    return f"Your OTP is {n % 1_000_000:06d}. Valid for 5 minutes. Do not share it. -ACME"


def phone(n: int) -> str:
    return f"+9198{n % 100_000_000:08d}"


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.platform()}, {cpu or platform.processor()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )


def setup(storage: SqlStorage, credits: int) -> tuple[BharatSend, str]:
    settings = Settings.resolve({}, key_pepper="bench-pepper-0123456789abcdef")
    bs = BharatSend(storage=storage, settings=settings)
    bs.migrate()
    tenant = bs.create_tenant("Bench")
    bs.register_entity(tenant.id, PE_ID)
    bs.register_header(tenant.id, "ACMEOT", category="transactional")
    bs.register_template(
        tenant.id, template_id=TEMPLATE, header="ACMEOT", category="transactional", body=BODY
    )
    bs.top_up(tenant.id, credits)
    return bs, tenant.id


def requests(numbers: range, prefix: str) -> list[SendRequest]:
    """One OTP request per number, with client message id ``<prefix><n>``."""
    return [
        SendRequest(phone(n), text(n), TEMPLATE, header="ACMEOT", client_message_id=f"{prefix}{n}")
        for n in numbers
    ]


def accept(bs: BharatSend, tenant_id: str, count: int, prefix: str) -> None:
    """Accept messages ``0 .. count`` with ``send_batch``, 1,000 per call; none may be refused."""
    for start in range(0, count, 1000):
        result = bs.send_batch(tenant_id, requests(range(start, min(count, start + 1000)), prefix))
        assert result.rejected == 0, "a benchmark message was refused"


def add_route(bs: BharatSend, port: int, window: int = 10) -> None:
    """Route ``agg1`` to the SMSC simulator on ``port``: no tps cap, transactional."""
    bs.add_route(
        "agg1", host="127.0.0.1", port=port, system_id="bsend", password="secret",
        tps=None, window=window, categories=["transactional"],
    )  # fmt: skip


def new_worker(bs: BharatSend, poll_interval: float = 0.05) -> Worker:
    """A dispatch worker (not started) without the sandbox carrier, lease 60 s."""
    return bs.worker(
        sandbox_carrier=False,
        options=DispatchOptions(lease=timedelta(seconds=60)),
        poll_interval=poll_interval,
        bind_wait=5.0,
    )


def new_schema() -> str:
    """A fresh PostgreSQL schema name for one benchmark database."""
    return f"bench_{uuid.uuid4().hex[:12]}"


def drop_schemas(url: str, schemas: list[str]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def on_each_database(
    postgres_url: str | None, filename: str, run: Callable[[str, SqlStorage], None]
) -> None:
    """``run`` on a SQLite file in a temp dir, then on PostgreSQL in a schema dropped after."""
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", SqlStorage.from_url(f"sqlite:///{Path(tmp) / filename}"))
    if not postgres_url:
        print(POSTGRES_SKIPPED)
        return
    schema = new_schema()
    try:
        run("postgresql", SqlStorage.from_url(postgres_url, schema=schema))
    finally:
        drop_schemas(postgres_url, [schema])
