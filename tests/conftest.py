"""Shared test configuration: hypothesis profiles and the PostgreSQL switch."""

from __future__ import annotations

import os

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
