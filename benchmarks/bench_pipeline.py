"""Sustained end-to-end rate with receipts: accept -> submit -> receipt -> delivered -> settled.

For each database (a SQLite file; PostgreSQL when a URL is given or
BHARATSEND_TEST_POSTGRES_URL is set): one worker with one route to the SMSC
simulator (window 10, no tps cap, receipts after ``receipt_delay`` 0.05 s),
and a producer thread calling ``send_batch`` with 100 messages per call on an
open-loop schedule at ``--rate`` msg/s for ``--seconds`` seconds. Reported:
the achieved accept rate, the sustained rate (messages reaching ``delivered``
during the window, per second, counted in the database), the backlog at the
end of the window (accepted, not yet final), and the time to drain it. The
run ends with ``reconcile()``.

By default the simulator runs in this process, so its session and receipt
threads take the interpreter lock from the worker's. With ``--sim-process``
it runs in a child Python process, as a real SMSC (and the Jasmin peer
figure's loopback SMSC) is another process.

By default the worker runs in this process too, beside the producer, so the
accept path hands messages straight to it. With ``--worker-process`` it runs
in a child process as ``bharatsend worker`` would: the producer's process
accepts (an application's web process), the worker claims what was queued,
and the two share no interpreter lock.

Run: ``python benchmarks/bench_pipeline.py [--rate R] [--seconds S] [--postgres URL]
[--sim-process] [--worker-process]``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from contextlib import ExitStack

import sqlalchemy as sa

from _common import (
    PIN_HELP,
    CpuMeter,
    ProcessSimulator,
    ProcessWorker,
    add_route,
    each_database,
    machine,
    new_worker,
    pin_line,
    pinned,
    requests,
    setup,
)
from bharatsend_core.adapters.smpp import SmscSimulator
from bharatsend_core.adapters.sqlalchemy import SqlStorage, tables
from bharatsend_core.service.worker import Worker, tune_gc

CHUNK = 100


def counts(engine: sa.Engine) -> dict[str, int]:
    m = tables.messages
    with engine.connect() as conn:
        rows = conn.execute(sa.select(m.c.status, sa.func.count()).group_by(m.c.status))
        return {str(r[0]): int(r[1]) for r in rows}


def bench(
    name: str,
    url: str,
    schema: str | None,
    args: argparse.Namespace,
) -> None:
    rate, seconds = args.rate, args.seconds
    storage = SqlStorage.from_url(url, schema=schema)
    bs, tenant_id = setup(storage, credits=10**12)
    sim: SmscSimulator | ProcessSimulator
    if args.sim_process:
        sim = ProcessSimulator(0.05, {}, stream=False)
    else:
        sim = SmscSimulator(receipt_delay=0.05, record_limit=1000).start()
    worker: Worker | ProcessWorker | None = None
    unpin = ExitStack()
    try:
        add_route(bs, sim.port)
        worker = ProcessWorker(url, schema) if args.worker_process else new_worker(bs).start()
        # Pinned once the children run (--pin-cpu): the producer and an in-process worker.
        unpin.enter_context(pinned(args.pin_cpu))
        total = int(rate * seconds)
        accepted = [0]
        t_start = time.perf_counter() + 0.1

        def produce() -> None:
            for i, start in enumerate(range(0, total, CHUNK)):
                wait = t_start + i * CHUNK / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                batch = requests(range(start, min(total, start + CHUNK)), "p-")
                accepted[0] += bs.send_batch(tenant_id, batch).accepted

        children = {
            "simulator": sim.proc.pid if isinstance(sim, ProcessSimulator) else None,
            "worker": worker.proc.pid if isinstance(worker, ProcessWorker) else None,
        }
        cpu = CpuMeter(children, postgres=name == "postgresql").start()
        producer = threading.Thread(target=produce, name="producer")
        producer.start()
        time.sleep(max(0.0, t_start - time.perf_counter()))
        time.sleep(seconds)
        accepted_at_end = accepted[0]
        at_end = counts(storage.engine)
        t_window = time.perf_counter() - t_start
        producer.join()
        t_produced = time.perf_counter() - t_start
        delivered = at_end.get("delivered", 0)
        backlog = sum(n for s, n in at_end.items() if s not in ("delivered", "failed", "expired"))
        unaccepted = int(rate * t_window) - accepted_at_end
        deadline = time.monotonic() + 300
        while True:
            now = counts(storage.engine)
            if now.get("delivered", 0) >= total or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        t_drained = time.perf_counter() - t_start
        cpu.stop()  # before the worker's process exits
        if isinstance(worker, ProcessWorker):
            stats: object = worker.stop()
        else:
            stats = worker.health().stats
            worker.stop(5.0)
        worker = None
        report = bs.reconcile(tenant_id)
    finally:
        if isinstance(worker, ProcessWorker):
            worker.kill()
        elif worker is not None:
            worker.stop(5.0)
        unpin.close()
        sim.stop()
        storage.close()
    print(f"[{name}] offered {rate:,.0f} msg/s for {seconds:.0f} s ({total:,} messages, "
          f"send_batch of {CHUNK}); producer finished after {t_produced:.1f} s "
          f"({total / t_produced:,.0f} msg/s accepted)")  # fmt: skip
    print(f"[{name}] sustained: {delivered / t_window:9,.0f} delivered msg/s over the window   "
          f"backlog at end {backlog:,} accepted not final + {max(0, unaccepted):,} offered "
          f"not yet accepted (status counts {at_end})")  # fmt: skip
    print(f"[{name}] all {now.get('delivered', 0):,} delivered after {t_drained:.1f} s "
          f"({now.get('delivered', 0) / t_drained:,.0f} msg/s overall);  reconcile ok: "
          f"{report.ok}")  # fmt: skip
    print(f"[{name}] worker stats: {stats}")
    # Accept, submit, receipt and settlement of one message, from the run's start to drained.
    print(f"[{name}] CPU per message: {cpu.per_message(now.get('delivered', 0) or 1)}")
    assert report.ok, report.problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="N", help=PIN_HELP)
    parser.add_argument("--sim-process", action="store_true",
                        help="run the SMSC simulator in a separate Python process")  # fmt: skip
    parser.add_argument("--worker-process", action="store_true",
                        help="run the worker in a separate Python process")  # fmt: skip
    args = parser.parse_args()
    # The collector as `bharatsend worker` sets it (Worker.run); baselines share the process.
    tune_gc()
    print(f"machine: {machine()}")
    print(f"simulator: {'separate process' if args.sim_process else 'in this process'}")
    print(f"worker: {'separate process' if args.worker_process else 'in this process'}")
    print(pin_line(args.pin_cpu))
    each_database(
        args.postgres, "pipeline.db", lambda name, url, schema: bench(name, url, schema, args)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
