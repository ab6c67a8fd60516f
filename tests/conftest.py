"""Shared test configuration: hypothesis profiles and the PostgreSQL switch."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

POSTGRES_ENV = "BHARATSEND_TEST_POSTGRES_URL"

# No wall-clock deadlines: speed is measured in benchmarks/, never in tests.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL for integration tests, or skip saying how to enable them."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(
            f"PostgreSQL tests skipped: set {POSTGRES_ENV}"
            " (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run them"
        )
    return url


@pytest.fixture
def sql_storage_factory(
    request: pytest.FixtureRequest, tmp_path: os.PathLike[str]
) -> Iterator[Callable[[str], object]]:
    """Make a migrated SQL storage: ``"sqlite"`` (a file) or ``"postgres"`` (its own schema).

    Each PostgreSQL storage gets a fresh schema, dropped afterwards, so the suite
    can run twice in a row (or concurrently) on the same server.
    """
    import uuid
    from pathlib import Path

    from bharatsend_core.adapters.sqlalchemy import SqlStorage

    made: list[tuple[SqlStorage, str | None, str | None]] = []

    def make(kind: str) -> SqlStorage:
        if kind == "sqlite":
            url = f"sqlite:///{Path(tmp_path) / f'bs-{len(made)}.db'}"
            storage = SqlStorage.from_url(url)
            made.append((storage, None, None))
        elif kind == "postgres":
            base = request.getfixturevalue("postgres_url")
            schema = f"t_{uuid.uuid4().hex[:16]}"
            storage = SqlStorage.from_url(base, schema=schema)
            made.append((storage, base, schema))
        else:
            raise ValueError(kind)
        storage.migrate()
        return storage

    yield make
    for storage, base, schema in made:
        storage.close()
        if schema is not None and base is not None:
            import sqlalchemy as sa

            engine = sa.create_engine(base)
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
