"""The PostgreSQL that storage tests use is reachable with the configured URL."""

from __future__ import annotations

import pytest


def test_configured_postgresql_answers_and_is_recent(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    assert url.get_backend_name() == "postgresql"
    assert url.get_driver_name() == "psycopg", "use the psycopg 3 driver: postgresql+psycopg://"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
    assert version is not None
    assert int(version[0]) >= 130000
