"""The ``BHARATSEND`` settings dict: validated once, with errors that name the bad key.

::

    BHARATSEND = {
        "KEY_PEPPER": env("BHARATSEND_KEY_PEPPER"),   # required
        "DATABASE": "default",          # Django's default database (default), or a URL
        "ROUTES": [...],                # carrier routes, applied by bharatsend_routes sync
        "NUMBER_LIMIT": 10,             # any core setting, upper-cased
        "KEY_RATE": 100, "KEY_BURST": 200, "MAX_BODY_BYTES": 2097152,   # API limits
        "OUTBOX": False,                # tests: capture sent messages in bharatsend_django.outbox
        "DEFAULT_TENANT": "ten_…",      # the tenant send_sms() uses when none is given
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from django.core.exceptions import ImproperlyConfigured

from bharatsend_core.config import Settings
from bharatsend_core.domain.errors import BharatSendError
from bharatsend_core.http import ApiConfig

__all__ = ["DjangoSettings", "database_url", "load"]

_API = {
    "MAX_BODY_BYTES": "max_body_bytes",
    "KEY_RATE": "key_rate",
    "KEY_BURST": "key_burst",
    "KEY_CACHE_SECONDS": "key_cache_seconds",
    "WORKER_HEARTBEAT_MAX_AGE": "worker_heartbeat_max_age",
}
#: API limits that must be whole numbers (a byte count, a token count).
_API_INTS = {"max_body_bytes", "key_burst"}
_OWN = {"DATABASE", "ROUTES", "OUTBOX", "MIGRATE_ON_MIGRATE", "DEFAULT_TENANT", *_API}
#: ``DATABASES[...]["OPTIONS"]`` keys Django consumes itself (not libpq parameters).
_DJANGO_PG_OPTIONS = {
    "isolation_level",
    "server_side_binding",
    "pool",
    "assume_role",
    "cursor_factory",
    "context",
}
_CORE = {f.name.upper(): f.name for f in attrs.fields(Settings) if f.name != "database_url"}


@attrs.frozen
class DjangoSettings:
    """What the app needs from ``settings.BHARATSEND``."""

    core: Settings
    api: ApiConfig
    #: ``"default"`` style alias of a Django database, or None when a URL was given.
    database_alias: str | None
    routes: tuple[Mapping[str, Any], ...]
    outbox: bool
    migrate_on_migrate: bool
    #: The tenant ``send_sms`` uses when none is given (single-tenant host apps).
    default_tenant: str | None = None


def _fail(key: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"BHARATSEND[{key!r}]: {why}")


def load(raw: Any, databases: Mapping[str, Mapping[str, Any]]) -> DjangoSettings:
    """Validate ``settings.BHARATSEND``; ``ImproperlyConfigured`` names the first bad key."""
    if raw is None:
        raise ImproperlyConfigured(
            "settings.BHARATSEND is missing; at least {'KEY_PEPPER': '<a long secret>'}"
        )
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured("settings.BHARATSEND must be a dict")
    known = sorted({*_CORE, *_OWN})
    for key in raw:
        if key not in _CORE and key not in _OWN:
            raise _fail(key, f"unknown key; known keys: {', '.join(known)}")
    if not raw.get("KEY_PEPPER"):
        raise _fail("KEY_PEPPER", "required: a long server-side secret mixed into key hashes")

    database = raw.get("DATABASE", "default")
    if not isinstance(database, str) or not database:
        raise _fail("DATABASE", "a Django database alias (e.g. 'default') or a database URL")
    alias: str | None = None
    if "://" in database:
        if not database.startswith(("sqlite", "postgresql", "memory")):
            raise _fail(
                "DATABASE",
                f"unsupported URL scheme {database.split(':', 1)[0]!r}; use a Django alias,"
                " sqlite:///path.db or postgresql+psycopg://user@host/db",
            )
        url = database
    else:
        if database not in databases:
            raise _fail("DATABASE", f"no Django database {database!r} in settings.DATABASES")
        alias = database
        url = database_url(databases[database], key="DATABASE")

    values = {_CORE[k]: v for k, v in raw.items() if k in _CORE}
    try:
        core = Settings.resolve({}, database_url=url, **values)
    except BharatSendError as err:
        name = (err.field or "").upper()
        raise _fail(name if name in _CORE else "BHARATSEND", err.message) from None

    api_values = {field: raw[key] for key, field in _API.items() if key in raw}
    for key, field in _API.items():
        if field not in api_values or (
            field == "worker_heartbeat_max_age" and api_values[field] is None
        ):
            continue
        value = api_values[field]
        if field in _API_INTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise _fail(key, "must be a whole number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(key, "must be a number")
        if value < 0:
            raise _fail(key, "cannot be negative")
    api = ApiConfig(**api_values)

    routes = raw.get("ROUTES", ())
    if not isinstance(routes, Sequence) or isinstance(routes, str):
        raise _fail("ROUTES", "a list of route dicts (name, host, port, system_id, password, ...)")
    for index, route in enumerate(routes):
        if not isinstance(route, Mapping) or not route.get("name"):
            raise _fail("ROUTES", f"item {index} must be a dict with at least a 'name'")

    tenant = raw.get("DEFAULT_TENANT")
    if tenant is not None and (not isinstance(tenant, str) or not tenant.startswith("ten_")):
        raise _fail("DEFAULT_TENANT", "a tenant id (ten_…)")
    for key in ("OUTBOX", "MIGRATE_ON_MIGRATE"):
        if key in raw and not isinstance(raw[key], bool):
            raise _fail(key, "must be True or False")
    return DjangoSettings(
        core=core,
        api=api,
        database_alias=alias,
        routes=tuple(routes),
        outbox=bool(raw.get("OUTBOX", False)),
        migrate_on_migrate=bool(raw.get("MIGRATE_ON_MIGRATE", True)),
        default_tenant=tenant,
    )


def database_url(db: Mapping[str, Any], *, key: str = "DATABASE") -> str:
    """The SQLAlchemy URL of a Django ``DATABASES`` entry (SQLite or PostgreSQL)."""
    from sqlalchemy.engine import URL

    engine = str(db.get("ENGINE", ""))
    name = db.get("NAME")
    if engine.endswith("sqlite3"):
        text = str(name or "")
        if not text or text == ":memory:" or text.startswith("file:"):
            raise _fail(
                key,
                "an in-memory SQLite database cannot be shared with bharatsend-core's own"
                " connection; use a file (for tests set DATABASES[...]['TEST']['NAME'] to a"
                " file path) or give BHARATSEND['DATABASE'] a URL",
            )
        return f"sqlite:///{text}"
    if "postgresql" in engine:
        port = db.get("PORT")
        host = str(db.get("HOST") or "") or None
        query: dict[str, str] = {}
        if host is not None and host.startswith("/"):
            # A Unix socket directory goes in the query: in the authority part
            # "//user@/run/postgresql/db" would parse as a database named "run/...".
            query["host"], host = host, None
        options = db.get("OPTIONS") or {}
        for option, value in options.items():
            # libpq connection parameters (sslmode, options, ...) reach the core's
            # connections too; Django's own OPTIONS are not connection parameters.
            if option not in _DJANGO_PG_OPTIONS and isinstance(value, str | int):
                query[option] = str(value)
        return URL.create(
            "postgresql+psycopg",
            username=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=host,
            port=int(port) if port else None,
            database=str(name) if name else None,
            query=query,
        ).render_as_string(hide_password=False)
    raise _fail(key, f"{engine or 'this engine'} is not supported; use SQLite or PostgreSQL")
