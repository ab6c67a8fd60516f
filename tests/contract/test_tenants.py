"""Tenants: every field round-trips, ids are unique, updates replace only what they document."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings

from bharatsend_core.domain.dlt import Category
from bharatsend_core.domain.errors import AlreadyExists, TenantNotFound
from bharatsend_core.domain.tenants import BillingPoint, RateCard, Tenant, TenantStatus
from bharatsend_core.ports.storage import Storage

from .builders import at, tenant, tenants

EXAMPLES = settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)


@EXAMPLES
@given(drawn=tenants)
def test_every_tenant_field_round_trips(storage: Storage, drawn: Tenant) -> None:
    with storage.unit_of_work() as uow:
        uow.tenants.add(drawn)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(drawn.id) == drawn


def test_a_taken_tenant_id_raises_already_exists(storage: Storage) -> None:
    first = tenant()
    with storage.unit_of_work() as uow:
        uow.tenants.add(first)
        uow.commit()
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.tenants.add(evolve(first, name="Someone else"))
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(first.id) == first


def test_an_unknown_tenant_is_none(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        assert uow.tenants.get("ten_unknown") is None


def test_update_replaces_name_status_billing_point_and_rates_only(storage: Storage) -> None:
    stored = tenant(created=0)
    with storage.unit_of_work() as uow:
        uow.tenants.add(stored)
        uow.tenants.bump_dlt_version(stored.id)
        uow.commit()
    changed = evolve(
        stored,
        name="Acme Wholesale",
        status=TenantStatus.SUSPENDED,
        billing_point=BillingPoint.DELIVERY,
        rates=RateCard(default=30, by_category={Category.PROMOTIONAL: 40}),
        created_at=at(999),  # not an updatable field
        dlt_version=77,  # only bump_dlt_version moves it
    )
    with storage.unit_of_work() as uow:
        uow.tenants.update(changed)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.tenants.get(stored.id) == evolve(changed, created_at=at(0), dlt_version=1)


def test_updating_a_missing_tenant_raises_tenant_not_found(storage: Storage) -> None:
    with pytest.raises(TenantNotFound), storage.unit_of_work() as uow:
        uow.tenants.update(tenant())


def test_bump_dlt_version_counts_up_from_the_stored_version(storage: Storage) -> None:
    stored = tenant(dlt_version=5)
    with storage.unit_of_work() as uow:
        uow.tenants.add(stored)
        assert [uow.tenants.bump_dlt_version(stored.id) for _ in range(3)] == [6, 7, 8]
        uow.commit()
    with storage.unit_of_work() as uow:
        found = uow.tenants.get(stored.id)
        assert found is not None
        assert found.dlt_version == 8


def test_bumping_a_missing_tenant_raises_tenant_not_found(storage: Storage) -> None:
    with pytest.raises(TenantNotFound), storage.unit_of_work() as uow:
        uow.tenants.bump_dlt_version("ten_unknown")


def test_list_is_every_tenant_oldest_first(storage: Storage) -> None:
    newest, oldest, middle = tenant(created=30), tenant(created=10), tenant(created=20)
    with storage.unit_of_work() as uow:
        for t in (newest, oldest, middle):
            uow.tenants.add(t)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert [t.id for t in uow.tenants.list()] == [oldest.id, middle.id, newest.id]
