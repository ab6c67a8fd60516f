"""Carrier routes: add, list, enable and disable (workers pick changes up on their own)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from bharatsend_core.domain.errors import RouteNotFound
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.ports.storage import UnitOfWork
from bharatsend_core.service.context import Context

__all__ = ["RouteService"]


class RouteService:
    """Use cases on routes; running workers reload routes every few seconds."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def add(self, config: RouteConfig) -> RouteConfig:
        """Store a new route; ``AlreadyExists`` if the name is taken."""

        def run(uow: UnitOfWork) -> RouteConfig:
            uow.routes.add(config)
            return config

        return self._ctx.write(run)

    def get(self, name: str) -> RouteConfig:
        """The route; ``RouteNotFound`` if there is none."""

        def run(uow: UnitOfWork) -> RouteConfig:
            config = uow.routes.get(name)
            if config is None:
                raise RouteNotFound(f"no route {name!r}", field="name")
            return config

        return self._ctx.read(run)

    def list(self) -> Sequence[RouteConfig]:
        """Every route, by name."""
        return self._ctx.read(lambda uow: uow.routes.list())

    def set_enabled(self, name: str, enabled: bool) -> RouteConfig:
        """Enable or disable a route (a disabled route is never chosen; workers unbind it)."""

        def run(uow: UnitOfWork) -> RouteConfig:
            config = uow.routes.get(name)
            if config is None:
                raise RouteNotFound(f"no route {name!r}", field="name")
            changed = attrs.evolve(config, route=attrs.evolve(config.route, enabled=enabled))
            uow.routes.update(changed)
            return changed

        return self._ctx.write(run)

    def replace(self, config: RouteConfig) -> RouteConfig:
        """Replace a route's whole configuration; ``RouteNotFound`` if it does not exist."""

        def run(uow: UnitOfWork) -> RouteConfig:
            uow.routes.update(config)
            return config

        return self._ctx.write(run)
