"""Dispatch throughput: one worker, one bind to the SMSC simulator, against raw smpplib.

For each database (a SQLite file; PostgreSQL when a URL is given or
BHARATSEND_TEST_POSTGRES_URL is set) it measures, in the same run:

- the worker: N messages pre-accepted with ``send_batch`` (untimed), then
  timed from ``Worker.start()`` (which binds) until the simulator has seen all
  N submits *and* the dispatcher has recorded all N as sent. One route,
  window 10, no tps cap, receipts off, so this measures claim + submit +
  record only;
- the baseline: one smpplib ``Client`` bound as a transceiver to the same
  simulator writing the same number of ``submit_sm`` PDUs (same fields, same
  short_message, the two DLT TLVs) and keeping up to 10 outstanding by
  reading the responses with ``read_pdu()`` in the same thread.

With ``--sim-process`` the simulator runs in a child Python process (as in
``bench_latency``), the way a real SMSC, and the Jasmin peer figure's loopback
SMSC, are another process: then neither the worker nor the baseline shares
its interpreter lock with the simulator's threads. The child reports nothing
per submit; this process asks it for its count of submits seen, at the end of
each side's run (a response for every submit was read by then anyway).

Each side also prints the CPU it spent per message: this process, the
simulator's child process (``--sim-process``) and, on PostgreSQL, the server's
processes (``CpuMeter``, from ``/proc``): the ratio target is bounded by what
each side costs on the machine's two cores (benchmarks/README.md).

Run: ``python benchmarks/bench_dispatch.py [--messages N] [--postgres URL] [--profile]
[--sim-process]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import struct
import time
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.smpp

from _common import (
    PE_ID,
    PIN_HELP,
    TEMPLATE,
    CpuMeter,
    ProcessSimulator,
    accept,
    add_route,
    machine,
    new_worker,
    on_each_database,
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

WINDOW = 10


# --------------------------------------------------------------------------- raw baseline


def _tlv(tag: int, value: str) -> bytes:
    data = value.encode("ascii")
    return struct.pack(">HH", tag, len(data)) + data


def raw_smpplib(port: int, count: int) -> float:
    """Seconds for ``count`` windowed submit_sm over one smpplib transceiver bind."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id="bsend", password="secret")
    extra = _tlv(0x1400, PE_ID) + _tlv(0x1401, TEMPLATE)
    outstanding = 0
    answered = 0

    def read_one() -> None:
        nonlocal outstanding, answered
        pdu = client.read_pdu()
        if pdu.command == "submit_sm_resp":
            outstanding -= 1
            answered += 1

    t0 = time.perf_counter()
    for n in range(count):
        while outstanding >= WINDOW:
            read_one()
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=client,
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
            source_addr="ACMEOT",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr=phone(n).removeprefix("+"),
            esm_class=0,
            data_coding=0,
            registered_delivery=0,
            short_message=text(n).encode("ascii"),
        )
        original = pdu.generate_params
        pdu.generate_params = lambda original=original: original() + extra
        client.send_pdu(pdu)
        outstanding += 1
    while outstanding:
        read_one()
    elapsed = time.perf_counter() - t0
    assert answered == count
    client.unbind()
    client.disconnect()
    return elapsed


# --------------------------------------------------------------------------- the worker


def time_calls(obj: Any, names: tuple[str, ...]) -> dict[str, float]:
    """Wrap bound methods on one instance to add up their wall time (cheap)."""
    totals = dict.fromkeys(names, 0.0)
    for name in names:
        original = getattr(obj, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                totals[_name] += time.perf_counter() - t0

        setattr(obj, name, timed)
    return totals


def profile_calls(obj: Any, name: str, profiler: cProfile.Profile) -> None:
    """Profile every call of one bound method (cProfile sees only the thread it runs in)."""
    original = getattr(obj, name)

    def profiled(*args: Any, **kw: Any) -> Any:
        profiler.enable()
        try:
            return original(*args, **kw)
        finally:
            profiler.disable()

    setattr(obj, name, profiled)


def worker_run(
    bs: BharatSend, sim: SmscSimulator | ProcessSimulator, count: int, already: int, profile: bool
) -> dict[str, Any]:
    worker = new_worker(bs)
    busy = time_calls(worker.dispatcher, ("step", "record_completed", "claim_and_submit"))
    # One profiler per thread: the loop's steps, the recorder's batches.
    profilers = {"step": cProfile.Profile(), "record_completed": cProfile.Profile()}
    if profile:
        for method, profiler in profilers.items():
            profile_calls(worker.dispatcher, method, profiler)
    t0 = time.perf_counter()
    worker.start()
    t_bound = time.perf_counter() - t0
    deadline = time.monotonic() + max(120.0, count / 100)
    t_submits = None
    # Polled from the dispatcher's own counter, every 5 ms: health() asks every
    # session for its state, which at 500 polls a second took ~2% of the
    # interpreter lock from the worker being measured.
    stats = worker.dispatcher.stats
    while True:
        # The out-of-process simulator is asked once everything is recorded:
        # a recorded "sent" means its submit_sm_resp came back.
        sent = stats.sent
        in_process = isinstance(sim, SmscSimulator)
        seen = seen_by(sim) - already if sent >= count or in_process else 0
        if t_submits is None and seen >= count and in_process:
            t_submits = time.perf_counter() - t0
        if seen >= count and sent >= count:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} submits, {sent} recorded")
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    stats = worker.health().stats
    worker.stop(5.0)
    return {
        "elapsed": elapsed,
        "bound": t_bound,
        "submits_at": t_submits,
        "stats": stats,
        "busy": busy,
        "profilers": profilers if profile else None,
    }


def seen_by(sim: SmscSimulator | ProcessSimulator) -> int:
    """Submits the simulator has seen so far."""
    return sim.count() if isinstance(sim, ProcessSimulator) else len(sim.submits)


def wait_seen(sim: SmscSimulator | ProcessSimulator, count: int) -> None:
    if isinstance(sim, ProcessSimulator):
        sim.wait_for_count(count, 30)
    else:
        sim.submits.wait_for(count, 30)


def bench(
    name: str,
    storage: SqlStorage,
    count: int,
    profile: bool,
    sim_process: bool,
    pin_cpu: int | None = None,
) -> None:
    bs, tenant_id = setup(storage, credits=10**12)
    sim: SmscSimulator | ProcessSimulator
    if sim_process:
        sim = ProcessSimulator(0.05, {"no_receipts": True}, stream=False)
    else:
        sim = SmscSimulator(receipt_delay=0.05, behaviour=Behaviour(no_receipts=True)).start()
    try:
        add_route(bs, sim.port, window=WINDOW)
        t0 = time.perf_counter()
        accept(bs, tenant_id, count, "d-")
        t_accept = time.perf_counter() - t0

        raw_smpplib(sim.port, min(count, 2000))  # warm the simulator and the socket path
        wait_seen(sim, min(count, 2000))
        before = seen_by(sim)
        children = {"simulator": sim.proc.pid if isinstance(sim, ProcessSimulator) else None}
        postgres = name == "postgresql"
        # Both sides pinned alike (--pin-cpu): the baseline shares this process.
        with pinned(pin_cpu):
            raw_cpu = CpuMeter(children, postgres=postgres).start()
            t_raw = raw_smpplib(sim.port, count)
            wait_seen(sim, before + count)
            raw_cpu.stop()
            already = seen_by(sim)
            assert already - before == count

            worker_cpu = CpuMeter(children, postgres=postgres).start()
            run = worker_run(bs, sim, count, already, profile)
            worker_cpu.stop()
        report = bs.reconcile(tenant_id)
        assert report.ok, report.problems
    finally:
        sim.stop()
        storage.close()

    elapsed = run["elapsed"]
    rate, raw_rate = count / elapsed, count / t_raw
    stats = run["stats"]
    print(f"[{name}] accepted {count:,} with send_batch in {t_accept:.2f} s (untimed)")
    print(f"[{name}] worker:  {rate:9,.0f} msg/s   raw smpplib (window {WINDOW}): "
          f"{raw_rate:9,.0f} msg/s   ratio {rate / raw_rate:5.2f}x   (n={count:,})")  # fmt: skip
    seen_at = run["submits_at"]
    print(f"[{name}]   start+bind {run['bound'] * 1000:.0f} ms, "
          + (f"all submits seen at {seen_at:.2f} s, " if seen_at is not None else "")
          + f"all recorded sent at {elapsed:.2f} s")  # fmt: skip
    busy = run["busy"]
    # Wall time inside the calls (waits for the interpreter lock and the SQLite
    # write lock included): the loop claims and submits, the recorder records.
    print(f"[{name}]   dispatch loop busy {busy['step']:.2f} s of {elapsed:.2f} s "
          f"(claim+submit {busy['claim_and_submit']:.2f} s); "
          f"recorder busy {busy['record_completed']:.2f} s")  # fmt: skip
    print(f"[{name}]   stats: {stats}")
    # CPU per message on each side (both cores, every process of the run).
    print(f"[{name}]   CPU per message, worker: {worker_cpu.per_message(count)}")
    print(f"[{name}]   CPU per message, raw:    {raw_cpu.per_message(count)}")
    profilers = run["profilers"]
    if profilers is not None:
        for method, thread in (("step", "dispatch-loop"), ("record_completed", "dispatch-record")):
            profiler = profilers[method]
            print(f"[{name}] cProfile of Dispatcher.{method} ({thread}), top 15 by tottime:")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
            print(f"[{name}] the same profile, top 25 by cumulative time:")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the dispatch loop and the recorder")  # fmt: skip
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="N", help=PIN_HELP)
    parser.add_argument("--sim-process", action="store_true",
                        help="run the SMSC simulator in a separate Python process")  # fmt: skip
    args = parser.parse_args()
    # The collector as `bharatsend worker` sets it (Worker.run); baselines share the process.
    tune_gc()
    print(f"machine: {machine()}")
    print(f"simulator: {'separate process' if args.sim_process else 'in this process'}")
    print(pin_line(args.pin_cpu))
    on_each_database(
        args.postgres,
        "dispatch.db",
        lambda name, storage: bench(
            name, storage, args.messages, args.profile, args.sim_process, args.pin_cpu
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
