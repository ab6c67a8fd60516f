"""Carrier routes (stored whole, password included) and the delivery-receipt inbox."""

from __future__ import annotations

import pytest
from attrs import evolve

from bharatsend_core.domain.dlt import Category
from bharatsend_core.domain.errors import AlreadyExists, RouteNotFound
from bharatsend_core.domain.message import ReceiptOutcome
from bharatsend_core.domain.routing import Connection, Route, RouteConfig, StatusClass
from bharatsend_core.ports.storage import Storage, StoredReceipt

from .builders import at, new_id


def route_config(name: str, **route: object) -> RouteConfig:
    return RouteConfig(
        route=Route(name=name, **route),  # type: ignore[arg-type]
        connection=Connection(
            host="smsc.example.in", port=2775, system_id="acme", password="s3cr3t"
        ),
    )


def detailed(name: str) -> RouteConfig:
    """Every field away from its default."""
    return RouteConfig(
        route=Route(
            name=name,
            priority=3,
            weight=250,
            tps=42.5,
            window=7,
            categories=frozenset({Category.TRANSACTIONAL, Category.PROMOTIONAL}),
            operators=frozenset({"Airtel", "Reliance Jio"}),
            prefixes=("+9198", "+9199"),
            enabled=False,
            sandbox=True,
            retry_permanent_elsewhere=True,
        ),
        connection=Connection(
            host="10.1.2.3",
            port=9000,
            system_id="acme_tx",
            password="p@ss:w0",
            system_type="VMA",
            bind="pair",
            dlt_tlvs={"pe_id": 0x1500, "template_id": 0x1501, "chain": 0x1502},
            tlv_nul_terminated=True,
            dlt_chain="1501234,1709876",
            id_mode="hex_to_decimal",
            status_overrides={0x58: StatusClass.TRANSIENT, 0x45: "permanent"},
            response_timeout=2.5,
            enquire_interval=60,
            resend_unknown=frozenset({Category.PROMOTIONAL}),
        ),
    )


# --------------------------------------------------------------------------- routes


def test_a_route_round_trips_with_every_field_and_the_password(storage: Storage) -> None:
    plain, full = route_config("plain"), detailed("full")
    with storage.unit_of_work() as uow:
        uow.routes.add(full)
        uow.routes.add(plain)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.routes.get("full") == full
        assert uow.routes.get("plain") == plain
        assert uow.routes.get("missing") is None
        stored = uow.routes.get("full")
    assert stored is not None
    assert stored.connection.password == "p@ss:w0"
    assert dict(stored.connection.dlt_tlvs) == {
        "pe_id": 0x1500,
        "template_id": 0x1501,
        "chain": 0x1502,
    }
    assert dict(stored.connection.status_overrides) == {
        0x58: StatusClass.TRANSIENT,
        0x45: StatusClass.PERMANENT,
    }


def test_routes_list_by_name(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        for name in ("zeta", "alpha", "mid-1", "Beta"):
            uow.routes.add(route_config(name.lower()))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert [c.name for c in uow.routes.list()] == ["alpha", "beta", "mid-1", "zeta"]


def test_a_taken_route_name_raises_already_exists(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.routes.add(route_config("r1"))
        uow.commit()
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.routes.add(detailed("r1"))
    with storage.unit_of_work() as uow:
        assert uow.routes.get("r1") == route_config("r1")


def test_update_replaces_a_route_and_a_missing_one_raises(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.routes.add(route_config("r1"))
        uow.commit()
    changed = detailed("r1")
    with storage.unit_of_work() as uow:
        uow.routes.update(changed)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.routes.get("r1") == changed
        assert uow.routes.list() == [changed]
    with pytest.raises(RouteNotFound), storage.unit_of_work() as uow:
        uow.routes.update(route_config("nope"))


def test_an_uncommitted_route_is_rolled_back(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.routes.add(route_config("r1"))
    with storage.unit_of_work() as uow:
        assert uow.routes.get("r1") is None


# --------------------------------------------------------------------------- receipts


def receipt(
    carrier_id: str,
    *,
    route: str = "r1",
    outcome: ReceiptOutcome = ReceiptOutcome.DELIVERED,
    received: float = 0,
    state: str = "parked",
    **changes: object,
) -> StoredReceipt:
    return StoredReceipt(
        route=route,
        carrier_message_id=carrier_id,
        outcome=outcome,
        stat="DELIVRD" if outcome is ReceiptOutcome.DELIVERED else "UNDELIV",
        error_code=changes.pop("error_code", None),  # type: ignore[arg-type]
        received_at=at(received),
        state=state,  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )


def add_receipts(storage: Storage, *receipts: StoredReceipt) -> list[bool]:
    with storage.unit_of_work() as uow:
        added = [uow.receipts.add(r) for r in receipts]
        uow.commit()
    return added


def test_a_receipt_is_stored_once_per_route_carrier_id_and_outcome(storage: Storage) -> None:
    first = receipt("c1", error_code="000", done_at=at(-5))
    assert add_receipts(storage, first) == [True]
    again = evolve(first, stat="OTHER", received_at=at(9))
    assert add_receipts(
        storage,
        again,  # same key: ignored, nothing written
        receipt("c1", outcome=ReceiptOutcome.ENROUTE),
        receipt("c1", route="r2"),
        receipt("c2"),
    ) == [False, True, True, True]
    with storage.unit_of_work() as uow:
        stored = uow.receipts.list(limit=10)
    assert len(stored) == 4
    assert first in stored


def test_add_many_stores_each_key_once_in_order_and_keeps_every_field(storage: Storage) -> None:
    first = receipt("c1", error_code="000", done_at=at(-5))
    assert add_receipts(storage, first) == [True]
    applied = receipt(
        "c2",
        outcome=ReceiptOutcome.UNDELIVERED,
        error_code="011",
        state="applied",
        tenant_id="ten_1",
        message_id="msg_1",
        part_index=2,
        done_at=at(3),
    )
    batch = [
        evolve(first, stat="OTHER"),  # stored before: nothing written
        applied,
        receipt("c3"),
        evolve(applied, stat="AGAIN"),  # the same key twice in one batch
        receipt("c1", route="r2"),
    ]
    with storage.unit_of_work() as uow:
        assert list(uow.receipts.add_many(batch)) == [False, True, True, False, True]
        assert list(uow.receipts.add_many([])) == []
        assert list(uow.receipts.add_many([receipt("c4")])) == [True]
        uow.commit()
    with storage.unit_of_work() as uow:
        stored = uow.receipts.list(limit=20)
    assert len(stored) == 5
    assert first in stored
    assert applied in stored  # every field, times, None and part index as given


def test_parked_receipts_of_a_route_come_oldest_first(storage: Storage) -> None:
    add_receipts(
        storage,
        receipt("c1", received=5),
        receipt("c1", outcome=ReceiptOutcome.ENROUTE, received=1),
        receipt("c2", received=3),
        receipt("c3", received=0),
        receipt("c1", route="r2", received=0),
        receipt("c2", received=0, outcome=ReceiptOutcome.EXPIRED, state="unknown"),
    )
    with storage.unit_of_work() as uow:
        parked = uow.receipts.parked("r1", ["c1", "c2", "zz"])
        assert uow.receipts.parked("r1", []) == []
    assert [(r.carrier_message_id, r.outcome, r.received_at) for r in parked] == [
        ("c1", ReceiptOutcome.ENROUTE, at(1)),
        ("c2", ReceiptOutcome.DELIVERED, at(3)),
        ("c1", ReceiptOutcome.DELIVERED, at(5)),
    ]


def test_resolve_applies_a_receipt_to_its_part(storage: Storage) -> None:
    parked = receipt("c1")
    add_receipts(storage, parked, receipt("c1", outcome=ReceiptOutcome.ENROUTE))
    tenant_id = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.receipts.resolve(
            parked, state="applied", tenant_id=tenant_id, message_id="m1", part_index=2
        )
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.receipts.parked("r1", ["c1"]) == [receipt("c1", outcome=ReceiptOutcome.ENROUTE)]
        assert uow.receipts.list(message_id="m1") == [
            evolve(parked, state="applied", tenant_id=tenant_id, message_id="m1", part_index=2)
        ]
        assert uow.receipts.list(state="applied", message_id="other") == []


def test_expire_parked_marks_old_parked_receipts_unknown(storage: Storage) -> None:
    add_receipts(
        storage,
        receipt("old", received=0),
        receipt("edge", received=10),
        receipt("new", received=20),
        receipt("done", received=0, state="applied", message_id="m1"),
    )
    with storage.unit_of_work() as uow:
        assert uow.receipts.expire_parked(at(10)) == 1
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.receipts.expire_parked(at(10)) == 0
        assert [r.carrier_message_id for r in uow.receipts.list(state="unknown")] == ["old"]
        assert [r.carrier_message_id for r in uow.receipts.list(state="parked")] == ["new", "edge"]
        assert [r.carrier_message_id for r in uow.receipts.list(state="applied")] == ["done"]


def test_list_is_newest_first_then_by_carrier_id_and_honours_the_limit(storage: Storage) -> None:
    add_receipts(
        storage,
        receipt("b", received=5),
        receipt("a", received=5),
        receipt("c", received=9),
        receipt("d", received=1),
    )
    with storage.unit_of_work() as uow:
        assert [r.carrier_message_id for r in uow.receipts.list()] == ["c", "a", "b", "d"]
        assert [r.carrier_message_id for r in uow.receipts.list(limit=2)] == ["c", "a"]
        assert uow.receipts.list(limit=0) == []


def test_an_uncommitted_receipt_is_rolled_back(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        assert uow.receipts.add(receipt("c1"))
    assert add_receipts(storage, receipt("c1")) == [True]
