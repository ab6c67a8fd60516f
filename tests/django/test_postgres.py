"""``BHARATSEND["DATABASE"] = "postgres"``: the core in Django's own PostgreSQL test database.

The test project defines the ``postgres`` alias only when
BHARATSEND_TEST_POSTGRES_URL is set; pytest-django then creates its test
database (``test_<name>_<random>``) for these tests, as Django always does,
and drops it after the run. Nothing is left on the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.test import Client, override_settings

import bharatsend_django
from bharatsend_django import runtime
from tests.api.conftest import OTP_TEMPLATE, PHONE, otp, seed_tenant

pytestmark = pytest.mark.postgres


@pytest.fixture
def on_postgres(postgres_url: str) -> Iterator[None]:
    """Django's ``postgres`` database is the core's; migrated by Django's ``migrate``."""
    del postgres_url  # only here to skip, with the standard reason, when it is not set
    with override_settings(BHARATSEND={**settings.BHARATSEND, "DATABASE": "postgres"}):
        try:
            # manage.py migrate --database postgres: post_migrate migrates the core there.
            call_command("migrate", database="postgres", verbosity=0)
            yield
        finally:
            runtime.reset()  # closes the core's connections: the test database can be dropped


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_the_core_lives_in_django_s_postgres_test_database(on_postgres: None) -> None:
    conf = runtime.config()
    django_db = connections["postgres"].settings_dict
    assert conf.database_alias == "postgres"
    assert django_db["NAME"].startswith("test_")  # the test database, not the real one
    assert conf.core.database_url.endswith(f"/{django_db['NAME']}")

    bs = bharatsend_django.facade()
    acme = seed_tenant(bs, "Acme")
    resp = Client().post(
        "/v1/sms/send",
        data={"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE},
        content_type="application/json",
        headers={"authorization": f"Bearer {acme.key}"},
    )
    assert resp.status_code == 200, resp.content
    message_id = resp.json()["data"]["id"]
    with connections["postgres"].cursor() as cursor:  # Django's own connection sees it
        cursor.execute("SELECT status FROM messages WHERE id = %s", [message_id])
        assert cursor.fetchone() == ("accepted",)
        cursor.execute("SELECT current_schema()")
        assert cursor.fetchone() == ("public",)  # of the test database, dropped after the run


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_send_sms_inside_an_atomic_block_is_fine_on_postgres(
    on_postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bs = bharatsend_django.facade()
    acme = seed_tenant(bs, "Acme")
    woken: list[float] = []
    monkeypatch.setattr(bs.storage, "wake_dispatch", lambda: woken.append(time.monotonic()))
    with transaction.atomic(using="postgres"):
        with connections["postgres"].cursor() as cursor:  # Django wrote first in the block
            cursor.execute("INSERT INTO django_content_type (app_label, model) VALUES ('a', 'b')")
        started = time.monotonic()
        result = bharatsend_django.send_sms(
            tenant_id=acme.tenant_id,
            phone_number=PHONE,
            content=otp(),
            dlt_template_id=OTP_TEMPLATE,
        )
        assert time.monotonic() - started < 2  # no lock wait: PostgreSQL has row locks
        assert woken == []  # the wake-up waits for the "postgres" block's commit
    assert len(woken) == 1
    assert bs.get_message(acme.tenant_id, result.id).status.value == "accepted"
