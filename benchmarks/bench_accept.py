"""The accept path: BharatSend.send / send_batch against raw SQLAlchemy Core writing the same rows.

For each database (a SQLite file; PostgreSQL when a URL is given or
BHARATSEND_TEST_POSTGRES_URL is set) it measures, in the same run:

- ``send()``: one message per transaction, end to end (phone parsing, DLT
  validation, segmenting, pricing, idempotency lookup, reservation, message +
  part + timeline + dispatch rows, commit);
- the baseline: a raw Core loop that inserts the very same rows (message, part,
  timeline entry, transfer, dispatch row) and applies the same two account
  updates, one transaction per message, with every row prepared before timing;
- ``send_batch()`` with 1,000 messages per call, and the raw Core baseline doing
  the same inserts as executemany, 1,000 per transaction.

Run: ``python benchmarks/bench_accept.py [--messages N] [--batches N] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from _common import (
    PE_ID,
    POSTGRES_SKIPPED,
    TEMPLATE,
    drop_schemas,
    new_schema,
    phone,
    requests,
    setup,
    text,
)
from bharatsend_core.adapters.sqlalchemy import SqlStorage, tables
from bharatsend_core.adapters.sqlalchemy.storage import _event_row, _message_state, _part_row
from bharatsend_core.adapters.system import SystemClock, SystemIds
from bharatsend_core.domain.ledger import REVENUE_ACCOUNT, Phase, message_transfer_id
from bharatsend_core.domain.message import Message
from bharatsend_core.service.send import SendRequest


def rows_for(message: Message) -> dict[str, Any]:
    """Every row the accept path writes for one message, as the adapter maps them."""
    row = _message_state(message)
    row.update(
        id=message.id,
        tenant_id=message.tenant_id,
        client_message_id=message.client_message_id,
        fingerprint="f" * 64,
    )
    now = message.created_at
    return {
        "message": row,
        "parts": [_part_row(message.id, p) for p in message.parts],
        "events": [_event_row(message.id, e) for e in message.timeline],
        "transfer": {
            "id": message_transfer_id(message.id, Phase.RESERVE),
            "kind": "reserve",
            "debit_account": f"tenant:{message.tenant_id}",
            "credit_account": REVENUE_ACCOUNT,
            "amount": message.price_paise,
            "tenant_id": message.tenant_id,
            "created_at": now,
            "pending_id": None,
            "message_id": message.id,
            "reference": None,
        },
        "dispatch": {
            "message_id": message.id,
            "tenant_id": message.tenant_id,
            "due_at": now,
            "priority": 0,
            "owner": None,
            "lease_expires_at": None,
        },
    }


def prepared_messages(tenant_id: str, count: int, start: int) -> list[dict[str, Any]]:
    ids, clock = SystemIds(), SystemClock()
    out = []
    for n in range(start, start + count):
        message = Message.accept(
            id=ids.new_id("msg"),
            tenant_id=tenant_id,
            phone=phone(n),
            content=text(n),
            template_id=TEMPLATE,
            header="ACMEOT",
            entity_id=PE_ID,
            category="transactional",
            encoding="gsm7",
            segments=1,
            now=clock.now(),
            validity=timedelta(hours=1),
            client_message_id=f"raw-{n}",
            price_paise=25,
        )
        out.append(rows_for(message))
    return out


def raw_statements() -> dict[str, Any]:
    accounts = tables.ledger_accounts
    return {
        "message": tables.messages.insert(),
        "parts": tables.message_parts.insert(),
        "events": tables.message_events.insert(),
        "transfer": tables.ledger_transfers.insert(),
        "dispatch": tables.dispatch_queue.insert(),
        "debit": accounts.update()
        .where(accounts.c.id == sa.bindparam("acct"))
        .where(
            accounts.c.credits_posted - accounts.c.debits_posted - accounts.c.debits_pending
            >= sa.bindparam("amt")
        )
        .values(debits_pending=accounts.c.debits_pending + sa.bindparam("amt")),
        "credit": accounts.update()
        .where(accounts.c.id == sa.bindparam("acct"))
        .values(credits_pending=accounts.c.credits_pending + sa.bindparam("amt")),
    }


def raw_single(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    s = raw_statements()
    for r in rows:
        with engine.begin() as conn:
            conn.execute(s["message"], r["message"])
            conn.execute(s["parts"], r["parts"])
            conn.execute(s["events"], r["events"])
            conn.execute(s["transfer"], r["transfer"])
            t = r["transfer"]
            conn.execute(s["debit"], {"acct": t["debit_account"], "amt": t["amount"]})
            conn.execute(s["credit"], {"acct": t["credit_account"], "amt": t["amount"]})
            conn.execute(s["dispatch"], r["dispatch"])


def raw_batch(engine: sa.Engine, rows: list[dict[str, Any]], size: int) -> None:
    s = raw_statements()
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        total = sum(r["transfer"]["amount"] for r in chunk)
        with engine.begin() as conn:
            conn.execute(s["message"], [r["message"] for r in chunk])
            conn.execute(s["parts"], [p for r in chunk for p in r["parts"]])
            conn.execute(s["events"], [e for r in chunk for e in r["events"]])
            conn.execute(s["transfer"], [r["transfer"] for r in chunk])
            acct = chunk[0]["transfer"]["debit_account"]
            conn.execute(s["debit"], {"acct": acct, "amt": total})
            conn.execute(s["credit"], {"acct": REVENUE_ACCOUNT, "amt": total})
            conn.execute(s["dispatch"], [r["dispatch"] for r in chunk])


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(name: str, make_storage: Callable[[], SqlStorage], n_single: int, n_batches: int) -> None:
    # Our path and the baseline each get a fresh database, so neither warms the other's tables.
    ours = make_storage()
    bs, tenant_id = setup(ours, credits=10**12)
    singles = requests(range(n_single), "s-")
    send = bs.send
    t_send = timed(lambda: [send(tenant_id, **_kwargs(r)) for r in singles])

    raw = make_storage()
    _, raw_tenant = setup(raw, credits=10**12)
    rows = prepared_messages(raw_tenant, n_single, 0)
    t_raw = timed(lambda: raw_single(raw.engine, rows))

    batches = [requests(range(b * 1000, (b + 1) * 1000), "b-") for b in range(n_batches)]
    t_batch = timed(lambda: [bs.send_batch(tenant_id, batch) for batch in batches])
    rows_b = prepared_messages(raw_tenant, n_batches * 1000, 10_000_000)
    t_raw_b = timed(lambda: raw_batch(raw.engine, rows_b, 1000))
    report = bs.reconcile(tenant_id)
    assert report.ok, report.problems

    single, raw_rate = n_single / t_send, n_single / t_raw
    batch, raw_batch_rate = n_batches * 1000 / t_batch, n_batches * 1000 / t_raw_b
    print(f"[{name}] send():        {single:9,.0f} msg/s   raw Core: {raw_rate:9,.0f} msg/s"
          f"   ratio {single / raw_rate:5.2f}x   (n={n_single})")  # fmt: skip
    print(f"[{name}] send_batch():  {batch:9,.0f} msg/s   raw Core: {raw_batch_rate:9,.0f} msg/s"
          f"   ratio {batch / raw_batch_rate:5.2f}x"
          f"   (n={n_batches * 1000}, 1,000 per call)")  # fmt: skip
    ours.close()
    raw.close()


def _kwargs(r: SendRequest) -> dict[str, Any]:
    return {
        "phone_number": r.phone_number,
        "content": r.content,
        "dlt_template_id": r.dlt_template_id,
        "header": r.header,
        "client_message_id": r.client_message_id,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))
        bench(
            "sqlite",
            lambda: SqlStorage.from_url(f"sqlite:///{Path(tmp) / f'bench{next(counter)}.db'}"),
            args.messages,
            args.batches,
        )
    if args.postgres:
        schemas: list[str] = []

        def make_pg() -> SqlStorage:
            schemas.append(new_schema())
            return SqlStorage.from_url(args.postgres, schema=schemas[-1])

        try:
            bench("postgresql", make_pg, args.messages, args.batches)
        finally:
            drop_schemas(args.postgres, schemas)
    else:
        print(POSTGRES_SKIPPED)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
