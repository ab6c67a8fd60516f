"""The Django app end to end through Django's test client (smoke)."""

from __future__ import annotations

import pytest
from django.test import Client

import bharatsend_django


@pytest.mark.django_db(transaction=True)
def test_migrate_then_send_through_the_api() -> None:
    bs = bharatsend_django.facade()
    tenant = bs.create_tenant("Acme")
    key = bs.create_api_key(tenant.id, scopes=["sms:send", "sms:read"])
    bs.register_entity(tenant.id, pe_id="1201159123456789012")
    bs.register_header(tenant.id, "ACMEOT", category="transactional")
    bs.register_template(
        tenant.id,
        template_id="1207161234567890123",
        header="ACMEOT",
        category="transactional",
        body="Your OTP is {#var#}. Valid for 5 minutes.",
    )
    bs.top_up(tenant.id, paise=1000)
    client = Client()
    resp = client.post(
        "/v1/sms/send",
        data={
            "phone_number": "+919876543210",
            "content": "Your OTP is 482913. Valid for 5 minutes.",
            "dlt_template_id": "1207161234567890123",
        },
        content_type="application/json",
        headers={"authorization": f"Bearer {key.secret}"},
    )
    assert resp.status_code == 200, resp.content
    assert resp.json()["data"]["status"] == "accepted"
    assert client.get("/healthz").status_code == 200
