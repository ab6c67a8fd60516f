"""API keys: looked up by id across tenants, listed per tenant, updated within their tenant."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings

from bharatsend_core.domain.errors import AlreadyExists, ApiKeyNotFound
from bharatsend_core.domain.keys import ApiKey, KeyMode, Scope
from bharatsend_core.ports.storage import Storage

from .builders import api_key, api_keys, at, new_id

EXAMPLES = settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)


@EXAMPLES
@given(drawn=api_keys)
def test_every_key_field_round_trips(storage: Storage, drawn: ApiKey) -> None:
    with storage.unit_of_work() as uow:
        uow.keys.add(drawn)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.keys.get(drawn.id) == drawn
        assert uow.keys.list(drawn.tenant_id) == [drawn]


def test_a_taken_key_id_raises_already_exists_even_for_another_tenant(storage: Storage) -> None:
    first = api_key(new_id("ten"))
    with storage.unit_of_work() as uow:
        uow.keys.add(first)
        uow.commit()
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.keys.add(evolve(first, tenant_id=new_id("ten")))


def test_an_unknown_key_is_none(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        assert uow.keys.get("key_unknown") is None


def test_list_is_the_tenants_keys_oldest_first(storage: Storage) -> None:
    mine, theirs = new_id("ten"), new_id("ten")
    late, early = api_key(mine, created=20), api_key(mine, created=10)
    with storage.unit_of_work() as uow:
        for key in (late, api_key(theirs, created=5), early):
            uow.keys.add(key)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.keys.list(mine) == [early, late]
        assert uow.keys.list(new_id("ten")) == []


def test_update_replaces_revocation_expiry_last_use_and_name_only(storage: Storage) -> None:
    stored = api_key(new_id("ten"))
    with storage.unit_of_work() as uow:
        uow.keys.add(stored)
        uow.commit()
    changed = evolve(
        stored,
        revoked_at=at(60),
        expires_at=at(3600),
        last_used_at=at(30),
        name="rotated",
        # Not updatable: the secret, mode and scopes of a key are fixed at issue.
        secret_hash="cd" * 32,
        mode=KeyMode.TEST,
        scopes=frozenset({Scope.KEYS_ADMIN}),
        created_at=at(999),
    )
    with storage.unit_of_work() as uow:
        uow.keys.update(changed)
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.keys.get(stored.id) == evolve(
            stored, revoked_at=at(60), expires_at=at(3600), last_used_at=at(30), name="rotated"
        )


def test_updating_a_missing_key_raises_api_key_not_found(storage: Storage) -> None:
    with pytest.raises(ApiKeyNotFound), storage.unit_of_work() as uow:
        uow.keys.update(api_key(new_id("ten")))


def test_a_key_cannot_be_updated_through_another_tenant(storage: Storage) -> None:
    stored = api_key(new_id("ten"))
    with storage.unit_of_work() as uow:
        uow.keys.add(stored)
        uow.commit()
    with pytest.raises(ApiKeyNotFound), storage.unit_of_work() as uow:
        uow.keys.update(evolve(stored, tenant_id=new_id("ten"), revoked_at=at(1)))
    with storage.unit_of_work() as uow:
        assert uow.keys.get(stored.id) == stored
