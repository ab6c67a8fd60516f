"""Latency from accept to the SMSC: ``send()`` -> ``submit_sm`` received by the simulator.

A worker is started idle with one route to the SMSC simulator (window 10, no
tps cap, receipts on with ``receipt_delay`` 0.05 s unless ``--no-receipts``),
then OTPs are sent one at a time with ``BharatSend.send``:

- at 10 msg/s (``--slow`` messages, paced from the main thread), then
- at 1,000 msg/s (``--fast`` messages, paced with ``time.perf_counter`` from
  ``--senders`` threads on an open-loop schedule, so a slow ``send`` shows up
  as a lower achieved rate, reported, and not as hidden pauses).

Latency is ``ReceivedSubmit.received_at`` (``datetime.now(UTC)`` in the
simulator's session thread) minus ``datetime.now(UTC)`` taken just *before*
``send()`` is called; so it includes the accept transaction and its commit.
The figure from ``send()`` returning (commit done) to the submit is printed
too. Each message has its own phone number, which is how submits are
matched to sends. Baseline: the same clocks on a raw smpplib ``submit_sm``
round trip (write, then wait for the response) to the same simulator.

By default the simulator runs in this process, so its threads compete for the
GIL with the worker and the senders. With ``--sim-process`` it runs in a child
``python -c`` process (same ``receipt_delay`` and behaviour) that prints
``port <n>`` and then one line per received submit, ``<destination_addr>
<received_at isoformat>``; a reader thread here turns those lines into the
same records, so the measurement is unchanged. A real SMSC, and the Jasmin
peer figure's loopback SMSC, are another process too.

With ``--worker-process`` the worker runs in a child process as ``bharatsend
worker`` would (it hears of new messages by ``NOTIFY`` on PostgreSQL and by
polling on SQLite). With ``--sender-processes P`` the 1,000 msg/s phase is
sent from P child processes (each with ``--senders`` threads, each message on
the same open-loop schedule, by the wall clock), as an application served by
P processes sends: the senders then share no interpreter lock with each
other or with the worker.

Run: ``python benchmarks/bench_latency.py [--slow N] [--fast N] [--senders K] [--sim-process]
[--worker-process] [--sender-processes P] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import smpplib.client
import smpplib.consts

from _common import (
    PIN_HELP,
    TEMPLATE,
    ProcessSimulator,
    ProcessWorker,
    add_route,
    each_database,
    machine,
    new_worker,
    phone,
    pin_line,
    pinned,
    setup,
    text,
)
from bharatsend_core import BharatSend
from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.service.worker import tune_gc


def pct(values: list[float], q: float, spec: str = "7.2f") -> str:
    """The ``q`` quantile of ``values`` formatted with ``spec``; "n/a" when there are none."""
    if not values:
        return f"{'n/a':>{spec.split('.')[0] or 0}}"
    ordered = sorted(values)
    return format(ordered[min(len(ordered) - 1, int(q * len(ordered)))], spec)


def stat(values: list[float], fn: Callable[[list[float]], float], spec: str = "7.2f") -> str:
    """``fn(values)`` formatted with ``spec``; "n/a" when there are none."""
    if not values:
        return f"{'n/a':>{spec.split('.')[0] or 0}}"
    return format(fn(values), spec)


class Sender:
    """Sends message numbers ``first .. first+count`` at ``rate`` from ``threads`` threads."""

    def __init__(self, bs: BharatSend, tenant_id: str) -> None:
        self.bs = bs
        self.tenant_id = tenant_id
        self.before: dict[str, datetime] = {}
        self.after: dict[str, datetime] = {}
        self.send_seconds: list[float] = []

    def run(self, first: int, count: int, rate: float, threads: int) -> float:
        """Send them all; the achieved rate."""
        start = time.perf_counter() + 0.05
        interval = 1.0 / rate

        def loop(k: int) -> None:
            send, tenant = self.bs.send, self.tenant_id
            for i in range(k, count, threads):
                wait = start + i * interval - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                n = first + i
                to = phone(n)
                t0 = time.perf_counter()
                self.before[to[1:]] = datetime.now(UTC)
                send(tenant, phone_number=to, content=text(n), dlt_template_id=TEMPLATE,
                     header="ACMEOT", client_message_id=f"l-{n}")  # fmt: skip
                self.after[to[1:]] = datetime.now(UTC)
                self.send_seconds.append(time.perf_counter() - t0)

        workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return count / max(time.perf_counter() - start, 1e-9)


# A child of ``--sender-processes``: argv[1] is JSON {"url", "schema", "tenant_id",
# "first", "count", "rate", "threads", "k", "of", "start_at"}, argv[2] this directory.
# It sends messages k, k+of, ... of ``count`` at start_at + i / rate (wall clock),
# prints "ready" once set up and, at the end, one JSON line of its records.
SENDER_SCRIPT = """
import json, sys, threading, time
from datetime import UTC, datetime
sys.path.insert(0, sys.argv[2])
from _common import TEMPLATE, bench_settings, phone, text
from bharatsend_core import BharatSend
from bharatsend_core.adapters.sqlalchemy import SqlStorage

job = json.loads(sys.argv[1])
storage = SqlStorage.from_url(job["url"], schema=job["schema"])
bs = BharatSend(storage=storage, settings=bench_settings())
before, after, seconds = {}, {}, []
mine = list(range(job["k"], job["count"], job["of"]))
threads = job["threads"]
print("ready", flush=True)


def loop(t):
    for i in mine[t::threads]:
        wait = job["start_at"] + i / job["rate"] - time.time()
        if wait > 0:
            time.sleep(wait)
        n = job["first"] + i
        to = phone(n)
        t0 = time.perf_counter()
        before[to[1:]] = datetime.now(UTC).isoformat()
        bs.send(job["tenant_id"], phone_number=to, content=text(n), dlt_template_id=TEMPLATE,
                header="ACMEOT", client_message_id=f"l-{n}")
        after[to[1:]] = datetime.now(UTC).isoformat()
        seconds.append(time.perf_counter() - t0)


workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"before": before, "after": after, "seconds": seconds, "end": time.time()}))
storage.close()
"""


class ProcessSenders(Sender):
    """The 1,000 msg/s phase from ``processes`` child processes (``--sender-processes``)."""

    def __init__(self, url: str, schema: str | None, tenant_id: str, processes: int) -> None:
        self.url, self.schema, self.tenant_id, self.processes = url, schema, tenant_id, processes
        self.before = {}
        self.after = {}
        self.send_seconds = []

    def run(self, first: int, count: int, rate: float, threads: int) -> float:
        here = str(Path(__file__).resolve().parent)
        start_at = time.time() + 2.0  # after every child has connected
        procs = []
        try:
            for k in range(self.processes):
                job = {
                    "url": self.url, "schema": self.schema, "tenant_id": self.tenant_id,
                    "first": first, "count": count, "rate": rate, "threads": threads,
                    "k": k, "of": self.processes, "start_at": start_at,
                }  # fmt: skip
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", SENDER_SCRIPT, json.dumps(job), here],
                    stdout=subprocess.PIPE, text=True,
                ))  # fmt: skip
            for proc in procs:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("a sender process did not start")
            end = start_at
            for proc in procs:
                assert proc.stdout is not None
                out = json.loads(proc.stdout.readline())
                proc.wait(timeout=60)
                for key, at in out["before"].items():
                    self.before[key] = datetime.fromisoformat(at)
                for key, at in out["after"].items():
                    self.after[key] = datetime.fromisoformat(at)
                self.send_seconds.extend(out["seconds"])
                end = max(end, out["end"])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return count / max(end - start_at, 1e-9)


def raw_round_trips(port: int, count: int) -> list[float]:
    """ms from before writing a submit_sm to the simulator's received_at, one at a time."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10)
    client.connect()
    client.bind_transmitter(system_id="bsend", password="secret")
    stamps: dict[str, datetime] = {}
    for n in range(count):
        to = f"9197{n:08d}"
        stamps[to] = datetime.now(UTC)
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr="ACMEOT",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr=to,
            short_message=text(n).encode("ascii"),
            registered_delivery=0,
        )
        client.read_pdu()
        time.sleep(0.002)
    client.unbind()
    client.disconnect()
    return stamps  # type: ignore[return-value]


def bench(name: str, url: str, schema: str | None, args: argparse.Namespace, senders: int) -> None:
    storage = SqlStorage.from_url(url, schema=schema)
    bs, tenant_id = setup(storage, credits=10**12)
    behaviour = {"no_receipts": args.no_receipts}
    sim: SmscSimulator | ProcessSimulator
    if args.sim_process:
        sim = ProcessSimulator(0.05, behaviour)
    else:
        sim = SmscSimulator(receipt_delay=0.05, behaviour=Behaviour(**behaviour)).start()
    child: InChild | None = None
    try:
        add_route(bs, sim.port)
        # A child process starts before this one is pinned, so it keeps every core.
        child = InChild(url, schema) if args.worker_process else None

        def start_worker() -> Running:
            return child if child is not None else InProcess(bs)

        def fast_sender() -> Sender:
            if args.sender_processes:
                return ProcessSenders(url, schema, tenant_id, args.sender_processes)
            return Sender(bs, tenant_id)

        with pinned(args.pin_cpu):
            measure(name, bs, tenant_id, sim, args, senders, start_worker, fast_sender)
    finally:
        if child is not None:
            child.stop()
        sim.stop()
        storage.close()


class Running(Protocol):
    """A started dispatch worker: here (``InProcess``) or in a child process (``InChild``)."""

    def stats(self) -> str: ...

    def stop(self) -> None: ...


class InProcess:
    def __init__(self, bs: BharatSend) -> None:
        self.worker = new_worker(bs, poll_interval=0.5).start()

    def stats(self) -> str:
        return str(self.worker.health().stats)

    def stop(self) -> None:
        self.worker.stop(5.0)


class InChild:
    """``bharatsend worker`` in its own process; it hears of new messages by NOTIFY
    on PostgreSQL and by polling on SQLite."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.proc = ProcessWorker(url, schema)
        self.final: dict[str, int] | None = None

    def stats(self) -> str:
        if self.final is None:
            self.final = self.proc.stop()
        return str(self.final)

    def stop(self) -> None:
        if self.final is None:
            self.final = self.proc.stop()


def measure(
    name: str,
    bs: BharatSend,
    tenant_id: str,
    sim: SmscSimulator | ProcessSimulator,
    args: argparse.Namespace,
    senders: int,
    start_worker: Callable[[], Running],
    fast_sender: Callable[[], Sender],
) -> None:
    """The raw round trips, then both paced runs, through a worker started here."""
    worker = None
    try:
        stamps = raw_round_trips(sim.port, 200)
        sim.submits.wait_for(200, 10)
        seen = {s.destination_addr: s.received_at for s in sim.submits}
        raw = [(seen[k] - t).total_seconds() * 1000 for k, t in stamps.items()]
        print(f"[{name}] raw smpplib submit_sm (write -> received_at): "
              f"p50 {pct(raw, 0.5, '.3f')} ms  p99 {pct(raw, 0.99, '.3f')} ms"
              "  (n=200)")  # fmt: skip
        worker = start_worker()
        total = len(sim.submits)
        # warm-up: a few messages so the first measured one does not pay for caches
        warm = Sender(bs, tenant_id)
        warm.run(90_000_000, 20, 50, 1)
        total += 20
        sim.submits.wait_for(total, 10)
        first = 0
        for label, count, rate, threads in (
            ("10 msg/s", args.slow, 10.0, 1),
            ("1,000 msg/s", args.fast, 1000.0, senders),
        ):
            sender = fast_sender() if rate > 10.0 else Sender(bs, tenant_id)
            achieved = sender.run(first, count, rate, threads)
            total += count
            sim.submits.wait_for(total, 60)
            first += count
            seen = {s.destination_addr: s.received_at for s in sim.submits}
            lat = [(seen[k] - t).total_seconds() * 1000 for k, t in sender.before.items()]
            post = [(seen[k] - t).total_seconds() * 1000 for k, t in sender.after.items()]
            sends = [s * 1000 for s in sender.send_seconds]
            where = f"{threads} sender thread{'s' if threads > 1 else ''}"
            if isinstance(sender, ProcessSenders):
                where = f"{sender.processes} processes x {where}"
            print(f"[{name}] {label:>11} (achieved {achieved:7,.1f}/s, n={count:,}, {where}):")
            print(f"[{name}]   before send() -> submit at SMSC: p50 {pct(lat, 0.5)} ms  "
                  f"p99 {pct(lat, 0.99)} ms  max {stat(lat, max)} ms  "
                  f"mean {stat(lat, statistics.fmean, '6.2f')} ms")  # fmt: skip
            print(f"[{name}]   send() returned -> submit:      p50 {pct(post, 0.5)} ms  "
                  f"p99 {pct(post, 0.99)} ms")  # fmt: skip
            print(f"[{name}]   send() itself:                  p50 {pct(sends, 0.5)} ms  "
                  f"p99 {pct(sends, 0.99)} ms")  # fmt: skip
        print(f"[{name}]   worker stats: {worker.stats()}")
        worker.stop()
        worker = None
        report = bs.reconcile(tenant_id)
        assert report.ok, report.problems
    finally:
        if worker is not None:
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slow", type=int, default=200, help="messages at 10 msg/s")
    parser.add_argument("--fast", type=int, default=3000, help="messages at 1,000 msg/s")
    parser.add_argument("--senders", type=int, default=1, help="sender threads at 1,000/s")
    parser.add_argument("--pg-senders", type=int, default=16,
                        help="the same on PostgreSQL (apps serve with many threads)")  # fmt: skip
    parser.add_argument("--no-receipts", action="store_true")
    parser.add_argument("--sim-process", action="store_true",
                        help="run the SMSC simulator in a separate Python process")  # fmt: skip
    parser.add_argument("--worker-process", action="store_true",
                        help="run the worker in a separate Python process, as `bharatsend "
                        "worker` runs beside the application")  # fmt: skip
    parser.add_argument("--sender-processes", type=int, default=0, metavar="P",
                        help="send the 1,000 msg/s phase from P child processes, each with "
                        "the sender threads, as an application served by P processes")  # fmt: skip
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="N", help=PIN_HELP)
    args = parser.parse_args()
    if args.sender_processes < 0:
        parser.error("--sender-processes must be 0 or more")
    if args.sender_processes and args.pin_cpu is not None:
        parser.error("--pin-cpu pins this process; with --sender-processes the children send")
    # The collector as `bharatsend worker` sets it (Worker.run); baselines share the process.
    tune_gc()
    print(f"machine: {machine()}")
    print(f"receipts: {'off' if args.no_receipts else 'on (receipt_delay 0.05 s)'}")
    print(f"simulator: {'separate process' if args.sim_process else 'in this process'}")
    print(f"worker: {'separate process' if args.worker_process else 'in this process'}")
    if args.sender_processes:
        print(f"1,000 msg/s senders: {args.sender_processes} processes")
    print(pin_line(args.pin_cpu))
    each_database(
        args.postgres,
        "latency.db",
        lambda name, url, schema: bench(
            name, url, schema, args, args.senders if name == "sqlite" else args.pg_senders
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
