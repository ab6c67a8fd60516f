"""``bharatsend_django.send_sms``, the worker wake-up on commit, and outbox mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import OperationalError, connection, transaction
from django.test import Client

import bharatsend_django
from bharatsend_core.adapters.sqlalchemy import storage as sql_storage
from bharatsend_core.domain.errors import (
    ConfigurationError,
    DltTemplateUnknown,
    InvalidArgument,
    InvalidPhoneNumber,
    StorageUnavailable,
    TenantNotFound,
)
from bharatsend_django import runtime
from tests.api.conftest import OTP_TEMPLATE, PHONE, Seeded, otp

from .conftest import Configure

Seed = Callable[..., Seeded]


def send(**fields: Any) -> Any:
    body = {"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE}
    return bharatsend_django.send_sms(**{**body, **fields})


def spy_wake(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the facade's worker wake-ups (send_sms schedules one per message)."""
    calls: list[float] = []
    storage = bharatsend_django.facade().storage
    monkeypatch.setattr(storage, "wake_dispatch", lambda: calls.append(time.monotonic()))
    return calls


@pytest.mark.django_db(transaction=True)
def test_send_sms_with_a_tenant_id_and_with_the_default_tenant(
    bharatsend_settings: Configure, seeded: Seed
) -> None:
    acme = seeded("Acme")
    result = send(tenant_id=acme.tenant_id, client_message_id="order-1", metadata={"o": 1})
    assert result.status == "accepted"
    message = bharatsend_django.facade().get_message(acme.tenant_id, result.id)
    assert (message.phone, message.client_message_id) == (PHONE, "order-1")

    with pytest.raises(InvalidArgument, match="DEFAULT_TENANT") as info:
        send()
    assert info.value.field == "tenant_id"

    bharatsend_settings(DEFAULT_TENANT=acme.tenant_id)
    by_default = send(content=otp("111111"))
    assert by_default.message.tenant_id == acme.tenant_id
    globex = seeded("Globex")
    assert send(tenant_id=globex.tenant_id).message.tenant_id == globex.tenant_id


@pytest.mark.django_db(transaction=True)
def test_errors_come_back_typed(seeded: Seed) -> None:
    acme = seeded("Acme")
    with pytest.raises(DltTemplateUnknown) as info:
        send(tenant_id=acme.tenant_id, dlt_template_id="1207160000000099999")
    assert info.value.field == "dlt_template_id"
    with pytest.raises(InvalidPhoneNumber) as bad_phone:
        send(tenant_id=acme.tenant_id, phone_number="12")
    assert bad_phone.value.field == "phone_number"
    with pytest.raises(TenantNotFound):
        send(tenant_id="ten_doesnotexist")


@pytest.mark.django_db(transaction=True)
def test_the_worker_is_woken_only_when_the_atomic_block_commits(
    bharatsend_settings: Configure, own_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its own database the core may be called inside an atomic block of Django's."""
    bs = bharatsend_settings(DATABASE=own_sqlite_url)
    acme = seeded_on(bs)
    woken = spy_wake(monkeypatch)
    send(tenant_id=acme.tenant_id)
    assert len(woken) == 1  # autocommit: at once

    with transaction.atomic():
        ContentType.objects.get_for_model(ContentType)  # Django's own work in the block
        inside = send(tenant_id=acme.tenant_id, content=otp("222222"))
        assert len(woken) == 1  # not yet: the request's transaction may still roll back
        # The core committed at once, on its own connection: the message is queued.
        assert bs.get_message(acme.tenant_id, inside.id).status.value == "accepted"
    assert len(woken) == 2

    def rolled_back() -> None:
        with transaction.atomic():
            send(tenant_id=acme.tenant_id, content=otp("333333"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert len(woken) == 2  # no wake-up for a rolled-back block (the message stays queued)


@pytest.mark.django_db
def test_on_commit_callbacks_can_be_captured(
    bharatsend_settings: Configure,
    own_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """In a plain ``django_db`` test (one atomic block) the wake-up is an on_commit callback."""
    bs = bharatsend_settings(DATABASE=own_sqlite_url)
    acme = seeded_on(bs)
    woken = spy_wake(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send(tenant_id=acme.tenant_id)
        assert woken == []
    assert len(callbacks) == 1
    assert len(woken) == 1


def seeded_on(bs: Any) -> Seeded:
    from tests.api.conftest import seed_tenant

    return seed_tenant(bs, "Acme")


# --------------------------------------------------------------------------- shared SQLite file


@pytest.mark.django_db(transaction=True)
def test_send_sms_in_an_atomic_block_on_the_shared_sqlite_file_fails_at_once(
    seeded: Seed,
) -> None:
    """The core shares Django's SQLite file: inside an atomic block send_sms refuses at once.

    (What would happen otherwise is shown by the two tests below.)
    """
    acme = seeded("Acme")
    assert runtime.config().database_alias == "default"

    def in_block(wrote_first: bool) -> None:
        with transaction.atomic():
            if wrote_first:
                ContentType.objects.create(app_label="shop", model=f"order{time.time_ns()}")
            send(tenant_id=acme.tenant_id)

    for wrote_first in (True, False):
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as info:
            in_block(wrote_first)
        assert time.monotonic() - started < 1.0
        assert info.value.field == "DATABASE"
        assert "outside the atomic block" in info.value.message
        assert "BHARATSEND['DATABASE'] its own URL" in info.value.message
    assert send(tenant_id=acme.tenant_id).status == "accepted"  # outside: fine
    page = bharatsend_django.facade().list_messages(acme.tenant_id)
    assert len(page.messages) == 1  # nothing was queued by the refused calls


@pytest.mark.django_db(transaction=True)
def test_without_the_check_a_write_waits_for_django_s_lock_then_fails(
    seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why send_sms refuses: Django's block holds SQLite's only write lock until it ends."""
    monkeypatch.setattr(sql_storage, "SQLITE_BUSY_TIMEOUT_MS", 300)  # not the real 5 s
    runtime.reset()
    acme = seeded("Acme")
    bs = bharatsend_django.facade()

    def in_block() -> None:
        with transaction.atomic():
            ContentType.objects.create(app_label="shop", model="order")
            bs.send(acme.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE)

    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        in_block()
    assert 0.3 <= time.monotonic() - started < 3  # it waited out the busy timeout
    runtime.reset()


@pytest.mark.django_db(transaction=True)
def test_without_the_check_a_read_only_block_breaks_django_s_next_write(seeded: Seed) -> None:
    """A block that only read holds a WAL snapshot the core's commit makes stale."""
    acme = seeded("Acme")
    bs = bharatsend_django.facade()
    sent: list[str] = []

    def in_block() -> None:
        with transaction.atomic():
            ContentType.objects.count()  # the block's snapshot starts here
            sent.append(
                bs.send(
                    acme.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE
                ).id
            )
            ContentType.objects.create(app_label="shop", model="order")  # cannot: stale snapshot

    assert connection.vendor == "sqlite"
    with pytest.raises(OperationalError, match="locked"):
        in_block()
    assert len(sent) == 1  # the core's send itself went through (and stays committed)
    assert bs.get_message(acme.tenant_id, sent[0]).status.value == "accepted"


# --------------------------------------------------------------------------- outbox


@pytest.mark.django_db(transaction=True)
def test_outbox_captures_send_sms_and_api_sends(
    bharatsend_settings: Configure,
    bharatsend_outbox: list[runtime.OutboxMessage],
    seeded: Seed,
) -> None:
    bharatsend_settings(OUTBOX=True)
    acme = seeded("Acme")
    result = send(tenant_id=acme.tenant_id, client_message_id="c-1", metadata={"order": "A1"})
    [captured] = bharatsend_outbox
    assert captured.id == result.id
    assert captured.content == otp()
    assert (captured.tenant_id, captured.phone_number) == (acme.tenant_id, PHONE)
    assert (captured.dlt_template_id, captured.client_message_id) == (OTP_TEMPLATE, "c-1")
    assert captured.metadata == {"order": "A1"}
    assert captured.sandbox is False
    assert otp() not in repr(captured)  # the text stays out of logs and reprs

    resp = Client().post(
        "/v1/sms/send",
        data={"phone_number": PHONE, "content": otp("654321"), "dlt_template_id": OTP_TEMPLATE},
        content_type="application/json",
        headers={"authorization": f"Bearer {acme.test_key}"},
    )
    assert resp.status_code == 200, resp.content
    assert len(bharatsend_outbox) == 2
    assert bharatsend_outbox[1].id == resp.json()["data"]["id"]
    assert bharatsend_outbox[1].content == otp("654321")
    assert bharatsend_outbox[1].sandbox is True

    send(tenant_id=acme.tenant_id, client_message_id="c-1", metadata={"order": "A1"})
    assert len(bharatsend_outbox) == 2  # a replay accepts nothing new

    assert bharatsend_django.outbox is runtime.outbox is bharatsend_outbox
    bharatsend_django.clear_outbox()
    assert bharatsend_outbox == []
    assert bharatsend_django.outbox is bharatsend_outbox  # cleared in place


@pytest.mark.django_db(transaction=True)
def test_without_outbox_mode_nothing_is_captured(
    bharatsend_outbox: list[runtime.OutboxMessage], seeded: Seed
) -> None:
    assert runtime.config().outbox is False
    send(tenant_id=seeded("Acme").tenant_id)
    assert bharatsend_outbox == []
