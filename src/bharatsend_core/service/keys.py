"""API keys: issue (the secret is returned once), list, revoke, authenticate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs
from attrs import frozen

from bharatsend_core.domain.errors import ApiKeyNotFound, ConfigurationError, InvalidApiKey
from bharatsend_core.domain.keys import (
    ApiKey,
    IssuedKey,
    KeyMode,
    Scope,
    issue_key,
    parse_key,
    require_scope,
    verify_key,
)
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports import UnitOfWork
from bharatsend_core.service.context import Context, require_tenant

__all__ = ["KeyService", "Principal"]


@frozen
class Principal:
    """Who is calling: the tenant, and the key with its scopes."""

    tenant: Tenant
    key: ApiKey

    @property
    def scopes(self) -> frozenset[Scope]:
        """What the key may do."""
        return self.key.scopes

    @property
    def sandbox(self) -> bool:
        """Test keys send to the sandbox carrier only."""
        return self.key.is_test


class KeyService:
    """Use cases on API keys."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _pepper(self) -> bytes:
        pepper = self._ctx.settings.key_pepper
        if pepper is None:
            raise ConfigurationError(
                "API keys need a server-side pepper: set key_pepper (or BHARATSEND_KEY_PEPPER)"
                " to a long random secret kept out of the database",
                field="key_pepper",
            )
        return pepper

    def create(
        self,
        tenant_id: str,
        *,
        scopes: Iterable[str],
        mode: KeyMode | str = KeyMode.LIVE,
        name: str = "",
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """Issue a key; ``IssuedKey.secret`` is the full key, shown this once and never stored."""
        pepper = self._pepper()
        ids = self._ctx.ids
        issued = issue_key(
            tenant_id=tenant_id,
            mode=mode,
            scopes=scopes,
            pepper=pepper,
            id_bytes=ids.random_bytes(10),
            secret_bytes=ids.random_bytes(25),
            now=self._ctx.clock.now(),
            name=name,
            expires_at=expires_at,
        )

        def run(uow: UnitOfWork) -> IssuedKey:
            require_tenant(uow, tenant_id)
            uow.keys.add(issued.key)
            return issued

        return self._ctx.write(run)

    def list(self, tenant_id: str) -> Sequence[ApiKey]:
        """The tenant's keys (hashes are never exposed beyond the stored value)."""
        return self._ctx.read(lambda uow: uow.keys.list(tenant_id))

    def revoke(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a key now; it fails authentication from this moment."""
        now = self._ctx.clock.now()

        def run(uow: UnitOfWork) -> ApiKey:
            key = uow.keys.get(key_id)
            if key is None or key.tenant_id != tenant_id:
                raise ApiKeyNotFound(f"no API key {key_id!r}", field="key_id")
            revoked = key.revoke(now)
            uow.keys.update(revoked)
            return revoked

        return self._ctx.write(run)

    def authenticate(self, raw_key: str, scope: Scope | str | None = None) -> Principal:
        """The principal behind a presented key; ``InvalidApiKey`` or ``InsufficientScope``.

        One indexed lookup by key id and a constant-time hash compare. A
        missing, malformed, unknown, revoked or expired key, or one whose
        tenant is gone, all give the same ``InvalidApiKey``.
        """
        pepper = self._pepper()
        presented = parse_key(raw_key)
        now = self._ctx.clock.now()

        def run(uow: UnitOfWork) -> tuple[Principal, bool]:
            key = verify_key(uow.keys.get(presented.key_id), presented, pepper, now)
            tenant = uow.tenants.get(key.tenant_id)
            if tenant is None:
                raise InvalidApiKey("the API key is missing or invalid", field="authorization")
            return Principal(tenant, key), key.needs_touch(now)

        principal, stale = self._ctx.read(run)
        if scope is not None:
            require_scope(principal.key, scope)
        if stale:
            self._touch(principal.key.id, now)
        return principal

    def _touch(self, key_id: str, now: datetime) -> None:
        def run(uow: UnitOfWork) -> None:
            key = uow.keys.get(key_id)
            if key is not None and key.needs_touch(now):
                uow.keys.update(attrs.evolve(key, last_used_at=now))

        self._ctx.write(run)
