"""Fixtures for the Django app's tests (none is autouse).

The core's tables live in Django's test database file (``DATABASE: "default"``)
unless a test points ``BHARATSEND["DATABASE"]`` elsewhere; Django's flush
between transactional tests does not empty them, so every test makes its own
tenant and never counts rows it did not make.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

import bharatsend_django
from bharatsend_core import BharatSend
from bharatsend_django import runtime
from tests.api.conftest import Seeded, seed_tenant
from tests.contract.conftest import migrated_sqlite_template

__all__ = ["migrated_sqlite_template"]  # a migrated core database file each test may copy

Configure = Callable[..., BharatSend]


@pytest.fixture
def bharatsend_settings() -> Iterator[Configure]:
    """``configure(**keys)``: ``settings.BHARATSEND`` plus ``keys``, and its facade.

    Overrides through ``override_settings`` (the app rebuilds its facade on
    ``setting_changed``); undone, and the facade closed, after the test.
    """
    overrides: list[Any] = []

    def configure(**keys: Any) -> BharatSend:
        override = override_settings(BHARATSEND={**settings.BHARATSEND, **keys})
        override.enable()
        overrides.append(override)
        return bharatsend_django.facade()

    try:
        yield configure
    finally:
        for override in reversed(overrides):
            override.disable()
        runtime.reset()


@pytest.fixture
def own_sqlite_url(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    """The URL of a migrated SQLite file of the test's own (not Django's database)."""
    import shutil

    path = tmp_path / "core.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def bharatsend_outbox() -> Iterator[list[runtime.OutboxMessage]]:
    """``bharatsend_django.outbox``, empty at the start and emptied after the test."""
    bharatsend_django.clear_outbox()
    yield bharatsend_django.outbox
    bharatsend_django.clear_outbox()


@pytest.fixture
def seeded() -> Callable[..., Seeded]:
    """``seeded(name)``: a tenant ready to send, on the current facade."""

    def make(name: str = "Acme", **kwargs: Any) -> Seeded:
        return seed_tenant(bharatsend_django.facade(), name, **kwargs)

    return make
