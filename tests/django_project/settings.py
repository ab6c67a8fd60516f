"""The minimal Django project the integration tests run (what docs/django.md tells users)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_DIR = Path(os.environ.get("BHARATSEND_DJANGO_TEST_DIR") or tempfile.mkdtemp(prefix="bsdj-"))

SECRET_KEY = "django-insecure-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.django_project.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "bharatsend_django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_DIR / "app.db"),
        # A file, not Django's in-memory test database: the core has its own connection.
        "TEST": {"NAME": str(_DIR / "test_app.db")},
    }
}
BHARATSEND = {
    "KEY_PEPPER": "a-django-test-pepper-of-sufficient-length",
    "WEBHOOKS_ALLOW_PRIVATE": True,
    "NUMBER_LIMIT": 1000,
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# With BHARATSEND_TEST_POSTGRES_URL set, a second alias on that server: only the
# tests that ask for it (tests/django/test_postgres.py) get its test database,
# which pytest-django creates as Django always does and drops after the run.
_POSTGRES_URL = os.environ.get("BHARATSEND_TEST_POSTGRES_URL", "").strip()
if _POSTGRES_URL:
    import uuid

    from sqlalchemy.engine import make_url

    _pg = make_url(_POSTGRES_URL)
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.database or "postgres",
        "USER": _pg.username or "",
        "PASSWORD": _pg.password or "",
        "HOST": _pg.host or "",
        "PORT": str(_pg.port or ""),
        # test_<name>, made unique so that runs sharing the server never clobber
        # each other's test database.
        "TEST": {"NAME": f"test_{_pg.database or 'postgres'}_{uuid.uuid4().hex[:8]}"},
    }
