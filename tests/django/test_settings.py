"""``settings.BHARATSEND`` validation: every mistake is ImproperlyConfigured naming its key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from sqlalchemy.engine import make_url

from bharatsend_django import conf, runtime

PEPPER = "a-django-test-pepper-of-sufficient-length"
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app/db.sqlite3"}
DATABASES: dict[str, dict[str, Any]] = {"default": SQLITE}


def load(**keys: Any) -> conf.DjangoSettings:
    return conf.load({"KEY_PEPPER": PEPPER, **keys}, DATABASES)


def refused(match: str, raw: Any, databases: Any = None) -> str:
    with pytest.raises(ImproperlyConfigured, match=match) as info:
        conf.load(raw, DATABASES if databases is None else databases)
    return str(info.value)


def test_a_minimal_dict_uses_the_default_database() -> None:
    loaded = load()
    assert loaded.database_alias == "default"
    assert loaded.core.database_url == "sqlite:////srv/app/db.sqlite3"
    assert loaded.core.key_pepper == PEPPER.encode()
    assert loaded.outbox is False
    assert loaded.migrate_on_migrate is True
    assert loaded.routes == ()
    assert loaded.default_tenant is None


def test_every_kind_of_key_is_applied() -> None:
    loaded = load(
        DATABASE="postgresql+psycopg://u@db/sms",
        NUMBER_LIMIT=7,
        KEY_RATE=5,
        KEY_BURST=9,
        MAX_BODY_BYTES=4096,
        WORKER_HEARTBEAT_MAX_AGE=None,
        ROUTES=[{"name": "primary", "host": "smsc"}],
        OUTBOX=True,
        MIGRATE_ON_MIGRATE=False,
        DEFAULT_TENANT="ten_abc",
    )
    assert loaded.database_alias is None
    assert loaded.core.database_url == "postgresql+psycopg://u@db/sms"
    assert loaded.core.number_limit == 7
    assert (loaded.api.key_rate, loaded.api.key_burst, loaded.api.max_body_bytes) == (5, 9, 4096)
    assert loaded.api.worker_heartbeat_max_age is None
    assert loaded.routes == ({"name": "primary", "host": "smsc"},)
    assert (loaded.outbox, loaded.migrate_on_migrate) == (True, False)
    assert loaded.default_tenant == "ten_abc"


def test_missing_bharatsend() -> None:
    message = refused("settings.BHARATSEND is missing", None)
    assert "KEY_PEPPER" in message


def test_not_a_dict() -> None:
    refused("must be a dict", [("KEY_PEPPER", PEPPER)])


def test_unknown_key_is_named_with_the_known_ones() -> None:
    raw = {"KEY_PEPPER": PEPPER, "NUMBER_LIMT": 3}
    message = refused(r"BHARATSEND\['NUMBER_LIMT'\]: unknown key", raw)
    assert "NUMBER_LIMIT" in message
    assert "DEFAULT_TENANT" in message


@pytest.mark.parametrize("pepper", [None, ""])
def test_key_pepper_is_required(pepper: Any) -> None:
    raw = {} if pepper is None else {"KEY_PEPPER": pepper}
    refused(r"BHARATSEND\['KEY_PEPPER'\]: required", raw)


def test_a_short_key_pepper_names_key_pepper() -> None:
    refused(r"BHARATSEND\['KEY_PEPPER'\]", {"KEY_PEPPER": "short"})


@pytest.mark.parametrize("database", ["replica", "", 3])
def test_bad_database_alias(database: Any) -> None:
    refused(r"BHARATSEND\['DATABASE'\]", {"KEY_PEPPER": PEPPER, "DATABASE": database})


def test_unknown_alias_says_which() -> None:
    message = refused("no Django database 'replica'", {"KEY_PEPPER": PEPPER, "DATABASE": "replica"})
    assert "settings.DATABASES" in message


@pytest.mark.parametrize("name", [":memory:", "", "file:memorydb_default?mode=memory&cache=shared"])
def test_in_memory_sqlite_is_refused_with_the_way_out(name: str) -> None:
    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name}}
    message = refused(r"BHARATSEND\['DATABASE'\]: an in-memory SQLite", {"KEY_PEPPER": PEPPER},
                      databases)  # fmt: skip
    assert "['TEST']['NAME']" in message
    assert "URL" in message


def test_unsupported_engine() -> None:
    databases = {"default": {"ENGINE": "django.db.backends.mysql", "NAME": "app"}}
    message = refused(r"BHARATSEND\['DATABASE'\]", {"KEY_PEPPER": PEPPER}, databases)
    assert "django.db.backends.mysql is not supported" in message


def test_unsupported_database_url() -> None:
    message = refused(r"BHARATSEND\['DATABASE'\]: unsupported URL scheme 'mysql'",
                      {"KEY_PEPPER": PEPPER, "DATABASE": "mysql://x/y"})  # fmt: skip
    assert "sqlite:///" in message


@pytest.mark.parametrize(
    "routes", ["primary", {"name": "primary"}, [{"host": "smsc"}], ["primary"], [{"name": ""}]]
)
def test_bad_routes(routes: Any) -> None:
    refused(r"BHARATSEND\['ROUTES'\]", {"KEY_PEPPER": PEPPER, "ROUTES": routes})


@pytest.mark.parametrize("key", ["OUTBOX", "MIGRATE_ON_MIGRATE"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_switches_must_be_bool(key: str, value: Any) -> None:
    refused(rf"BHARATSEND\['{key}'\]: must be True or False", {"KEY_PEPPER": PEPPER, key: value})


@pytest.mark.parametrize("tenant", ["acme", "", 5, "TEN_abc"])
def test_default_tenant_must_be_a_tenant_id(tenant: Any) -> None:
    refused(r"BHARATSEND\['DEFAULT_TENANT'\]", {"KEY_PEPPER": PEPPER, "DEFAULT_TENANT": tenant})


@pytest.mark.parametrize(
    ("key", "value"),
    [("NUMBER_LIMIT", -1), ("NUMBER_LIMIT", "ten"), ("WEBHOOKS_ALLOW_PRIVATE", "maybe")],
)
def test_a_bad_core_setting_is_named(key: str, value: Any) -> None:
    refused(rf"BHARATSEND\['{key}'\]", {"KEY_PEPPER": PEPPER, key: value})


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("KEY_RATE", -1, "cannot be negative"),
        ("KEY_RATE", "fast", "must be a number"),
        ("KEY_RATE", None, "must be a number"),
        ("KEY_RATE", True, "must be a number"),
        ("KEY_BURST", 2.5, "must be a whole number"),
        ("MAX_BODY_BYTES", "2MB", "must be a whole number"),
        ("MAX_BODY_BYTES", -5, "cannot be negative"),
        ("KEY_CACHE_SECONDS", [], "must be a number"),
        ("WORKER_HEARTBEAT_MAX_AGE", "30s", "must be a number"),
    ],
)
def test_bad_api_limit_is_named(key: str, value: Any, why: str) -> None:
    refused(rf"BHARATSEND\['{key}'\]: {why}", {"KEY_PEPPER": PEPPER, key: value})


def test_the_apps_settings_are_checked_through_django_settings(settings: Any) -> None:
    """``runtime.config()`` reads ``settings.BHARATSEND`` (AppConfig.ready calls it at start)."""
    try:
        del settings.BHARATSEND  # (no setting_changed for a deletion)
        runtime.reset()
        with pytest.raises(ImproperlyConfigured, match=r"settings\.BHARATSEND is missing"):
            runtime.config()
        settings.BHARATSEND = {"KEY_PEPPER": PEPPER, "OUTBOX": "on"}
        with pytest.raises(ImproperlyConfigured, match=r"BHARATSEND\['OUTBOX'\]"):
            runtime.config()
        settings.BHARATSEND = {"KEY_PEPPER": PEPPER, "OUTBOX": True}
        assert runtime.config().outbox is True  # setting_changed dropped the cached config
    finally:
        runtime.reset()


# --------------------------------------------------------------------------- database_url


def test_sqlite_database_url() -> None:
    assert conf.database_url(SQLITE) == "sqlite:////srv/app/db.sqlite3"
    relative = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    assert conf.database_url(relative) == "sqlite:///db.sqlite3"


def test_postgresql_database_url_carries_every_connection_field() -> None:
    url = conf.database_url(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "shop",
            "USER": "app",
            "PASSWORD": "p@ss:/w?rd",
            "HOST": "db.internal",
            "PORT": "6432",
        }
    )
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.password) == ("app", "p@ss:/w?rd")
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 6432, "shop")


def test_postgresql_database_url_leaves_out_what_is_not_set() -> None:
    url = conf.database_url(
        {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "", "PASSWORD": "",
         "HOST": "", "PORT": ""}
    )  # fmt: skip
    assert url == "postgresql+psycopg:///shop"


def test_postgresql_unix_socket_host_and_libpq_options() -> None:
    url = conf.database_url(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "shop",
            "USER": "app",
            "HOST": "/var/run/postgresql",
            "PORT": 5433,
            "OPTIONS": {"sslmode": "require", "isolation_level": 2, "pool": True},
        }
    )
    parsed = make_url(url)
    assert parsed.database == "shop"  # not "var/run/postgresql/shop"
    assert parsed.host is None
    assert parsed.port == 5433
    assert dict(parsed.query) == {"host": "/var/run/postgresql", "sslmode": "require"}


def test_database_url_names_the_key_it_was_given() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"BHARATSEND\['X'\]"):
        conf.database_url({"ENGINE": "django.db.backends.oracle", "NAME": "x"}, key="X")
