"""Tenants: create (with their ledger account), suspend, reactivate, price."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from bharatsend_core.domain.ledger import tenant_account
from bharatsend_core.domain.tenants import BillingPoint, RateCard, Tenant, TenantStatus
from bharatsend_core.ports import UnitOfWork
from bharatsend_core.service.context import Context, require_tenant

__all__ = ["TenantService"]


class TenantService:
    """Use cases on tenants; each is one transaction."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def create(
        self,
        name: str,
        *,
        rates: RateCard | None = None,
        billing_point: BillingPoint | str | None = None,
    ) -> Tenant:
        """A new active tenant with an empty credit account."""
        settings = self._ctx.settings
        tenant = Tenant(
            id=self._ctx.ids.new_id("ten"),
            name=name,
            status=TenantStatus.ACTIVE,
            created_at=self._ctx.clock.now(),
            billing_point=BillingPoint(billing_point or settings.billing_point),
            rates=rates or settings.rate_card,
        )

        def run(uow: UnitOfWork) -> Tenant:
            uow.tenants.add(tenant)
            uow.ledger.ensure_account(tenant_account(tenant.id), tenant.id)
            return tenant

        return self._ctx.write(run)

    def get(self, tenant_id: str) -> Tenant:
        """The tenant, or ``TenantNotFound``."""
        return self._ctx.read(lambda uow: require_tenant(uow, tenant_id))

    def list(self) -> Sequence[Tenant]:
        """Every tenant."""
        return self._ctx.read(lambda uow: uow.tenants.list())

    def set_status(self, tenant_id: str, status: TenantStatus | str) -> Tenant:
        """Suspend or reactivate a tenant (a suspended tenant keeps its data, cannot send)."""
        status = TenantStatus(status)
        return self._change(tenant_id, lambda t: attrs.evolve(t, status=status))

    def set_rates(self, tenant_id: str, rates: RateCard) -> Tenant:
        """Replace the tenant's rate card (applies to messages accepted from now on)."""
        return self._change(tenant_id, lambda t: attrs.evolve(t, rates=rates))

    def set_billing_point(self, tenant_id: str, billing_point: BillingPoint | str) -> Tenant:
        """Charge at carrier acceptance (``submit``) or at delivery (``delivery``)."""
        point = BillingPoint(billing_point)
        return self._change(tenant_id, lambda t: attrs.evolve(t, billing_point=point))

    def _change(self, tenant_id: str, change: Callable[[Tenant], Tenant]) -> Tenant:
        def run(uow: UnitOfWork) -> Tenant:
            updated = change(require_tenant(uow, tenant_id))
            uow.tenants.update(updated)
            return updated

        return self._ctx.write(run)
