"""Batch reads and writes by id use an index on PostgreSQL, even before the first ANALYZE.

A table nobody has analyzed yet (a new deployment, or a server with
autovacuum off) has no statistics, and the planner then prices ``col = ANY
(:ids)`` with a default selectivity per element: for a batch of a few
hundred ids it expects most of the table and scans all of it. The storage's
batch statements probe the index once per id instead, so their plans must
not scan the tables they read by id, whatever the statistics say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.adapters.sqlalchemy.prepared import Prepared
from bharatsend_core.service.send import SendRequest

from ..unit.service.world import OTP_TEMPLATE, OTP_TEXT, PEPPER, make_world

MESSAGES = 3000
BATCH = 400


def short(plan: str) -> str:
    """The plan without the long id lists, for a readable failure."""
    return "\n".join(line[:120] for line in plan.splitlines())


def explain(storage: SqlStorage, sql: str, params: object) -> str:
    """The plan PostgreSQL picks for ``sql`` with these parameters (nothing runs)."""
    with storage.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
    return plan


def plan_of(storage: SqlStorage, prepared: Prepared, given: Mapping[str, Any]) -> str:
    return explain(storage, prepared.sql, prepared.params(given))


@pytest.fixture
def loaded(
    sql_storage_factory: Callable[[str], SqlStorage],
) -> tuple[SqlStorage, str, list[str]]:
    """A PostgreSQL storage holding a few thousand accepted messages (new tables: no ANALYZE yet,
    unless autovacuum got there first, and the plans must use the index either way)."""
    storage = sql_storage_factory("postgres")
    settings = Settings.resolve({}, key_pepper=PEPPER, number_limit=0)
    bs = BharatSend(storage=storage, settings=settings)
    world = make_world(bs, None, credits=10**9)  # type: ignore[arg-type]
    ids: list[str] = []
    for start in range(0, MESSAGES, 1000):
        batch = [
            SendRequest(
                f"+9198{n:08d}", OTP_TEXT, OTP_TEMPLATE, header="ACMEOT", client_message_id=f"c-{n}"
            )
            for n in range(start, start + 1000)
        ]
        result = bs.send_batch(world.tenant_id, batch)
        assert result.rejected == 0
        ids.extend(item.result.message.id for item in result.items if item.result is not None)
    return storage, world.tenant_id, ids[1000 : 1000 + BATCH]


@pytest.mark.parametrize(
    ("statement", "table", "params"),
    [
        ("messages_by_ids", "messages", lambda t, ids: {"b_ids": ids}),
        ("parts_of_many", "message_parts", lambda t, ids: {"b_ids": ids}),
        ("events_of_many", "message_events", lambda t, ids: {"b_ids": ids}),
        ("events_stored_many", "message_events", lambda t, ids: {"b_ids": ids}),
        (
            "client_ids_of_tenant",
            "messages",
            lambda t, ids: {"b_tenant_id": t, "b_client_ids": [f"c-{n}" for n in range(BATCH)]},
        ),
        (
            "transfers_by_ids",
            "ledger_transfers",
            lambda t, ids: {"b_ids": [f"{i}.reserve" for i in ids]},
        ),
        (
            "count_recent_many",
            "messages",
            lambda t, ids: {
                "b_tenant_id": t,
                "b_phones": [f"+9198{n:08d}" for n in range(BATCH)],
                "b_since": datetime(2020, 1, 1, tzinfo=UTC),
            },
        ),
        (
            "parts_by_carrier",
            "message_parts",
            lambda t, ids: {"b_route": "agg1", "b_carrier_ids": [f"c{n}" for n in range(BATCH)]},
        ),
    ],
)
def test_batch_reads_by_id_probe_an_index(
    loaded: tuple[SqlStorage, str, list[str]],
    statement: str,
    table: str,
    params: Callable[[str, list[str]], dict[str, Any]],
) -> None:
    storage, tenant_id, ids = loaded
    prepared = getattr(storage._statements, statement)
    plan = plan_of(storage, prepared, params(tenant_id, ids))
    assert f"Seq Scan on {table}" not in plan, short(plan)
    assert "Index" in plan, short(plan)


_LATER = datetime(2030, 1, 1, tzinfo=UTC)


def _message_state(tenant_id: str, message_id: str) -> dict[str, Any]:
    return {
        "status": "submitting",
        "attempts": 1,
        "next_attempt_at": None,
        "updated_at": _LATER,
        "route": "agg1",
        "possible_duplicate": False,
        "error_code": None,
        "error_reason": None,
        "error_carrier_code": None,
        "b_id": message_id,
        "b_tenant_id": tenant_id,
    }


@pytest.mark.parametrize(
    ("statement", "table", "row"),
    [
        ("message_update", "messages", _message_state),
        ("dispatch_ack", "dispatch_queue", lambda t, i: {"b_message_id": i, "b_owner": "w1"}),
        (
            "dispatch_extend",
            "dispatch_queue",
            lambda t, i: {"new_lease_expires_at": _LATER, "b_message_id": i, "b_owner": "w1"},
        ),
        (
            "dispatch_release",
            "dispatch_queue",
            lambda t, i: {"new_due_at": _LATER, "b_message_id": i, "b_owner": "w1"},
        ),
    ],
)
def test_batch_writes_by_key_probe_an_index(
    loaded: tuple[SqlStorage, str, list[str]],
    statement: str,
    table: str,
    row: Callable[[str, str], dict[str, Any]],
) -> None:
    """The one-statement batch UPDATE and DELETE find each row through the key's index.

    Joined straight to the unnested rows, an UPDATE of 400 messages hashed
    the whole table (a sequential scan) on every batch of the dispatch loop.
    """
    storage, tenant_id, ids = loaded
    bulk = getattr(storage._statements, statement).bulk
    plan = explain(storage, bulk.sql, bulk.params([row(tenant_id, i) for i in ids]))
    assert f"Seq Scan on {table}" not in plan, short(plan)
    assert "Index" in plan, short(plan)
