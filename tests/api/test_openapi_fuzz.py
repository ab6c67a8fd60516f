"""Schemathesis against the served OpenAPI document: no 5xx, and every answer as documented.

The schema is loaded from ``/v1/openapi.json`` through the WSGI interface
(``ApiApp.wsgi``), which also validates it as OpenAPI 3.1; every operation is
then called with generated requests carrying a live key with every scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bharatsend_core import BharatSend
from bharatsend_core.http import ApiApp, ApiConfig
from bharatsend_core.ports.storage import Heartbeat

from .conftest import PEPPER, seed_tenant

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture
def fuzz_app(tmp_path: Path) -> Iterator[tuple[ApiApp, str]]:
    """The API on a SQLite file with one seeded tenant, and its all-scopes live key."""
    bs = BharatSend.from_url(
        f"sqlite:///{tmp_path / 'fuzz.db'}",
        environ={},
        key_pepper=PEPPER,
        webhooks_allow_private=True,
    )
    bs.migrate()
    seeded = seed_tenant(bs, "Fuzz Co")
    # A worker "alive" for the whole run, so /readyz answers 200 (its 503 is tested elsewhere).
    now = datetime.now(UTC)
    with bs.storage.unit_of_work() as uow:
        uow.heartbeats.beat(Heartbeat("fuzz:1:w", "worker", now, now + timedelta(hours=1)))
        uow.commit()
    yield ApiApp(bs, ApiConfig(key_rate=0)), seeded.key
    bs.close()


@pytest.fixture
def api_schema(fuzz_app: tuple[ApiApp, str]) -> Any:
    app, _key = fuzz_app
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", app.wsgi)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any, fuzz_app: tuple[ApiApp, str]) -> None:
    _app, key = fuzz_app
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
