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
