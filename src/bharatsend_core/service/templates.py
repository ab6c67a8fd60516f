"""The DLT registry of each tenant: register, update, deactivate, import, and read fast.

Every change bumps the tenant's ``dlt_version`` in the same transaction, and
sends read the registry through :class:`RegistryCache`, which rebuilds a
tenant's in-memory registry only when that version moves. So a send costs no
registry queries at all, and a change made by any process is seen by the next
send everywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import attrs
from attrs import frozen

from bharatsend_core.domain.dlt import (
    Category,
    ContentType,
    DltWarning,
    Entity,
    Header,
    Registry,
    Template,
    TemplateIndex,
    UrlWhitelist,
    check_template,
    normalise_callback,
    validate_entity_id,
    validate_sender_id,
    validate_template_id,
)
from bharatsend_core.domain.errors import (
    AlreadyExists,
    DltEntityUnknown,
    DltHeaderUnknown,
    DltRecordNotFound,
    InvalidArgument,
)
from bharatsend_core.domain.tenants import Tenant
from bharatsend_core.ports import TemplateVersion, UnitOfWork, WhitelistKind
from bharatsend_core.service.context import Context, require_tenant
from bharatsend_core.service.dlt_csv import RowNote, RowWarning, parse_dlt_csv

__all__ = [
    "DltImportReport",
    "RegisteredTemplate",
    "RegistryCache",
    "RegistryService",
    "TenantRegistry",
]


@frozen
class TenantRegistry:
    """A snapshot of one tenant's registry at one version, with its template index."""

    version: int
    registry: Registry
    index: TemplateIndex


@frozen
class RegisteredTemplate:
    """A template as registered, with the registration warnings it earned."""

    template: Template
    warnings: tuple[DltWarning, ...]
    version: int


@frozen
class DltImportReport:
    """What a DLT CSV import changed: template ids created, updated, unchanged; and more."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    entities_created: tuple[str, ...]
    headers_created: tuple[str, ...]
    headers_updated: tuple[str, ...]
    warnings: tuple[RowWarning, ...]
    skipped: tuple[RowNote, ...]


class RegistryCache:
    """Per-tenant registry snapshots, rebuilt when the tenant's dlt_version changes (LRU)."""

    def __init__(self, max_tenants: int = 1024) -> None:
        self._max = max_tenants
        self._items: OrderedDict[str, TenantRegistry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uow: UnitOfWork, tenant: Tenant) -> TenantRegistry:
        """The tenant's registry at ``tenant.dlt_version`` (loaded through ``uow`` if stale)."""
        with self._lock:
            cached = self._items.get(tenant.id)
            if cached is not None and cached.version == tenant.dlt_version:
                self._items.move_to_end(tenant.id)
                return cached
        fresh = load_registry(uow, tenant)
        with self._lock:
            self._items[tenant.id] = fresh
            self._items.move_to_end(tenant.id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return fresh


def load_registry(uow: UnitOfWork, tenant: Tenant) -> TenantRegistry:
    """Read a tenant's whole registry into memory."""
    templates = uow.dlt.list_templates(tenant.id)
    registry = Registry(
        entities=uow.dlt.list_entities(tenant.id),
        headers=uow.dlt.list_headers(tenant.id),
        templates=templates,
        url_whitelist=uow.dlt.list_whitelist(tenant.id, "url"),
        callback_whitelist=uow.dlt.list_whitelist(tenant.id, "callback"),
    )
    index = TemplateIndex([t for t in templates if t.active])
    return TenantRegistry(tenant.dlt_version, registry, index)


class RegistryService:
    """Use cases on the DLT registry; each is one transaction."""

    def __init__(self, ctx: Context, cache: RegistryCache) -> None:
        self._ctx = ctx
        self.cache = cache

    # ------------------------------------------------------------------ entities

    def register_entity(self, tenant_id: str, pe_id: str, name: str = "") -> Entity:
        """Register a principal entity (PE ID); ``AlreadyExists`` if registered."""
        entity = Entity(validate_entity_id(pe_id, field="pe_id"), name)

        def run(uow: UnitOfWork) -> Entity:
            require_tenant(uow, tenant_id)
            uow.dlt.add_entity(tenant_id, entity)
            uow.tenants.bump_dlt_version(tenant_id)
            return entity

        return self._ctx.write(run)

    def entities(self, tenant_id: str) -> Sequence[Entity]:
        """The tenant's entities."""
        return self._ctx.read(lambda uow: uow.dlt.list_entities(tenant_id))

    # ------------------------------------------------------------------ headers

    def register_header(
        self,
        tenant_id: str,
        sender_id: str,
        *,
        category: str,
        entity_id: str | None = None,
    ) -> Header:
        """Register a header; the entity defaults to the tenant's only entity."""

        def run(uow: UnitOfWork) -> Header:
            require_tenant(uow, tenant_id)
            pe_id = self._entity_for(uow, tenant_id, entity_id)
            header = Header(
                validate_sender_id(sender_id, field="sender_id"), pe_id, Category.parse(category)
            )
            uow.dlt.add_header(tenant_id, header)
            uow.tenants.bump_dlt_version(tenant_id)
            return header

        return self._ctx.write(run)

    def set_header_active(self, tenant_id: str, sender_id: str, active: bool) -> Header:
        """Activate or deactivate a header."""

        def run(uow: UnitOfWork) -> Header:
            require_tenant(uow, tenant_id)
            header = uow.dlt.get_header(tenant_id, sender_id)
            if header is None:
                raise DltRecordNotFound(f"no header {sender_id!r}", field="sender_id")
            updated = attrs.evolve(header, active=active)
            uow.dlt.update_header(tenant_id, updated)
            uow.tenants.bump_dlt_version(tenant_id)
            return updated

        return self._ctx.write(run)

    def headers(self, tenant_id: str) -> Sequence[Header]:
        """The tenant's headers."""
        return self._ctx.read(lambda uow: uow.dlt.list_headers(tenant_id))

    # ------------------------------------------------------------------ templates

    def register_template(
        self,
        tenant_id: str,
        *,
        template_id: str,
        body: str,
        category: str,
        headers: Iterable[str],
        entity_id: str | None = None,
        content_type: str = "text",
        name: str = "",
    ) -> RegisteredTemplate:
        """Register a template after the registration checks; its headers must be registered."""

        def run(uow: UnitOfWork) -> RegisteredTemplate:
            require_tenant(uow, tenant_id)
            template = self._build(
                uow, tenant_id, template_id, body, category, headers, entity_id, content_type, name
            )
            warnings = check_template(template, self._ctx.settings.dlt)
            uow.dlt.add_template(tenant_id, template, self._ctx.clock.now())
            uow.tenants.bump_dlt_version(tenant_id)
            return RegisteredTemplate(template, warnings, 1)

        return self._ctx.write(run)

    def update_template(
        self,
        tenant_id: str,
        template_id: str,
        *,
        body: str | None = None,
        category: str | None = None,
        headers: Iterable[str] | None = None,
        content_type: str | None = None,
        active: bool | None = None,
        name: str | None = None,
    ) -> RegisteredTemplate:
        """Change a template; the previous version stays in its history."""

        def run(uow: UnitOfWork) -> RegisteredTemplate:
            require_tenant(uow, tenant_id)
            current = uow.dlt.get_template(tenant_id, template_id)
            if current is None:
                raise DltRecordNotFound(f"no template {template_id}", field="dlt_template_id")
            template = self._build(
                uow,
                tenant_id,
                template_id,
                current.body if body is None else body,
                current.category.value if category is None else category,
                current.headers if headers is None else headers,
                current.entity_id,
                current.content_type.value if content_type is None else content_type,
                current.name if name is None else name,
                active=current.active if active is None else active,
            )
            warnings = check_template(template, self._ctx.settings.dlt)
            version = uow.dlt.update_template(tenant_id, template, self._ctx.clock.now())
            uow.tenants.bump_dlt_version(tenant_id)
            return RegisteredTemplate(template, warnings, version)

        return self._ctx.write(run)

    def deactivate_template(self, tenant_id: str, template_id: str) -> RegisteredTemplate:
        """Stop a template from being used (its history is kept)."""
        return self.update_template(tenant_id, template_id, active=False)

    def template(self, tenant_id: str, template_id: str) -> Template:
        """The template, or ``DltRecordNotFound``."""

        def run(uow: UnitOfWork) -> Template:
            found = uow.dlt.get_template(tenant_id, template_id)
            if found is None:
                raise DltRecordNotFound(f"no template {template_id}", field="dlt_template_id")
            return found

        return self._ctx.read(run)

    def templates(self, tenant_id: str) -> Sequence[Template]:
        """The tenant's templates."""
        return self._ctx.read(lambda uow: uow.dlt.list_templates(tenant_id))

    def template_history(self, tenant_id: str, template_id: str) -> Sequence[TemplateVersion]:
        """Every version of a template, oldest first."""
        return self._ctx.read(lambda uow: uow.dlt.template_history(tenant_id, template_id))

    # ------------------------------------------------------------------ CSV import

    def import_dlt_csv(
        self, tenant_id: str, data: str | bytes, *, pe_id: str | None = None
    ) -> DltImportReport:
        """Import a DLT portal export: every template in one transaction, or none.

        Entities and headers the file names are registered when missing; a
        template already registered with the same content is left alone, a
        changed one is updated (its history keeps the old version). Any faulty
        row raises ``DltCsvInvalid`` listing every faulty row by line.
        """

        def run(uow: UnitOfWork) -> DltImportReport:
            require_tenant(uow, tenant_id)
            tenant_pe = pe_id
            if tenant_pe is None:
                entities = uow.dlt.list_entities(tenant_id)
                tenant_pe = entities[0].pe_id if len(entities) == 1 else None
            parsed = parse_dlt_csv(data, tenant_pe_id=tenant_pe, policy=self._ctx.settings.dlt)
            now = self._ctx.clock.now()
            entities_created = []
            for pe in parsed.entities:
                if uow.dlt.get_entity(tenant_id, pe) is None:
                    uow.dlt.add_entity(tenant_id, Entity(pe))
                    entities_created.append(pe)
            headers_created, headers_updated = [], []
            for header in parsed.headers:
                current = uow.dlt.get_header(tenant_id, header.sender_id)
                if current is None:
                    uow.dlt.add_header(tenant_id, header)
                    headers_created.append(header.sender_id)
                elif current.entity_id != header.entity_id:
                    raise AlreadyExists(
                        f"header {header.sender_id!r} is registered to PE ID"
                        f" {current.entity_id}, but the file links it to {header.entity_id}",
                        field="headers",
                    )
                elif current.category is not header.category:
                    uow.dlt.update_header(
                        tenant_id, attrs.evolve(current, category=header.category)
                    )
                    headers_updated.append(header.sender_id)
            created, updated, unchanged = [], [], []
            for template in parsed.templates:
                current_template = uow.dlt.get_template(tenant_id, template.template_id)
                if current_template is None:
                    uow.dlt.add_template(tenant_id, template, now)
                    created.append(template.template_id)
                elif attrs.evolve(current_template, name=template.name) == template:
                    unchanged.append(template.template_id)
                else:
                    uow.dlt.update_template(tenant_id, template, now)
                    updated.append(template.template_id)
            if entities_created or headers_created or headers_updated or created or updated:
                uow.tenants.bump_dlt_version(tenant_id)
            return DltImportReport(
                tuple(created),
                tuple(updated),
                tuple(unchanged),
                tuple(entities_created),
                tuple(headers_created),
                tuple(headers_updated),
                parsed.warnings,
                parsed.skipped,
            )

        return self._ctx.write(run)

    # ------------------------------------------------------------------ whitelists

    def add_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Whitelist a URL prefix (``url``) or call-back number (``callback``)."""
        value = _normal_whitelist_value(kind, value)

        def run(uow: UnitOfWork) -> bool:
            require_tenant(uow, tenant_id)
            added = uow.dlt.add_whitelist(tenant_id, kind, value)
            if added:
                uow.tenants.bump_dlt_version(tenant_id)
            return added

        return self._ctx.write(run)

    def remove_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Remove a whitelist entry."""
        value = _normal_whitelist_value(kind, value)

        def run(uow: UnitOfWork) -> bool:
            require_tenant(uow, tenant_id)
            removed = uow.dlt.remove_whitelist(tenant_id, kind, value)
            if removed:
                uow.tenants.bump_dlt_version(tenant_id)
            return removed

        return self._ctx.write(run)

    # ------------------------------------------------------------------ helpers

    def _entity_for(self, uow: UnitOfWork, tenant_id: str, entity_id: str | None) -> str:
        if entity_id is not None:
            pe_id = validate_entity_id(entity_id)
            if uow.dlt.get_entity(tenant_id, pe_id) is None:
                raise DltEntityUnknown(
                    f"PE ID {pe_id} is not registered for this tenant; register it first",
                    field="entity_id",
                )
            return pe_id
        entities = uow.dlt.list_entities(tenant_id)
        if len(entities) != 1:
            raise InvalidArgument(
                "the tenant has "
                + ("no entity; register one first" if not entities else "several entities")
                + "; pass entity_id",
                field="entity_id",
            )
        return entities[0].pe_id

    def _build(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        template_id: str,
        body: str,
        category: str,
        headers: Iterable[str],
        entity_id: str | None,
        content_type: str,
        name: str,
        *,
        active: bool = True,
    ) -> Template:
        if isinstance(headers, str):
            headers = [headers]
        pe_id = self._entity_for(uow, tenant_id, entity_id)
        linked = frozenset(headers)
        for sender_id in sorted(linked):
            header = uow.dlt.get_header(tenant_id, validate_sender_id(sender_id))
            if header is None or header.entity_id != pe_id:
                raise DltHeaderUnknown(
                    f"header {sender_id!r} is not registered for PE ID {pe_id}; register it"
                    " before linking it to a template",
                    field="headers",
                )
        return Template(
            template_id=validate_template_id(template_id, field="template_id"),
            entity_id=pe_id,
            category=Category.parse(category),
            body=body,
            content_type=ContentType.parse(content_type),
            headers=linked,
            active=active,
            name=name,
        )


def _normal_whitelist_value(kind: WhitelistKind, value: str) -> str:
    if kind == "url":
        UrlWhitelist.parse([value])  # raises InvalidArgument for junk
        return value.strip()
    if kind == "callback":
        number = normalise_callback(value)
        if number is None:
            raise InvalidArgument(f"{value!r} is not a call-back number", field="value")
        return number
    raise InvalidArgument("whitelist kind is 'url' or 'callback'", field="kind")
