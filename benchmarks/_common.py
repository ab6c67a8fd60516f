"""Shared setup for the benchmarks: the bench tenant, texts, phone numbers, machine line,
PostgreSQL schemas.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.smpp.simulator import Recorded
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


# The child process of ``--sim-process``: argv[1] is JSON {"receipt_delay", "behaviour",
# "stream"}; with "stream" false it prints no line per submit.
SIM_SCRIPT = """
import json, signal, sys, threading
from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator

settings = json.loads(sys.argv[1])
sim = SmscSimulator(
    receipt_delay=settings["receipt_delay"], behaviour=Behaviour(**settings["behaviour"])
).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print(f"port {sim.port}", flush=True)


def stream():
    sent = 0
    while True:
        try:
            sim.submits.wait_for(sent + 1, 0.1)
        except TimeoutError:
            if stop.is_set():
                return
            continue
        lines = []
        for i in range(sent, len(sim.submits)):
            s = sim.submits[i]
            lines.append(f"{s.destination_addr} {s.received_at.isoformat()}\\n")
        sent += len(lines)
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def stdin_closed():
    sys.stdin.read()
    stop.set()


streamer = threading.Thread(target=stream if settings.get("stream", True) else stop.wait)
streamer.start()
threading.Thread(target=stdin_closed, daemon=True).start()
while not stop.wait(0.5):
    pass
sim.stop()
streamer.join()
"""


class Seen(NamedTuple):
    """A submit seen by the out-of-process simulator (as ``ReceivedSubmit``, two fields)."""

    destination_addr: str
    received_at: datetime


class ProcessSimulator:
    """``SmscSimulator`` in a child process, with ``.port``, ``.submits`` and ``.stop()``.

    ``stream=False`` leaves ``.submits`` empty: the child then spends nothing
    on reporting submits, and neither does this process on reading them.
    """

    def __init__(
        self, receipt_delay: float, behaviour: dict[str, Any], *, stream: bool = True
    ) -> None:
        settings = json.dumps(
            {"receipt_delay": receipt_delay, "behaviour": behaviour, "stream": stream}
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIM_SCRIPT, settings],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "port":
            self.proc.kill()
            raise RuntimeError(f"simulator process did not start: {first!r}")
        self.port = int(first[1])
        self.submits: Recorded[Seen] = Recorded()
        self._reader = threading.Thread(target=self._read, name="sim-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            to, at = line.split()
            self.submits.append(Seen(to, datetime.fromisoformat(at)))

    def stop(self) -> None:
        """Close stdin and SIGTERM the child; wait for it and for the reader."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
