"""Tenants, API keys, the DLT registry and the ledger, through the facade."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bharatsend_core import BharatSend
from bharatsend_core.domain.errors import (
    AlreadyExists,
    ApiKeyNotFound,
    ConfigurationError,
    DltEntityUnknown,
    DltHeaderUnknown,
    DltRecordNotFound,
    DltTemplateMalformed,
    InsufficientCredits,
    InsufficientScope,
    InvalidApiKey,
    InvalidArgument,
    TransferConflict,
    TransferNotFound,
)
from bharatsend_core.domain.keys import KEY_ID_CHARS, Scope
from bharatsend_core.domain.ledger import TransferKind
from bharatsend_core.domain.message import Status
from bharatsend_core.domain.tenants import RateCard
from bharatsend_core.service.ledger import post_charge, refund_charge, void_charge
from bharatsend_core.testing import FakeClock, SequentialIds

from .world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, PE_ID, World, make_world

# ------------------------------------------------------------------------ API keys


def test_a_key_is_shown_once_and_stored_as_a_hash(world: World) -> None:
    issued = world.bs.create_api_key(world.tenant_id, scopes=["sms:send", "sms:read"])
    assert issued.secret.startswith(f"bs_live_{issued.key.id}_")
    assert len(issued.key.id) == KEY_ID_CHARS
    assert issued.secret not in repr(issued)
    stored = world.bs.list_api_keys(world.tenant_id)[0]
    assert issued.secret.rsplit("_", 1)[1] not in stored.secret_hash
    principal = world.bs.authenticate(issued.secret, "sms:send")
    assert principal.tenant.id == world.tenant_id
    assert principal.scopes == {Scope.SMS_SEND, Scope.SMS_READ}
    assert not principal.sandbox


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: "",
        lambda s: "Bearer " + s,
        lambda s: s[:-1] + ("a" if s[-1] != "a" else "b"),  # wrong secret
        lambda s: s.replace("bs_live_", "bs_test_"),  # wrong mode
        lambda s: s[:20] + "0" + s[21:],  # unknown key id
        lambda s: s + "x",
    ],
)
def test_every_bad_key_gets_the_same_answer(world: World, mangle: object) -> None:
    issued = world.bs.create_api_key(world.tenant_id, scopes=["sms:send"])
    with pytest.raises(InvalidApiKey) as info:
        world.bs.authenticate(mangle(issued.secret))  # type: ignore[operator]
    assert info.value.message == "the API key is missing or invalid"
    assert info.value.http_status == 401


def test_revoked_and_expired_keys_fail_like_any_other(world: World) -> None:
    revoked = world.bs.create_api_key(world.tenant_id, scopes=["sms:send"])
    expiring = world.bs.create_api_key(
        world.tenant_id, scopes=["sms:send"], expires_at=NOON_IST + timedelta(hours=1)
    )
    world.bs.revoke_api_key(world.tenant_id, revoked.key.id)
    with pytest.raises(InvalidApiKey):
        world.bs.authenticate(revoked.secret)
    assert world.bs.authenticate(expiring.secret)
    world.clock.advance(timedelta(hours=1))
    with pytest.raises(InvalidApiKey):
        world.bs.authenticate(expiring.secret)
    with pytest.raises(ApiKeyNotFound):
        world.bs.revoke_api_key(world.bs.create_tenant("Other").id, revoked.key.id)


def test_scopes_are_enforced(world: World) -> None:
    issued = world.bs.create_api_key(world.tenant_id, scopes=["sms:read"])
    with pytest.raises(InsufficientScope) as info:
        world.bs.authenticate(issued.secret, "sms:send")
    assert info.value.http_status == 403
    with pytest.raises(InvalidArgument):
        world.bs.create_api_key(world.tenant_id, scopes=["sms:everything"])
    with pytest.raises(InvalidArgument):
        world.bs.create_api_key(world.tenant_id, scopes=[])


def test_test_keys_are_sandbox_principals(world: World) -> None:
    issued = world.bs.create_api_key(world.tenant_id, scopes=["sms:send"], mode="test")
    assert issued.secret.startswith("bs_test_")
    assert world.bs.authenticate(issued.secret).sandbox


def test_last_used_is_recorded_at_most_once_a_minute(world: World) -> None:
    issued = world.bs.create_api_key(world.tenant_id, scopes=["sms:send"])
    world.bs.authenticate(issued.secret)
    first = world.bs.list_api_keys(world.tenant_id)[0].last_used_at
    assert first == NOON_IST
    world.clock.advance(30)
    world.bs.authenticate(issued.secret)
    assert world.bs.list_api_keys(world.tenant_id)[0].last_used_at == first
    world.clock.advance(31)
    world.bs.authenticate(issued.secret)
    assert world.bs.list_api_keys(world.tenant_id)[0].last_used_at == world.clock.now()


def test_keys_need_a_pepper() -> None:
    bs = BharatSend.in_memory()
    tenant = bs.create_tenant("Acme")
    with pytest.raises(ConfigurationError) as info:
        bs.create_api_key(tenant.id, scopes=["sms:send"])
    assert info.value.field == "key_pepper"


def test_a_key_made_under_one_pepper_fails_under_another(clock: FakeClock) -> None:
    bs = BharatSend.in_memory(clock=clock, key_pepper="first-pepper-0123456789")
    tenant = bs.create_tenant("Acme")
    issued = bs.create_api_key(tenant.id, scopes=["sms:send"])
    other = BharatSend(storage=bs.storage, settings=bs.settings.__class__.resolve(
        {}, key_pepper="second-pepper-0123456789", database_url="memory://"
    ), clock=clock)  # fmt: skip
    with pytest.raises(InvalidApiKey):
        other.authenticate(issued.secret)


# ------------------------------------------------------------------------ registry


def test_registry_records_need_their_parents(world: World) -> None:
    with pytest.raises(DltEntityUnknown):
        world.bs.register_header(
            world.tenant_id, "ACMEXX", category="transactional", entity_id="1" * 19
        )
    with pytest.raises(DltHeaderUnknown):
        world.bs.register_template(
            world.tenant_id,
            template_id="1207169999",
            header="NOPEXX",
            category="transactional",
            body="Your code is {#numeric#} ok",
        )
    with pytest.raises(AlreadyExists):
        world.bs.register_entity(world.tenant_id, PE_ID)
    with pytest.raises(DltTemplateMalformed):
        world.bs.register_template(
            world.tenant_id,
            template_id="1207169999",
            header="ACMEOT",
            category="transactional",
            body="Your code is {#Var#} ok",
        )


def test_template_updates_keep_history(world: World) -> None:
    updated = world.bs.update_template(
        world.tenant_id, OTP_TEMPLATE, body="Your OTP is {#numeric#}. Valid for 5 minutes."
    )
    assert updated.version == 2
    world.bs.deactivate_template(world.tenant_id, OTP_TEMPLATE)
    history = world.bs.template_history(world.tenant_id, OTP_TEMPLATE)
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.template.active for v in history] == [True, True, False]
    assert history[0].template.body == "Your OTP is {#var#}. Valid for 5 minutes."
    with pytest.raises(DltRecordNotFound):
        world.bs.update_template(world.tenant_id, "1", body="x {#var#}")


def test_registration_warnings_are_returned(world: World) -> None:
    registered = world.bs.register_template(
        world.tenant_id,
        template_id="1207160000000000123",
        header="ACMEOT",
        category="transactional",
        body="OTP  {#numeric#}",
    )
    assert {w.code for w in registered.warnings} == {
        "dlt_template_double_space",
        "dlt_template_too_short",
    }


def test_whitelists_feed_cta_checks(world: World) -> None:
    bs, tenant = world.bs, world.tenant_id
    bs.register_template(
        tenant,
        template_id="1207160000000000444",
        header="ACMEOT",
        category="service_implicit",
        body="Track your order at {#url#} -ACME",
    )
    text = "Track your order at https://acme.in/t/1 -ACME"
    with pytest.raises(Exception, match="whitelist"):
        bs.send(
            tenant, phone_number="9876543210", content=text, dlt_template_id="1207160000000000444"
        )
    assert bs.add_url_whitelist(tenant, "https://acme.in/t")
    assert not bs.add_url_whitelist(tenant, "https://acme.in/t")
    assert bs.send(
        tenant, phone_number="9876543210", content=text, dlt_template_id="1207160000000000444"
    )
    assert bs.add_callback_whitelist(tenant, "1800 123 4567")
    with pytest.raises(InvalidArgument):
        bs.add_callback_whitelist(tenant, "call me")


# ------------------------------------------------------------------------ ledger


def test_top_ups_with_a_reference_are_idempotent(world: World) -> None:
    world.bs.top_up(world.tenant_id, 500, reference="pay_1")
    world.bs.top_up(world.tenant_id, 500, reference="pay_1")
    assert world.bs.balance(world.tenant_id).available_paise == 10_500
    with pytest.raises(TransferConflict):
        world.bs.top_up(world.tenant_id, 600, reference="pay_1")
    with pytest.raises(InvalidArgument):
        world.bs.top_up(world.tenant_id, 0)
    with pytest.raises(InvalidArgument):
        world.bs.top_up(world.tenant_id, -5)


def test_statement_shows_the_running_available_balance(world: World) -> None:
    a = world.bs.send(world.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                      dlt_template_id=OTP_TEMPLATE)  # fmt: skip
    message = world.bs.get_message(world.tenant_id, a.id)
    with world.bs.storage.unit_of_work() as uow:
        void_charge(uow, message, world.clock.now())
        uow.commit()
    lines = world.bs.statement(world.tenant_id).lines
    assert [(line.transfer.kind, line.delta, line.balance_after) for line in lines] == [
        (TransferKind.TOP_UP, 10_000, 10_000),
        (TransferKind.RESERVE, -25, 9_975),
        (TransferKind.VOID, 25, 10_000),
    ]
    page = world.bs.statement(world.tenant_id, limit=2)
    assert len(page.lines) == 2
    assert page.next_cursor is not None
    rest = world.bs.statement(world.tenant_id, after=page.next_cursor)
    assert [line.transfer.kind for line in rest.lines] == [TransferKind.VOID]
    assert rest.next_cursor is None


def test_post_void_refund_phases_are_idempotent_and_reconcile(world: World) -> None:
    sent = world.bs.send(world.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                         dlt_template_id=OTP_TEMPLATE)  # fmt: skip
    from bharatsend_core.domain.message import Claim, PartSubmitted

    now = world.clock.now()
    message = world.bs.get_message(world.tenant_id, sent.id)
    message = message.apply(Claim(now, "sandbox")).apply(PartSubmitted(now, 0, "c-1"))
    with world.bs.storage.unit_of_work() as uow:
        uow.messages.update(message)
        post_charge(uow, message, now)
        post_charge(uow, message, now)  # a replay
        with pytest.raises(TransferConflict):
            void_charge(uow, message, now)  # already settled
        uow.commit()
    balance = world.bs.balance(world.tenant_id)
    assert (balance.available_paise, balance.posted_paise, balance.reserved_paise) == (
        9_975,
        9_975,
        0,
    )
    with world.bs.storage.unit_of_work() as uow:
        refund_charge(uow, message, now)
        uow.commit()
    assert world.bs.balance(world.tenant_id).available_paise == 10_000
    report = world.bs.reconcile()
    assert report.ok, report.problems
    assert (report.messages, report.transfers) == (1, 4)


def test_settling_a_message_without_a_reservation_is_refused(world: World) -> None:
    sent = world.bs.send(world.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                         dlt_template_id=OTP_TEMPLATE)  # fmt: skip
    message = world.bs.get_message(world.tenant_id, sent.id)
    with world.bs.storage.unit_of_work() as uow, pytest.raises(TransferNotFound):
        refund_charge(uow, message, world.clock.now())


def test_reconcile_finds_a_final_message_with_a_pending_reservation(world: World) -> None:
    sent = world.bs.send(world.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                         dlt_template_id=OTP_TEMPLATE)  # fmt: skip
    message = world.bs.get_message(world.tenant_id, sent.id)
    from bharatsend_core.domain.message import Expire

    expired = message.apply(Expire(message.expires_at))
    with world.bs.storage.unit_of_work() as uow:
        uow.messages.update(expired)
        uow.commit()
    report = world.bs.reconcile(world.tenant_id)
    assert not report.ok
    assert any("still pending" in p for p in report.problems)
    with world.bs.storage.unit_of_work() as uow:
        void_charge(uow, expired, world.clock.now())
        uow.commit()
    assert world.bs.reconcile(world.tenant_id).ok
    assert world.bs.get_message(world.tenant_id, sent.id).status is Status.FAILED


def test_rates_by_category_and_route(world: World) -> None:
    rates = RateCard(
        default=20, by_category={"transactional": 30}, by_route={("transactional", "premium"): 45}
    )
    world.bs.set_rates(world.tenant_id, rates)
    sent = world.bs.send(world.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                         dlt_template_id=OTP_TEMPLATE)  # fmt: skip
    assert sent.message.price_paise == 45  # reserved at the dearest route
    assert rates.price(sent.message.category, 1, "premium") == 45  # type: ignore[arg-type]
    assert rates.price("transactional", 2) == 60  # type: ignore[arg-type]
    assert RateCard.from_dict(rates.to_dict()) == rates


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["send", "post", "void", "refund", "top"]),
                          st.integers(0, 5)), max_size=25))  # fmt: skip
def test_any_sequence_of_charges_reconciles(ops: list[tuple[str, int]]) -> None:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper="p" * 20)
    w = make_world(bs, clock, credits=200)
    sent: list[str] = []
    for op, n in ops:
        if op == "send":
            if bs.balance(w.tenant_id).available_paise < 25:
                with pytest.raises(InsufficientCredits):
                    bs.send(w.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                            dlt_template_id=OTP_TEMPLATE)  # fmt: skip
                continue
            sent.append(bs.send(w.tenant_id, phone_number="9876543210", content=OTP_TEXT,
                                dlt_template_id=OTP_TEMPLATE).id)  # fmt: skip
        elif op == "top":
            bs.top_up(w.tenant_id, 10 * (n + 1))
        elif sent:
            message = bs.get_message(w.tenant_id, sent[n % len(sent)])
            with bs.storage.unit_of_work() as uow:
                fn = {"post": post_charge, "void": void_charge, "refund": refund_charge}[op]
                try:
                    fn(uow, message, clock.now())
                    uow.commit()
                except (TransferConflict, TransferNotFound):
                    pass
        balance = bs.balance(w.tenant_id)
        assert balance.available_paise >= 0
    report = bs.reconcile()
    # Every message is still 'accepted', so settled ones count as problems; the books still balance.
    assert not any("sum to" in p or "stored totals" in p for p in report.problems)


# ------------------------------------------------------------------------ CSV import

CSV = (
    "Template ID,Template Content,Header,Template Type,Content Type,Status,Entity ID\n"
    f'1207160000000000501,"Your login code is {{#numeric#}}, valid 5 min. -ACME",ACMEOT,'
    f"Transactional,Text,Approved,{PE_ID}\n"
    f'1207160000000000502,"Hi {{#var#}}, your ticket {{#alphanumeric#}} is booked. -ACME",'
    f"ACMENW,Service Implicit,Text,Approved,{PE_ID}\n"
    f'1207160000000000503,"Rejected one {{#var#}} here",ACMEOT,Transactional,Text,'
    f"Rejected,{PE_ID}\n"
)


def test_csv_import_registers_everything_in_one_go_and_is_repeatable(world: World) -> None:
    report = world.bs.import_dlt_csv(world.tenant_id, CSV)
    assert report.created == ("1207160000000000501", "1207160000000000502")
    assert report.headers_created == ("ACMENW",)
    assert [n.template_id for n in report.skipped] == ["1207160000000000503"]
    sent = world.bs.send(world.tenant_id, phone_number="9876543210",
                         content="Hi Anil, your ticket PNR42 is booked. -ACME",
                         dlt_template_id="1207160000000000502")  # fmt: skip
    assert sent.message.header == "ACMENW"
    again = world.bs.import_dlt_csv(world.tenant_id, CSV)
    assert again.created == ()
    assert again.unchanged == ("1207160000000000501", "1207160000000000502")
    changed = CSV.replace("valid 5 min", "valid 10 min")
    assert world.bs.import_dlt_csv(world.tenant_id, changed).updated == ("1207160000000000501",)
    assert len(world.bs.template_history(world.tenant_id, "1207160000000000501")) == 2


def test_a_csv_with_one_bad_row_imports_nothing(world: World) -> None:
    bad = CSV.replace("1207160000000000502", "1.20716E+18")
    with pytest.raises(Exception) as info:
        world.bs.import_dlt_csv(world.tenant_id, bad)
    assert getattr(info.value, "code", None) == "dlt_csv_invalid"
    assert info.value.detail["errors"][0]["line"] == 3  # type: ignore[attr-defined]
    with pytest.raises(DltRecordNotFound):
        world.bs.get_template(world.tenant_id, "1207160000000000501")
