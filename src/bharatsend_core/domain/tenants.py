"""Tenants (the host application's customers) and their pricing.

Every resource belongs to one tenant and every query is scoped by it. A
suspended tenant keeps its data but cannot send. Prices are integers in paise
(1/100 rupee), never floats, charged per segment by category and optionally
by route.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from attrs import field, frozen

from bharatsend_core.domain.dlt import Category
from bharatsend_core.domain.errors import InvalidArgument, TenantSuspended

__all__ = [
    "DEFAULT_RATE_PAISE",
    "BillingPoint",
    "RateCard",
    "Tenant",
    "TenantStatus",
]

#: The default price of one segment, in paise, when a rate card says nothing else.
DEFAULT_RATE_PAISE: Final = 25


class TenantStatus(enum.StrEnum):
    """Whether a tenant may send."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class BillingPoint(enum.StrEnum):
    """When a reserved charge is posted: carrier acceptance (default) or delivery."""

    SUBMIT = "submit"
    DELIVERY = "delivery"


def _rate(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise InvalidArgument(
            f"{name} must be a whole number of paise from 0 to 100000", field=name
        )
    return value


def _default_rate(value: object) -> int:
    return _rate(value, "default")


def _category_rates(value: Mapping[str, int] | Iterable[tuple[str, int]]) -> Mapping[Category, int]:
    items = value.items() if isinstance(value, Mapping) else value
    return MappingProxyType({Category(k): _rate(v, f"rates.{k}") for k, v in items})


def _route_rates(
    value: Mapping[tuple[str, str], int] | Iterable[tuple[tuple[str, str], int]],
) -> Mapping[tuple[Category, str], int]:
    items = value.items() if isinstance(value, Mapping) else value
    return MappingProxyType(
        {(Category(c), str(r)): _rate(v, f"route_rates.{c}.{r}") for (c, r), v in items}
    )


@frozen
class RateCard:
    """Paise per segment: a default, per-category rates, and optional (category, route) rates."""

    default: int = field(default=DEFAULT_RATE_PAISE, converter=_default_rate)
    by_category: Mapping[Category, int] = field(factory=dict, converter=_category_rates)
    by_route: Mapping[tuple[Category, str], int] = field(factory=dict, converter=_route_rates)

    def rate(self, category: Category, route: str | None = None) -> int:
        """The per-segment rate for a category, on a route if that route has its own."""
        if route is not None:
            routed = self.by_route.get((category, route))
            if routed is not None:
                return routed
        return self.by_category.get(category, self.default)

    def reserve_price(self, category: Category, segments: int) -> int:
        """What to reserve at accept time, before a route is chosen: the dearest possible."""
        rates = [self.rate(category)]
        rates += [v for (c, _), v in self.by_route.items() if c is category]
        return max(rates) * segments

    def price(self, category: Category, segments: int, route: str | None = None) -> int:
        """What a message of ``segments`` costs in ``category`` on ``route``."""
        return self.rate(category, route) * segments

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (storage, API)."""
        return {
            "default": self.default,
            "by_category": {c.value: v for c, v in self.by_category.items()},
            "by_route": [[c.value, r, v] for (c, r), v in self.by_route.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RateCard:
        """Inverse of :meth:`to_dict`."""
        by_route = data.get("by_route") or []
        assert isinstance(by_route, list)
        by_category = data.get("by_category") or {}
        assert isinstance(by_category, dict)
        return cls(
            default=data.get("default", DEFAULT_RATE_PAISE),
            by_category=by_category,
            by_route={(str(c), str(r)): int(v) for c, r, v in by_route},
        )


@frozen
class Tenant:
    """An account of the host application's customer: owns keys, DLT data, credits."""

    id: str
    name: str
    status: TenantStatus = field(converter=TenantStatus)
    created_at: datetime
    billing_point: BillingPoint = field(default=BillingPoint.SUBMIT, converter=BillingPoint)
    rates: RateCard = field(factory=RateCard)
    #: Bumped on every DLT registry change, so caches of the registry know when to reload.
    dlt_version: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 200:
            raise InvalidArgument("a tenant name is 1 to 200 characters", field="name")
        if self.created_at.tzinfo is None:
            raise InvalidArgument("created_at must be timezone-aware", field="created_at")

    @property
    def is_active(self) -> bool:
        """Whether the tenant may send."""
        return self.status is TenantStatus.ACTIVE

    def require_active(self) -> None:
        """Raise ``TenantSuspended`` unless the tenant may send."""
        if not self.is_active:
            raise TenantSuspended(
                f"tenant {self.id} is suspended and cannot send; reactivate it first",
                field="tenant_id",
            )
