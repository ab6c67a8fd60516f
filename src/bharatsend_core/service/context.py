"""What every use case needs: storage, time, ids and settings (the service's dependencies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from attrs import field, frozen

from bharatsend_core.config import Settings
from bharatsend_core.domain.errors import TenantNotFound
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports import Clock, IdGenerator, Storage, UnitOfWork
from bharatsend_core.service.events import EventHub

__all__ = ["Context", "require_tenant"]

T = TypeVar("T")


@frozen
class Context:
    """The injected dependencies of the services (built by ``BharatSend``)."""

    storage: Storage
    clock: Clock
    ids: IdGenerator
    settings: Settings
    #: In-process listeners, called after commits (Django signals, tests).
    hub: EventHub = field(factory=EventHub)

    def read(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in a unit of work that is never committed (a read)."""
        with self.storage.unit_of_work() as uow:
            return fn(uow)

    def write(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in a unit of work and commit if it returns (roll back if it raises)."""
        with self.storage.unit_of_work() as uow:
            result = fn(uow)
            uow.commit()
            return result


def require_tenant(uow: UnitOfWork, tenant_id: str) -> Tenant:
    """The tenant, or ``TenantNotFound``."""
    tenant = uow.tenants.get(tenant_id) if isinstance(tenant_id, str) else None
    if tenant is None:
        raise TenantNotFound(f"no tenant {tenant_id!r}", field="tenant_id")
    return tenant
