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
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from bharatsend_core import BharatSend, Settings, pin_process
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


def bench_settings() -> Settings:
    return Settings.resolve({}, key_pepper="bench-pepper-0123456789abcdef")


def setup(storage: SqlStorage, credits: int) -> tuple[BharatSend, str]:
    bs = BharatSend(storage=storage, settings=bench_settings())
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


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """This process's threads on ``cpu`` only (``--pin-cpu``), then as they were.

    Entered after the simulator's (and worker's) child processes started, so
    they keep every core; restored on the way out, so the next database's
    children are not started pinned.
    """
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    pin_process([cpu])
    try:
        yield
    finally:
        pin_process(before)


def pin_line(cpu: int | None) -> str:
    """The header line saying where this process runs (``--pin-cpu``)."""
    return "this process: " + ("on every CPU" if cpu is None else f"pinned to CPU {cpu}")


PIN_HELP = (
    "run this process on CPU N only once its child processes started (they keep every core),"
    " as `bharatsend worker --cpus N` does"
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


def each_database(
    postgres_url: str | None, filename: str, run: Callable[[str, str, str | None], None]
) -> None:
    """``run(name, url, schema)`` on a SQLite file in a temp dir, then on PostgreSQL in a
    schema dropped after."""
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / filename}", None)
    if not postgres_url:
        print(POSTGRES_SKIPPED)
        return
    schema = new_schema()
    try:
        run("postgresql", postgres_url, schema)
    finally:
        drop_schemas(postgres_url, [schema])


def on_each_database(
    postgres_url: str | None, filename: str, run: Callable[[str, SqlStorage], None]
) -> None:
    """``run`` on a SQLite file's storage, then on a PostgreSQL schema's (see each_database)."""
    each_database(
        postgres_url,
        filename,
        lambda name, url, schema: run(name, SqlStorage.from_url(url, schema=schema)),
    )


# The child process of ``--worker-process``: argv[1] is JSON {"url", "schema"}. It
# runs ``new_worker`` on that database the way ``bharatsend worker`` does
# (``Worker.run``: the collector tuned, SIGTERM drains), prints "ready" once
# started and, after SIGTERM, one JSON line of the dispatcher's counters.
WORKER_SCRIPT = """
import json, sys
import attrs
sys.path.insert(0, sys.argv[2])
from _common import bench_settings, new_worker
from bharatsend_core import BharatSend
from bharatsend_core.adapters.sqlalchemy import SqlStorage

settings = json.loads(sys.argv[1])
storage = SqlStorage.from_url(settings["url"], schema=settings["schema"])
worker = new_worker(BharatSend(storage=storage, settings=bench_settings()))
worker.start()
print("ready", flush=True)
worker.run()
print(json.dumps(attrs.asdict(worker.health().stats)), flush=True)
storage.close()
"""


class ProcessWorker:
    """A dispatch worker in a child process on database ``url`` (``schema`` on PostgreSQL).

    The shape of a deployment: the application accepts in its processes and
    ``bharatsend worker`` runs in its own.
    """

    def __init__(self, url: str, schema: str | None) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER_SCRIPT,
                json.dumps({"url": url, "schema": schema}),
                str(Path(__file__).resolve().parent),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError("worker process did not start")

    def stop(self) -> dict[str, int]:
        """SIGTERM (the worker drains and exits); its dispatcher's counters."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=60)
        stats: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return stats

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# The child process of ``--sim-process``: argv[1] is JSON {"receipt_delay", "behaviour",
# "stream"}. With "stream" true it prints one line per submit; with it false it
# prints nothing on its own and answers each "count" line on stdin with the
# number of submits seen so far. Closing stdin stops it.
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


def commands():
    for line in sys.stdin:
        if line.strip() == "count" and not settings.get("stream", True):
            print(f"count {len(sim.submits)}", flush=True)
    stop.set()


streamer = threading.Thread(target=stream if settings.get("stream", True) else stop.wait)
streamer.start()
threading.Thread(target=commands, daemon=True).start()
while not stop.wait(0.5):
    pass
sim.stop()
streamer.join()
"""


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _postgres_pids() -> list[int]:
    """Local PostgreSQL server processes (Linux /proc; empty elsewhere)."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="ascii") as f:
                    if f.read().strip() in ("postgres", "postmaster"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU seconds used between ``start()`` and ``stop()`` by this process, named child
    processes (the simulator, a worker) and the local PostgreSQL server processes.

    The targets are rates on a machine's few cores: what each process spends per
    message says how far a rate can go, whatever the wall clock does, and the sum
    over all of them caps any arrangement at ``cores / sum`` messages a second.
    Linux only (``/proc``); elsewhere the child and server figures read 0. Read
    before the children exit: a process gone from ``/proc`` counts 0.
    """

    def __init__(self, children: Mapping[str, int | None], *, postgres: bool) -> None:
        self._children = {name: pid for name, pid in children.items() if pid is not None}
        self._postgres = postgres
        self._start: dict[str, float] = {}
        self._server: dict[int, float] = {}
        #: CPU seconds by process name ("this process", each child, "PostgreSQL server").
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        times = os.times()
        used = {"this process": times.user + times.system}
        used.update({name: _proc_cpu(pid) for name, pid in self._children.items()})
        return used

    def _server_times(self) -> dict[int, float]:
        return {p: _proc_cpu(p) for p in _postgres_pids()} if self._postgres else {}

    def start(self) -> CpuMeter:
        self._start, self._server = self._read(), self._server_times()
        return self

    def stop(self) -> CpuMeter:
        self.used = {name: t - self._start[name] for name, t in self._read().items()}
        if self._postgres:
            # Backends that exited meanwhile are lost; ones started meanwhile count from 0.
            server = self._server_times().items()
            self.used["PostgreSQL server"] = sum(t - self._server.get(p, 0.0) for p, t in server)
        return self

    def per_message(self, count: int) -> str:
        """Each process's microseconds per message, their sum, and the rate the cores allow."""
        us = 1e6 / count
        parts = ", ".join(f"{name} {t * us:.0f} µs" for name, t in self.used.items())
        total = sum(self.used.values()) * us
        cores = os.cpu_count() or 1
        ceiling = cores * 1e6 / total
        return f"{parts}; {total:.0f} µs in all (at most {ceiling:,.0f}/s on {cores} cores)"


class Seen(NamedTuple):
    """A submit seen by the out-of-process simulator (as ``ReceivedSubmit``, two fields)."""

    destination_addr: str
    received_at: datetime


class ProcessSimulator:
    """``SmscSimulator`` in a child process, with ``.port``, ``.submits`` and ``.stop()``.

    ``stream=False`` leaves ``.submits`` empty: the child then spends nothing
    on reporting submits, and neither does this process on reading them;
    :meth:`count` asks it how many it has seen.
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
        self.stream = stream
        self.submits: Recorded[Seen] = Recorded()
        self._reader: threading.Thread | None = None
        if stream:
            self._reader = threading.Thread(target=self._read, name="sim-reader", daemon=True)
            self._reader.start()

    def count(self) -> int:
        """Submits the child has seen so far (with ``stream=False``)."""
        assert not self.stream
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        if len(answer) != 2 or answer[0] != "count":
            raise RuntimeError(f"simulator process answered {answer!r}")
        return int(answer[1])

    def wait_for_count(self, count: int, timeout: float) -> None:
        """Poll :meth:`count` every 10 ms until it reaches ``count``."""
        deadline = time.monotonic() + timeout
        while (seen := self.count()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulator saw {seen} submits, not {count}")
            time.sleep(0.01)

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
        if self._reader is not None:
            self._reader.join(5)
