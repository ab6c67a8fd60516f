"""``python manage.py migrate`` is all a user runs: the core's tables come with Django's."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps as django_apps

from bharatsend_core.adapters.sqlalchemy.storage import VERSION_TABLE
from bharatsend_django import apps, runtime

from .conftest import Configure

ROOT = Path(__file__).resolve().parents[2]


def run_migrate(tmp_path: Path, settings_module: str = "tests.django_project.settings") -> None:
    """``django-admin migrate`` in a fresh process, on a fresh database file in ``tmp_path``."""
    env = {
        **os.environ,
        "BHARATSEND_DJANGO_TEST_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    env.pop("BHARATSEND_TEST_POSTGRES_URL", None)  # the SQLite project only
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--settings", settings_module, "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_manage_py_migrate_creates_the_core_tables(tmp_path: Path) -> None:
    run_migrate(tmp_path)
    made = tables(tmp_path / "app.db")
    assert "django_content_type" in made  # Django's own
    assert {"tenants", "messages", "dispatch_queue", "webhook_outbox"} <= made
    assert VERSION_TABLE in made  # the core's own Alembic history, beside django_migrations
    run_migrate(tmp_path)  # again: idempotent, like Django's own migrations
    assert tables(tmp_path / "app.db") == made


def test_migrate_on_migrate_false_leaves_the_core_alone(tmp_path: Path) -> None:
    (tmp_path / "nomigrate_settings.py").write_text(
        "from tests.django_project.settings import *  # noqa: F403\n"
        "BHARATSEND = {**BHARATSEND, 'MIGRATE_ON_MIGRATE': False}  # noqa: F405\n"
    )
    run_migrate(tmp_path, "nomigrate_settings")
    made = tables(tmp_path / "app.db")
    assert "django_content_type" in made
    assert not {"tenants", "messages"} & made


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record facades the post_migrate handler migrates (by their database URL)."""
    from bharatsend_core import BharatSend

    done: list[str] = []

    def migrate(self: BharatSend) -> None:
        done.append(self.settings.database_url)

    monkeypatch.setattr(BharatSend, "migrate", migrate)
    return done


def test_post_migrate_migrates_only_the_core_s_database(
    bharatsend_settings: Configure, migrations: list[str]
) -> None:
    sender = django_apps.get_app_config("bharatsend")
    apps._migrate_core(sender, using="default")
    assert migrations == [runtime.config().core.database_url]
    apps._migrate_core(sender, using="other")  # another database of the project
    assert len(migrations) == 1

    bharatsend_settings(DATABASE="sqlite:///elsewhere.db")  # a URL: with "default"'s migrate
    apps._migrate_core(sender, using="default")
    assert migrations[-1] == "sqlite:///elsewhere.db"
    apps._migrate_core(sender, using="other")
    assert len(migrations) == 2


def test_post_migrate_refreshes_the_facade_even_without_migrating(
    bharatsend_settings: Configure, migrations: list[str]
) -> None:
    """The test runner switches NAME to the test database before its migrate."""
    from django.conf import settings

    before = bharatsend_settings(MIGRATE_ON_MIGRATE=False)
    original = settings.DATABASES["default"]
    # What create_test_db does: it edits the dict in place (no setting_changed).
    settings.DATABASES["default"] = {**original, "NAME": str(Path("elsewhere") / "test.db")}
    try:
        apps._migrate_core(django_apps.get_app_config("bharatsend"), using="default")
        assert migrations == []
        after = runtime.facade()
        assert after is not before
        assert after.settings.database_url.endswith("elsewhere/test.db")
    finally:
        settings.DATABASES["default"] = original
        runtime.reset()
