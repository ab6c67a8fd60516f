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

Run: ``python benchmarks/bench_receipts.py [--messages N] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from _common import (
    PIN_HELP,
    accept,
    add_route,
    machine,
    new_worker,
    on_each_database,
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


def bench(name: str, storage: SqlStorage, count: int, pin_cpu: int | None = None) -> None:
    try:
        bs, tenant_id = setup(storage, credits=10**12)
        t0 = time.perf_counter()
        carrier_ids = sent_messages(bs, tenant_id, count)
        print(f"[{name}] prepared {count:,} sent messages in {time.perf_counter() - t0:.1f} s "
              "(untimed)")  # fmt: skip
        texts = [receipt_text(cid, n) for n, cid in enumerate(carrier_ids)]
        inbox = ReceiptInbox(bs._ctx)  # the worker's inbox, without its thread
        with pinned(pin_cpu):
            elapsed, applied = ingest_all(inbox, texts)
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
        with pinned(pin_cpu):
            t_raw = raw_core(storage.engine, parts)
    finally:
        storage.close()
    rate, raw_rate = count / elapsed, len(parts) / t_raw
    print(f"[{name}] ingest:  {rate:9,.0f} receipts/s   raw Core: {raw_rate:9,.0f} receipts/s"
          f"   ratio {rate / raw_rate:5.2f}x   (n={count:,}, {BATCH} per transaction)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="N", help=PIN_HELP)
    args = parser.parse_args()
    # The collector as `bharatsend worker` sets it (Worker.run); baselines share the process.
    tune_gc()
    print(f"machine: {machine()}")
    print(pin_line(args.pin_cpu))
    on_each_database(
        args.postgres,
        "r.db",
        lambda name, storage: bench(name, storage, args.messages, args.pin_cpu),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
