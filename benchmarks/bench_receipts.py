"""Receipt ingestion: ``ReceiptInbox.ingest`` against a raw SQLAlchemy Core loop.

For each database (a SQLite file; PostgreSQL when a URL is given or
BHARATSEND_TEST_POSTGRES_URL is set):

- untimed: N messages are accepted (``send_batch``) and dispatched by a
  worker to the SMSC simulator with receipts off, so every one is ``sent``
  with a carrier id;
- timed: one realistic receipt text per part (``id:<carrier id> sub:001
  dlvrd:001 submit date:... done date:... stat:DELIVRD err:000 text:...``)
  is parsed with ``parse_receipt`` and keyed with ``dedup_key`` (as the SMPP
  carrier does) and ingested with ``ReceiptInbox.ingest`` in batches of 500
  (one transaction each): inbox write and dedup, matching, the message's
  state, timeline and the ledger settlement; parsing is inside the timed
  region;
- the baseline, afterwards on the same database and the same parts: a raw
  Core loop doing per receipt the writes the brief lists (insert the receipt
  row, update the part row, update the message status, insert one timeline
  row, insert one ledger transfer), 500 receipts per transaction. Its rows use
  route ``raw`` and fresh ids so they do not collide; reconcile runs before it.

With ``--receipt-threads K`` the receipts go, parsed, to the sink of a
``ReceiptInbox`` with K ingest threads (``bharatsend worker --receipt-threads
K``), which batches what has queued (up to 500); the figure runs until the
last receipt is acknowledged.

With ``--ingesters K`` (K > 1) both timed loops run in K child processes at
once, each on its own share of the receipts (every K-th) and its own
connections, started together once all are ready: the shape of K
``bharatsend worker`` processes each ingesting the receipts of its own binds.
The figure is all receipts over the time from the start signal to the last
child's answer.

Run: ``python benchmarks/bench_receipts.py [--messages N] [--postgres URL]
[--ingesters K] [--receipt-threads K]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from _common import (
    PIN_HELP,
    accept,
    add_route,
    each_database,
    machine,
    new_worker,
    pin_line,
    pinned,
    setup,
    text,
)
from bharatsend_core import BharatSend
from bharatsend_core.adapters.smpp import Behaviour, SmscSimulator
from bharatsend_core.adapters.sqlalchemy import SqlStorage, tables
from bharatsend_core.domain.ledger import REVENUE_ACCOUNT
from bharatsend_core.domain.receipts import dedup_key, parse_receipt
from bharatsend_core.ports.carrier import CarrierReceipt
from bharatsend_core.service.receipts import ReceiptInbox
from bharatsend_core.service.worker import tune_gc

BATCH = 500

# A child of ``--ingesters``: argv[1] is JSON {"url", "schema", "mode", "file"}, argv[2]
# this directory. It loads its share ("ingest": receipt texts; "raw": part triples),
# prints "ready", waits for a line on stdin, runs the timed loop and prints one JSON line.
INGESTER_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[2])
from bench_receipts import ingest_all, raw_core
from _common import bench_settings
from bharatsend_core import BharatSend
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.service.receipts import ReceiptInbox
from bharatsend_core.service.worker import tune_gc

tune_gc()
settings = json.loads(sys.argv[1])
with open(settings["file"], encoding="utf-8") as f:
    share = json.load(f)
storage = SqlStorage.from_url(settings["url"], schema=settings["schema"])
try:
    if settings["mode"] == "ingest":
        inbox = ReceiptInbox(BharatSend(storage=storage, settings=bench_settings())._ctx)
        print("ready", flush=True)
        sys.stdin.readline()
        seconds, applied = ingest_all(inbox, share)
    else:
        parts = [tuple(p) for p in share]
        print("ready", flush=True)
        sys.stdin.readline()
        seconds, applied = raw_core(storage.engine, parts), len(parts)
    print(json.dumps({"seconds": seconds, "applied": applied}), flush=True)
finally:
    storage.close()
"""


def sent_messages(bs: BharatSend, tenant_id: str, count: int) -> list[str]:
    """Accept and dispatch ``count`` messages (receipts off); their carrier ids."""
    sim = SmscSimulator(receipt_delay=0.05, behaviour=Behaviour(no_receipts=True)).start()
    try:
        add_route(bs, sim.port)
        accept(bs, tenant_id, count, "r-")
        worker = new_worker(bs).start()
        deadline = time.monotonic() + 600
        while worker.health().stats.sent < count:
            if time.monotonic() > deadline:
                raise TimeoutError("dispatch did not finish")
            time.sleep(0.01)
        worker.stop(5.0)
        return [s.message_id for s in sim.submits]
    finally:
        sim.stop()


def receipt_text(carrier_id: str, n: int) -> str:
    return (
        f"id:{carrier_id} sub:001 dlvrd:001 submit date:2611231200 done date:2611231201 "
        f"stat:DELIVRD err:000 text:{text(n)[:20]}"
    )


def ingest_all(inbox: ReceiptInbox, texts: list[str]) -> tuple[float, int]:
    applied = 0
    t0 = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        now = datetime.now(UTC)
        items = []
        for raw in texts[i : i + BATCH]:
            receipt = parse_receipt(raw)
            _route, canonical, _outcome = dedup_key("agg1", receipt)
            items.append(CarrierReceipt("agg1", canonical, receipt, now))
        applied += inbox.ingest(items).applied
    return time.perf_counter() - t0, applied


def ingest_threaded(bs: BharatSend, texts: list[str], threads: int) -> tuple[float, int]:
    """Parse each receipt and hand it to an inbox's sink, as the carrier does; until all are
    acknowledged."""
    inbox = ReceiptInbox(bs._ctx, threads=threads, batch=BATCH)
    inbox.start()
    answered = threading.Semaphore(0)
    refused: list[bool] = []

    def done(ok: bool) -> None:
        if not ok:
            refused.append(ok)
        answered.release()

    try:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        for raw in texts:
            receipt = parse_receipt(raw)
            _route, canonical, _outcome = dedup_key("agg1", receipt)
            inbox.sink(CarrierReceipt("agg1", canonical, receipt, now), done)
        for _ in texts:
            answered.acquire()
        elapsed = time.perf_counter() - t0
    finally:
        inbox.stop()
    assert not refused, f"{len(refused)} receipts were refused"
    return elapsed, inbox.ingested


def raw_core(engine: sa.Engine, parts: list[tuple[str, str, str]]) -> float:
    """The baseline: five single-row statements per receipt, 500 receipts per transaction."""
    r, p, m, e, t = (tables.receipts, tables.message_parts, tables.messages,
                     tables.message_events, tables.ledger_transfers)  # fmt: skip
    ins_receipt = r.insert()
    upd_part = (
        p.update()
        .where(p.c.message_id == sa.bindparam("b_mid"))
        .where(p.c.idx == 0)
        .values(status="delivered", final_at=sa.bindparam("b_at"))
    )
    upd_message = (
        m.update()
        .where(m.c.id == sa.bindparam("b_mid"))
        .values(status="delivered", updated_at=sa.bindparam("b_at"))
    )
    ins_event = e.insert()
    ins_transfer = t.insert()
    t0 = time.perf_counter()
    for i in range(0, len(parts), BATCH):
        now = datetime.now(UTC)
        with engine.begin() as conn:
            for carrier_id, message_id, tenant_id in parts[i : i + BATCH]:
                conn.execute(ins_receipt, {
                    "route": "raw", "carrier_message_id": carrier_id, "outcome": "delivered",
                    "stat": "DELIVRD", "error_code": None, "received_at": now, "done_at": now,
                    "state": "applied", "tenant_id": tenant_id, "message_id": message_id,
                    "part_index": 0,
                })  # fmt: skip
                conn.execute(upd_part, {"b_mid": message_id, "b_at": now})
                conn.execute(upd_message, {"b_mid": message_id, "b_at": now})
                conn.execute(ins_event, {
                    "message_id": message_id, "sequence": 1000, "at": now,
                    "kind": "receipt", "status": "delivered",
                    "detail": [["outcome", "delivered"], ["part", 0]],
                })  # fmt: skip
                conn.execute(ins_transfer, {
                    "id": f"raw_{message_id}", "kind": "post",
                    "debit_account": f"tenant:{tenant_id}", "credit_account": REVENUE_ACCOUNT,
                    "amount": 0, "tenant_id": tenant_id, "created_at": now,
                    "pending_id": None, "message_id": message_id, "reference": None,
                })  # fmt: skip
    return time.perf_counter() - t0


def in_children(
    url: str, schema: str | None, mode: str, shares: list[list[object]]
) -> tuple[float, int]:
    """Run one timed loop in ``len(shares)`` child processes at once; (seconds, rows done)."""
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        try:
            for n, share in enumerate(shares):
                file = Path(tmp) / f"share{n}.json"
                file.write_text(json.dumps(share), encoding="utf-8")
                settings = {"url": url, "schema": schema, "mode": mode, "file": str(file)}
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", INGESTER_SCRIPT, json.dumps(settings), here],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                ))  # fmt: skip
            for proc in procs:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("an ingester process did not start")
            t0 = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            done = 0
            for proc in procs:
                assert proc.stdout is not None
                done += int(json.loads(proc.stdout.readline())["applied"])
            elapsed = time.perf_counter() - t0
            for proc in procs:
                proc.wait(timeout=60)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return elapsed, done


def bench(
    name: str,
    url: str,
    schema: str | None,
    count: int,
    pin_cpu: int | None,
    ingesters: int,
    threads: int | None = None,
) -> None:
    storage = SqlStorage.from_url(url, schema=schema)
    try:
        bs, tenant_id = setup(storage, credits=10**12)
        t0 = time.perf_counter()
        carrier_ids = sent_messages(bs, tenant_id, count)
        print(f"[{name}] prepared {count:,} sent messages in {time.perf_counter() - t0:.1f} s "
              "(untimed)")  # fmt: skip
        texts = [receipt_text(cid, n) for n, cid in enumerate(carrier_ids)]
        inbox = ReceiptInbox(bs._ctx)  # the worker's inbox, without its thread
        if threads is not None:
            with pinned(pin_cpu):
                elapsed, applied = ingest_threaded(bs, texts, threads)
        elif ingesters == 1:
            with pinned(pin_cpu):
                elapsed, applied = ingest_all(inbox, texts)
        else:
            shares: list[list[object]] = [list(texts[k::ingesters]) for k in range(ingesters)]
            elapsed, applied = in_children(url, schema, "ingest", shares)
        assert applied == count, (applied, count)
        again = inbox.ingest([
            CarrierReceipt("agg1", c, parse_receipt(receipt_text(c, 0)), datetime.now(UTC))
            for c in carrier_ids[:BATCH]
        ])  # fmt: skip
        assert again.duplicates == min(BATCH, count), again
        report = bs.reconcile(tenant_id)
        assert report.ok, report.problems
        p = tables.message_parts
        with storage.engine.connect() as conn:
            parts = [
                (row.carrier_message_id, row.message_id, tenant_id)
                for row in conn.execute(sa.select(p.c.carrier_message_id, p.c.message_id))
            ]
        if ingesters == 1:
            with pinned(pin_cpu):
                t_raw = raw_core(storage.engine, parts)
        else:
            raw_shares: list[list[object]] = [
                [list(part) for part in parts[k::ingesters]] for k in range(ingesters)
            ]
            t_raw, _ = in_children(url, schema, "raw", raw_shares)
    finally:
        storage.close()
    rate, raw_rate = count / elapsed, len(parts) / t_raw
    who = f"{BATCH} per transaction" + ("" if ingesters == 1 else f", {ingesters} processes")
    if threads is not None:
        who = f"an inbox with {threads} thread{'s' if threads > 1 else ''}, up to {BATCH} a batch"
    print(f"[{name}] ingest:  {rate:9,.0f} receipts/s   raw Core: {raw_rate:9,.0f} receipts/s"
          f"   ratio {rate / raw_rate:5.2f}x   (n={count:,}, {who})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="N", help=PIN_HELP)
    parser.add_argument(
        "--ingesters", type=int, default=1, metavar="K",
        help="ingest (and run the baseline) in K processes at once, as K workers would",
    )  # fmt: skip
    parser.add_argument(
        "--receipt-threads", type=int, default=None, metavar="K",
        help="ingest through a ReceiptInbox's sink with K threads, as a worker does",
    )  # fmt: skip
    args = parser.parse_args()
    if args.receipt_threads is not None and args.ingesters > 1:
        parser.error("give --receipt-threads or --ingesters, not both")
    if args.ingesters < 1:
        parser.error("--ingesters must be at least 1")
    if args.ingesters > 1 and args.pin_cpu is not None:
        parser.error("--pin-cpu pins this process; with --ingesters the children ingest")
    # The collector as `bharatsend worker` sets it (Worker.run); baselines share the process.
    tune_gc()
    print(f"machine: {machine()}")
    print(pin_line(args.pin_cpu))
    each_database(
        args.postgres,
        "r.db",
        lambda name, url, schema: bench(
            name, url, schema, args.messages, args.pin_cpu, args.ingesters, args.receipt_threads
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
