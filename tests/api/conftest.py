"""One API suite, several integrations: the same cases through ``ApiApp.handle`` and Flask.

Every test talks to the API through :class:`Api.request`, which hides how the
request reaches the application, so a Django leg only needs one more client
class and one more fixture param. The data a test needs (two tenants with DLT
records, credits and keys) is built through the facade, once per test.

Backends: ``core`` (``ApiApp.handle`` on a SQLite file), ``flask`` (the Flask
test client, configured only through ``BHARATSEND_*`` config keys, on a SQLite
file), ``flask-postgres`` (the Flask test client on an isolated PostgreSQL
schema from ``sql_storage_factory``), ``django`` (Django's test client through
``bharatsend_django.urls`` of the test project, configured only through
``override_settings(BHARATSEND=...)``, whose ``DATABASE`` is the URL of a
SQLite file of the test's own) and ``django-postgres`` (the same, with a
PostgreSQL URL whose ``options`` put the connections in a fresh schema). The
PostgreSQL legs are skipped unless BHARATSEND_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import json as jsonlib
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import attrs
import pytest

from bharatsend_core import BharatSend
from bharatsend_core.config import Settings
from bharatsend_core.http import ApiApp, ApiConfig, ApiRequest
from tests.contract.conftest import migrated_sqlite_template

__all__ = ["migrated_sqlite_template"]  # a migrated file each test copies (~1 ms, not ~70)

PEPPER = "an-api-test-pepper-of-sufficient-length"
PE_ID = "1201159123456789012"
HEADER = "ACMEOT"
OTP_TEMPLATE = "1207161234567890123"
OTP_BODY = "Your OTP is {#var#}. Valid for 5 minutes."
ORDER_TEMPLATE = "1207160000000000002"
ORDER_BODY = "Dear {#var#}, your order {#alphanumeric#} of Rs {#numeric#} is shipped. -ACME"
#: A template only the other tenant has (for isolation probes).
OTHER_TEMPLATE = "1207169999999999999"
PHONE = "+919876543210"
ALL_SCOPES = (
    "sms:send",
    "sms:read",
    "templates:write",
    "webhooks:write",
    "keys:admin",
    "balance:read",
)
#: Generous enough that no test trips the per-number limit by accident.
DEFAULT_NUMBER_LIMIT = 1000

BACKENDS = [
    "core",
    "flask",
    pytest.param("flask-postgres", marks=pytest.mark.postgres),
    "django",
    pytest.param("django-postgres", marks=pytest.mark.postgres),
]


def otp(code: str = "482913") -> str:
    """A text matching the OTP template."""
    return f"Your OTP is {code}. Valid for 5 minutes."


class _Default:
    """The ``key=`` default: the tenant's live key with every scope."""

    def __repr__(self) -> str:
        return "ADMIN"


ADMIN: Any = _Default()


class Headers:
    """Response headers with a case-insensitive ``get``."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._items = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self._items if k.lower() == lowered), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


@attrs.frozen
class Resp:
    """What a test sees of a response, whichever integration answered."""

    status: int
    headers: Headers
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of an error response."""
        data: dict[str, Any] = self.json()["error"]
        return data

    @property
    def data(self) -> Any:
        """The ``data`` of a success response."""
        return self.json()["data"]


class Transport(Protocol):
    """Sends one fully built request to the application."""

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: str
    ) -> Resp: ...


def core_transport(app: ApiApp) -> Transport:
    """Requests straight into ``ApiApp.handle``."""

    def send(method: str, path: str, headers: dict[str, str], body: bytes, query: str) -> Resp:
        answer = app.handle(ApiRequest(method, path, headers, body, query))
        return Resp(answer.status, Headers(answer.headers), answer.body)

    return send


def flask_transport(flask_app: Any, prefix: str = "") -> Transport:
    """Requests through Flask's test client."""
    client = flask_app.test_client()

    def send(method: str, path: str, headers: dict[str, str], body: bytes, query: str) -> Resp:
        answer = client.open(
            prefix + path, method=method, headers=headers, data=body, query_string=query
        )
        return Resp(answer.status_code, Headers(list(answer.headers.items())), answer.get_data())

    return send


def django_transport() -> Transport:
    """Requests through Django's test client, to the test project's URLconf.

    The WSGI environ is built here rather than by ``Client.generic``, which
    would add a Content-Type to every request with a body: the suite needs
    requests without one, as a plain HTTP client sends them.
    """
    from django.http.request import HttpHeaders
    from django.test import Client
    from django.test.client import FakePayload

    client = Client()

    def send(method: str, path: str, headers: dict[str, str], body: bytes, query: str) -> Resp:
        environ: dict[str, Any] = {
            "PATH_INFO": client._get_path(urlsplit(path)),
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            **HttpHeaders.to_wsgi_names(headers),
        }
        if body:
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = FakePayload(body)
        answer = client.request(**environ)
        return Resp(answer.status_code, Headers(list(answer.headers.items())), answer.content)

    return send


def _django_settings(
    db_url: str, api: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """``settings.BHARATSEND`` for a leg: core settings and API limits, upper-cased."""
    return {
        "KEY_PEPPER": PEPPER,
        "DATABASE": db_url,
        **{name.upper(): value for name, value in settings.items()},
        **{name.upper(): value for name, value in api.items()},
    }


def _postgres_schema_url(base: str, schema: str) -> str:
    """``base`` with libpq ``options`` that put every connection's tables in ``schema``."""
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


def _run_sql(url: str, statement: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(statement)
    engine.dispose()


@attrs.frozen
class Seeded:
    """A tenant made through the facade: its id and keys."""

    tenant_id: str
    #: Live key with every scope.
    key: str
    key_id: str
    #: Test (sandbox) key with every scope.
    test_key: str
    #: Live key with ``sms:read`` only.
    read_key: str


@attrs.define
class Api:
    """The application under test, a facade onto its storage and a client for it."""

    backend: str
    bs: BharatSend
    transport: Transport
    main: Seeded
    other: Seeded

    @property
    def tenant_id(self) -> str:
        return self.main.tenant_id

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | str | None = None,
        key: str | None = ADMIN,
    ) -> Resp:
        """Send one request; ``key=None`` sends no Authorization header."""
        sent: dict[str, str] = dict(headers or {})
        names = {n.lower() for n in sent}
        if key is ADMIN:
            key = self.main.key
        if key is not None and "authorization" not in names:
            sent["Authorization"] = f"Bearer {key}"
        raw = b""
        if json is not None:
            raw = jsonlib.dumps(json).encode()
            if "content-type" not in names:
                sent["Content-Type"] = "application/json"
        elif body is not None:
            raw = body.encode() if isinstance(body, str) else body
        if isinstance(query, Mapping):
            query = urlencode(query, doseq=True)
        return self.transport(method.upper(), path, sent, raw, query or "")

    def get(self, path: str, **kwargs: Any) -> Resp:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Resp:
        return self.request("POST", path, json=json, **kwargs)

    def send(self, key: str | None = ADMIN, **fields: Any) -> Resp:
        """POST /v1/sms/send with a valid OTP message, overridden by ``fields``."""
        body = {"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE}
        body.update(fields)
        return self.request("POST", "/v1/sms/send", json=body, key=key)

    def seed(self, name: str, *, credits: int = 10_000, extra_template: bool = False) -> Seeded:
        """A tenant with an entity, a header, two templates, credits and three keys."""
        return seed_tenant(self.bs, name, credits=credits, extra_template=extra_template)


def seed_tenant(
    bs: BharatSend, name: str, *, credits: int = 10_000, extra_template: bool = False
) -> Seeded:
    """A tenant ready to send, built through the facade like the README does."""
    tenant = bs.create_tenant(name)
    bs.register_entity(tenant.id, pe_id=PE_ID, name=f"{name} Pvt Ltd")
    bs.register_header(tenant.id, HEADER, category="transactional")
    bs.register_template(
        tenant.id, template_id=OTP_TEMPLATE, header=HEADER, category="transactional", body=OTP_BODY
    )
    bs.register_template(
        tenant.id,
        template_id=ORDER_TEMPLATE,
        header=HEADER,
        category="service_implicit",
        body=ORDER_BODY,
    )
    if extra_template:
        bs.register_template(
            tenant.id,
            template_id=OTHER_TEMPLATE,
            header=HEADER,
            category="transactional",
            body="Your code is {#var#}. Do not share it.",
        )
    if credits:
        bs.top_up(tenant.id, paise=credits)
    live = bs.create_api_key(tenant.id, scopes=ALL_SCOPES, name="admin")
    test = bs.create_api_key(tenant.id, scopes=ALL_SCOPES, mode="test", name="sandbox")
    read = bs.create_api_key(tenant.id, scopes=["sms:read"], name="reader")
    return Seeded(tenant.id, live.secret, live.key.id, test.secret, read.secret)


ApiFactory = Callable[..., Api]


def _flask_config(db_url: str | None, api: Mapping[str, Any], settings: Mapping[str, Any]) -> Any:
    from flask import Flask

    app = Flask("bharatsend_api_tests")
    app.config["TESTING"] = True
    if db_url is not None:
        app.config["BHARATSEND_DATABASE_URL"] = db_url
        app.config["BHARATSEND_KEY_PEPPER"] = PEPPER
        for name, value in settings.items():
            app.config[f"BHARATSEND_{name.upper()}"] = value
    for name, value in api.items():
        app.config[f"BHARATSEND_{name.upper()}"] = value
    return app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which integration (and database) the test runs against."""
    return str(request.param)


@pytest.fixture
def api_factory(
    backend: str,
    tmp_path: Path,
    migrated_sqlite_template: Path,
    sql_storage_factory: Callable[[str], Any],
    request: pytest.FixtureRequest,
) -> Iterator[ApiFactory]:
    """Build an :class:`Api` with API limits and core settings of the test's choosing.

    ``key_rate``/``key_burst``/``max_body_bytes`` go to the API config (the
    per-key limiter is off unless asked for); anything else is a core setting.
    """
    made: list[BharatSend] = []
    overrides: list[Any] = []  # Django's override_settings, undone in reverse order
    schemas: list[str] = []  # PostgreSQL schemas of the Django leg, dropped afterwards

    def make(
        *,
        key_rate: float = 0.0,
        key_burst: int = 200,
        max_body_bytes: int | None = None,
        **settings: Any,
    ) -> Api:
        settings.setdefault("webhooks_allow_private", True)
        settings.setdefault("number_limit", DEFAULT_NUMBER_LIMIT)
        limits: dict[str, Any] = {"key_rate": key_rate, "key_burst": key_burst}
        if max_body_bytes is not None:
            limits["max_body_bytes"] = max_body_bytes
        db_path = tmp_path / f"api-{len(made)}.db"
        if not backend.endswith("-postgres"):
            shutil.copyfile(migrated_sqlite_template, db_path)
        db_url = f"sqlite:///{db_path}"
        transport: Transport
        if backend == "core":
            bs = BharatSend.from_url(db_url, environ={}, key_pepper=PEPPER, **settings)
            bs.migrate()  # already at head: cheap, and what an app does on start
            transport = core_transport(ApiApp(bs, ApiConfig(**limits)))
        elif backend == "flask":
            from bharatsend_flask import BharatSend as FlaskBharatSend
            from bharatsend_flask import facade

            flask_app = _flask_config(db_url, limits, settings)
            FlaskBharatSend(flask_app)
            bs = facade(flask_app)
            bs.migrate()
            transport = flask_transport(flask_app)
        elif backend == "flask-postgres":
            from bharatsend_flask import BharatSend as FlaskBharatSend

            storage = sql_storage_factory("postgres")  # migrated, own schema, dropped after
            resolved = Settings.resolve({}, key_pepper=PEPPER, **settings)
            bs = BharatSend(storage=storage, settings=resolved)
            flask_app = _flask_config(None, limits, {})
            FlaskBharatSend(flask_app, facade=bs)
            transport = flask_transport(flask_app)
        elif backend in ("django", "django-postgres"):
            from django.test import override_settings

            from bharatsend_django import runtime

            if backend == "django-postgres":
                base: str = request.getfixturevalue("postgres_url")
                schema = f"dj_{uuid.uuid4().hex[:16]}"
                _run_sql(base, f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                db_url = _postgres_schema_url(base, schema)
            override = override_settings(BHARATSEND=_django_settings(db_url, limits, settings))
            override.enable()  # setting_changed: the app forgets the previous facade
            overrides.append(override)
            bs = runtime.facade()
            bs.migrate()  # what post_migrate does for manage.py migrate
            transport = django_transport()
        else:  # pragma: no cover
            raise ValueError(backend)
        made.append(bs)
        main = seed_tenant(bs, "Acme")
        other = seed_tenant(bs, "Globex", extra_template=True)
        return Api(backend, bs, transport, main, other)

    try:
        yield make
    finally:
        for bs in made:
            bs.close()
        for override in reversed(overrides):
            override.disable()
        if overrides:
            from bharatsend_django import runtime

            runtime.reset()
        for schema in schemas:
            _run_sql(request.getfixturevalue("postgres_url"), f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def api(api_factory: ApiFactory) -> Api:
    """The API with default limits, two seeded tenants and their keys."""
    return api_factory()
