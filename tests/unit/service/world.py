"""Builds a ready tenant for accept-path tests (shared by unit and integration tests)."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from bharatsend_core import BharatSend
from bharatsend_core.domain.dlt import IST
from bharatsend_core.testing import FakeClock

PEPPER = "a-test-pepper-of-sufficient-length"
PE_ID = "1201159123456789012"
OTP_TEMPLATE = "1207161234567890123"
OTP_BODY = "Your OTP is {#var#}. Valid for 5 minutes."
OTP_TEXT = "Your OTP is 482913. Valid for 5 minutes."
ORDER_TEMPLATE = "1207160000000000002"
ORDER_BODY = "Dear {#var#}, your order {#alphanumeric#} of Rs {#numeric#} is shipped. -ACME"
NOON_IST = datetime(2026, 11, 23, 12, 0, tzinfo=IST)


@frozen
class World:
    """The instance under test and the names of what it holds."""

    bs: BharatSend
    clock: FakeClock
    tenant_id: str


def make_world(bs: BharatSend, clock: FakeClock, *, credits: int = 10_000) -> World:
    tenant = bs.create_tenant("Acme")
    bs.register_entity(tenant.id, pe_id=PE_ID, name="Acme Pvt Ltd")
    bs.register_header(tenant.id, "ACMEOT", category="transactional")
    bs.register_template(
        tenant.id,
        template_id=OTP_TEMPLATE,
        header="ACMEOT",
        category="transactional",
        body=OTP_BODY,
    )
    bs.register_template(
        tenant.id,
        template_id=ORDER_TEMPLATE,
        header="ACMEOT",
        category="service_implicit",
        body=ORDER_BODY,
    )
    if credits:
        bs.top_up(tenant.id, paise=credits)
    return World(bs, clock, tenant.id)
