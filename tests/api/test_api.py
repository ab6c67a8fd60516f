"""The v1 HTTP API, end to end, through every integration (see conftest.py for the legs).

Every endpoint of the operations table in ``bharatsend_core.http.api`` is
called here with valid input and with the errors it documents; the error
bodies are checked against the published OpenAPI schema too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any

import attrs
import jsonschema
import pytest

from bharatsend_core.adapters.memory.webhook_transport import MemoryTransport
from bharatsend_core.http import ApiApp
from bharatsend_core.ports.storage import Heartbeat

from .conftest import (
    ALL_SCOPES,
    HEADER,
    ORDER_TEMPLATE,
    OTHER_TEMPLATE,
    OTP_TEMPLATE,
    PE_ID,
    PHONE,
    Api,
    ApiFactory,
    Resp,
    otp,
)

ORDER_TEXT = "Dear Ravi, your order AB12 of Rs 499 is shipped. -ACME"
HOOK_URL = "http://127.0.0.1:9/hooks/sms"
CSV_HEAD = (
    "PE ID,Template ID,Template Name,Template Type,Content Type,Header,Template Content,Status\n"
)
NEW_TEMPLATE = "1207161111111111111"
NEW_TEMPLATE_2 = "1207162222222222222"


# --------------------------------------------------------------------------- helpers


def ok(resp: Resp, status: int = 200) -> Any:
    """The ``data`` of a response that must have ``status``."""
    assert resp.status == status, resp.body
    return resp.data


def err(
    resp: Resp, status: int, code: str, field: str | EllipsisType | None = ...
) -> dict[str, Any]:
    """The error of a response that must be ``status``/``code`` (and ``field``, if given)."""
    assert resp.status == status, resp.body
    assert resp.headers.get("content-type", "").startswith("application/json")
    error = resp.error
    assert error["code"] == code, error
    if field is not ...:
        assert error["field"] == field, error
    _conforms_to_error_schema(resp)
    return error


_SCHEMA: dict[str, Any] = {}


def _conforms_to_error_schema(resp: Resp) -> None:
    """Every error body matches the documented ``ErrorBody`` schema."""
    if not _SCHEMA:
        from bharatsend_core.http.openapi import openapi_document

        _SCHEMA.update(openapi_document([]))  # the error schemas do not depend on operations
    schema = {"$ref": "#/components/schemas/ErrorBody", "components": _SCHEMA["components"]}
    jsonschema.validate(resp.json(), schema)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def send_order(api: Api, **fields: Any) -> Resp:
    body = {
        "phone_number": "+919812345678",
        "content": ORDER_TEXT,
        "dlt_template_id": ORDER_TEMPLATE,
        **fields,
    }
    return api.post("/v1/sms/send", body)


def all_pages(api: Api, path: str, limit: int, **query: Any) -> tuple[list[Any], int]:
    """Follow ``next_cursor`` to the end; the items and the number of pages."""
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        q = {**query, "limit": limit}
        if cursor is not None:
            q["cursor"] = cursor
        body = api.get(path, query=q).json()
        pages += 1
        assert len(body["data"]) <= limit
        items += body["data"]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return items, pages
        assert body["next_cursor"]
        cursor = body["next_cursor"]
        assert pages < 50


def expire_key(api: Api, key_id: str) -> None:
    """Move a key's expiry into the past (the API refuses to issue expired keys)."""
    with api.bs.storage.unit_of_work() as uow:
        key = uow.keys.get(key_id)
        assert key is not None
        uow.keys.update(attrs.evolve(key, expires_at=datetime.now(UTC) - timedelta(seconds=5)))
        uow.commit()


def key_id_of(secret: str) -> str:
    return secret.split("_")[2]


# --------------------------------------------------------------------------- sending


def test_send_accepts_reserves_and_get_returns_parts_and_timeline(api: Api) -> None:
    data = ok(api.send(client_message_id="order-4821", metadata={"order": 4821}))
    assert data["status"] == "accepted"
    assert data["client_message_id"] == "order-4821"
    assert data["segments"] == 1
    assert data["price_paise"] == 25
    message = ok(api.get(f"/v1/sms/{data['id']}"))
    assert message["id"] == data["id"]
    assert message["phone_number"] == PHONE
    assert message["header"] == HEADER
    assert message["dlt_template_id"] == OTP_TEMPLATE
    assert message["metadata"] == {"order": 4821}
    assert message["sandbox"] is False
    assert len(message["parts"]) == 1
    assert [t["kind"] for t in message["timeline"]] == ["accepted"]
    balance = ok(api.get("/v1/balance"))
    assert balance == {"available_paise": 9975, "posted_paise": 10000, "reserved_paise": 25}


def test_replaying_a_client_message_id_returns_the_original(api: Api) -> None:
    first = api.send(client_message_id="retry-1")
    assert first.status == 200
    assert first.headers.get("Idempotent-Replayed") is None
    again = api.send(client_message_id="retry-1")
    assert again.status == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.data["id"] == first.data["id"]
    assert ok(api.get("/v1/balance"))["reserved_paise"] == 25  # charged once


def test_same_client_message_id_with_other_content_is_a_409(api: Api) -> None:
    ok(api.send(client_message_id="dup-1"))
    err(api.send(client_message_id="dup-1", content=otp("111111")), 409, "idempotency_conflict")


def test_idempotency_key_header_replays_and_must_agree_with_the_body(api: Api) -> None:
    body = {"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE}
    headers = {"Idempotency-Key": "idem-7"}
    first = api.post("/v1/sms/send", body, headers=headers)
    assert ok(first)["client_message_id"] == "idem-7"
    again = api.post("/v1/sms/send", body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.data["id"] == first.data["id"]
    same = api.post("/v1/sms/send", {**body, "client_message_id": "idem-7"}, headers=headers)
    assert same.data["id"] == first.data["id"]
    differ = api.post("/v1/sms/send", {**body, "client_message_id": "other"}, headers=headers)
    err(differ, 422, "invalid_argument", "client_message_id")
    too_long = api.post("/v1/sms/send", body, headers={"Idempotency-Key": "x" * 65})
    err(too_long, 422, "invalid_argument", "idempotency-key")


def test_insufficient_credits_is_a_402_and_writes_nothing(api: Api) -> None:
    poor = api.seed("Poor Co", credits=0)
    err(api.send(key=poor.key), 402, "insufficient_credits")
    listing = api.get("/v1/sms", key=poor.key).json()
    assert listing["data"] == []


def test_batch_reports_each_item(api: Api) -> None:
    good = {"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE}
    bad = {**good, "content": "not the template"}
    data = ok(api.post("/v1/sms/batch", {"messages": [good, bad, {**good, "priority": 5}]}))
    assert (data["accepted"], data["rejected"]) == (2, 1)
    assert [i["index"] for i in data["items"]] == [0, 1, 2]
    assert data["items"][0]["data"]["status"] == "accepted"
    assert data["items"][1]["data"] is None
    assert data["items"][1]["error"]["code"] == "dlt_template_mismatch"
    assert data["items"][1]["error"]["field"] == "content"
    aborted = ok(api.post("/v1/sms/batch", {"messages": [good, bad], "all_or_nothing": True}))
    assert (aborted["accepted"], aborted["rejected"]) == (0, 2)
    assert [i["error"]["code"] for i in aborted["items"]] == [
        "batch_aborted",
        "dlt_template_mismatch",
    ]
    assert len(api.get("/v1/sms").json()["data"]) == 2  # nothing more was accepted
    err(api.post("/v1/sms/batch", {"messages": []}), 422, "invalid_argument", "messages")
    nested = api.post("/v1/sms/batch", {"messages": [good, {**good, "priority": "high"}]})
    err(nested, 422, "invalid_argument", "messages[1].priority")


def test_estimate_prices_and_checks_without_sending(api: Api) -> None:
    data = ok(api.post("/v1/sms/estimate", {"content": otp(), "dlt_template_id": OTP_TEMPLATE}))
    assert data["dlt_ok"] is True
    assert data["dlt_error"] is None
    assert (data["segments"], data["encoding"], data["price_paise"]) == (1, "gsm7", 25)
    bad = ok(api.post("/v1/sms/estimate", {"content": "nope", "dlt_template_id": OTP_TEMPLATE}))
    assert bad["dlt_ok"] is False
    assert bad["dlt_error"]["code"] == "dlt_template_mismatch"
    assert api.get("/v1/sms").json()["data"] == []
    assert ok(api.get("/v1/balance"))["reserved_paise"] == 0


def test_test_keys_send_sandbox_messages(api: Api) -> None:
    sandboxed = ok(api.send(key=api.main.test_key))
    live = ok(api.send())
    assert ok(api.get(f"/v1/sms/{sandboxed['id']}"))["sandbox"] is True
    assert ok(api.get(f"/v1/sms/{live['id']}"))["sandbox"] is False


# --------------------------------------------------------------------------- listing


def test_list_filters_and_paginates(api: Api) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    otps = [ok(api.send(client_message_id=f"c{i}", content=otp(f"10000{i}"))) for i in range(3)]
    orders = [ok(send_order(api)) for _ in range(2)]
    api.bs.send(  # the other tenant's message is never listed
        api.other.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE
    )
    newest_first = [m["id"] for m in reversed(otps + orders)]

    everything = api.get("/v1/sms").json()
    assert [m["id"] for m in everything["data"]] == newest_first
    assert everything["has_more"] is False
    assert everything["next_cursor"] is None
    assert all(m["timeline"] is None for m in everything["data"])

    def ids(**query: Any) -> list[str]:
        resp = api.get("/v1/sms", query=query)
        assert resp.status == 200, resp.body
        return [m["id"] for m in resp.data]

    assert ids(status="accepted") == newest_first
    assert ids(status="delivered") == []
    assert ids(phone_number=PHONE) == [m["id"] for m in reversed(otps)]
    assert ids(client_message_id="c1") == [otps[1]["id"]]
    assert ids(dlt_template_id=ORDER_TEMPLATE) == [m["id"] for m in reversed(orders)]
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert ids(created_from=iso(before), created_to=iso(later)) == newest_first
    assert ids(created_from=iso(later)) == []
    assert ids(created_to=iso(before)) == []
    assert ids(created_from="2020-01-01T05:30:00+05:30", status="accepted") == newest_first
    assert ids(status="accepted", dlt_template_id=OTP_TEMPLATE, client_message_id="c2") == [
        otps[2]["id"]
    ]

    paged, pages = all_pages(api, "/v1/sms", 2)
    assert [m["id"] for m in paged] == newest_first
    assert pages == 3
    filtered, pages = all_pages(api, "/v1/sms", 2, dlt_template_id=OTP_TEMPLATE)
    assert [m["id"] for m in filtered] == [m["id"] for m in reversed(otps)]
    assert pages == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-01-01T00:00:00"}, "created_to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
        ("limit=1&limit=2", "limit"),
    ],
)
def test_list_rejects_bad_queries(api: Api, query: Any, field: str) -> None:
    err(api.get("/v1/sms", query=query), 422, "invalid_argument", field)


def test_ledger_pages_oldest_first(api: Api) -> None:
    for paise in (100, 200, 300):
        api.bs.top_up(api.tenant_id, paise=paise)
    for i in range(3):
        ok(api.send(content=otp(f"20000{i}")))
    full = api.get("/v1/ledger", query={"limit": 500}).json()
    assert full["has_more"] is False
    lines = full["data"]
    assert len(lines) == 7
    assert [line["kind"] for line in lines[:4]] == ["top_up"] * 4
    assert lines[-1]["balance_after_paise"] == ok(api.get("/v1/balance"))["available_paise"]
    paged, pages = all_pages(api, "/v1/ledger", 3)
    assert paged == lines
    assert pages == 3
    err(api.get("/v1/ledger", query={"cursor": "abc"}), 422, "invalid_argument", "cursor")
    err(api.get("/v1/ledger", query={"limit": "501"}), 422, "invalid_argument", "limit")


# --------------------------------------------------------------------------- DLT registry


def test_entities_and_headers_create_and_list(api: Api) -> None:
    assert ok(api.get("/v1/dlt/entities")) == [{"pe_id": PE_ID, "name": "Acme Pvt Ltd"}]
    created = ok(api.post("/v1/dlt/entities", {"pe_id": "1201000000000000001"}), 201)
    assert created == {"pe_id": "1201000000000000001", "name": ""}
    assert len(ok(api.get("/v1/dlt/entities"))) == 2
    err(api.post("/v1/dlt/entities", {"pe_id": "12-34"}), 422, "invalid_argument", "pe_id")

    header = ok(
        api.post(
            "/v1/dlt/headers",
            {"sender_id": "ACMEBK", "category": "transactional", "entity_id": PE_ID},
        ),
        201,
    )
    assert header == {
        "sender_id": "ACMEBK",
        "entity_id": PE_ID,
        "category": "transactional",
        "active": True,
    }
    assert {h["sender_id"] for h in ok(api.get("/v1/dlt/headers"))} == {HEADER, "ACMEBK"}
    unknown = api.post(
        "/v1/dlt/headers",
        {"sender_id": "ACMEZZ", "category": "transactional", "entity_id": "1201999999999999999"},
    )
    err(unknown, 422, "dlt_entity_unknown", "entity_id")


def test_templates_create_list_get_patch(api: Api) -> None:
    body = {
        "template_id": NEW_TEMPLATE,
        "body": "Your login code is {#var#}. -ACME",
        "category": "transactional",
        "headers": [HEADER],
        "name": "login",
    }
    created = ok(api.post("/v1/dlt/templates", body), 201)
    assert created["template_id"] == NEW_TEMPLATE
    assert created["headers"] == [HEADER]
    assert created["active"] is True
    assert isinstance(created["version"], int)
    listed = {t["template_id"] for t in ok(api.get("/v1/dlt/templates"))}
    assert listed == {OTP_TEMPLATE, ORDER_TEMPLATE, NEW_TEMPLATE}
    got = ok(api.get(f"/v1/dlt/templates/{NEW_TEMPLATE}"))
    assert got["body"] == body["body"]
    assert got["warnings"] is None

    patched = ok(api.request("PATCH", f"/v1/dlt/templates/{NEW_TEMPLATE}", json={"active": False}))
    assert patched["active"] is False
    assert patched["version"] > created["version"]
    sent = api.send(content="Your login code is 1234. -ACME", dlt_template_id=NEW_TEMPLATE)
    err(sent, 422, "dlt_template_inactive", "dlt_template_id")
    ok(api.request("PATCH", f"/v1/dlt/templates/{NEW_TEMPLATE}", json={"active": True}))
    ok(api.send(content="Your login code is 1234. -ACME", dlt_template_id=NEW_TEMPLATE))

    err(api.post("/v1/dlt/templates", body), 409, "already_exists", "dlt_template_id")
    missing = api.get("/v1/dlt/templates/1207000000000000009")
    err(missing, 404, "dlt_record_not_found", "dlt_template_id")
    patch_unknown = api.request("PATCH", "/v1/dlt/templates/1207000000000000009", json={})
    err(patch_unknown, 404, "dlt_record_not_found", "dlt_template_id")
    bad_patch = api.request("PATCH", f"/v1/dlt/templates/{NEW_TEMPLATE}", json={"body": ""})
    err(bad_patch, 422, "invalid_argument", "body")


def test_csv_import_is_all_or_nothing(api: Api) -> None:
    good = (
        CSV_HEAD
        + f"{PE_ID},{NEW_TEMPLATE},login,Text,Transactional,{HEADER},"
        + '"Your login code is {#var#}. -ACME",Approved\n'
        + f"{PE_ID},{NEW_TEMPLATE_2},ship,Text,Service Implicit,{HEADER},"
        + '"Order {#alphanumeric#} shipped. -ACME",Approved\n'
    )
    data = ok(api.post("/v1/dlt/import", body=good, headers={"Content-Type": "text/csv"}))
    assert sorted(data["created"]) == [NEW_TEMPLATE, NEW_TEMPLATE_2]
    assert data["updated"] == []
    again = ok(api.post("/v1/dlt/import", body=good, headers={"Content-Type": "text/csv"}))
    assert sorted(again["unchanged"]) == [NEW_TEMPLATE, NEW_TEMPLATE_2]

    before = ok(api.get("/v1/dlt/templates"))
    bad = (
        CSV_HEAD
        + f"{PE_ID},1207163333333333333,ok,Text,Transactional,{HEADER},"
        + '"Fine {#var#} text. -ACME",Approved\n'
        + f"{PE_ID},not-an-id,broken,Text,Transactional,{HEADER},"
        + '"Broken {#var#}",Approved\n'
    )
    resp = api.post("/v1/dlt/import", body=bad, headers={"Content-Type": "text/csv"})
    err(resp, 422, "dlt_csv_invalid")
    assert ok(api.get("/v1/dlt/templates")) == before
    wrong_media = api.post("/v1/dlt/import", body=good, headers={"Content-Type": "image/png"})
    err(wrong_media, 415, "unsupported_media_type", "content-type")


def test_dlt_errors_name_their_code_and_field(api: Api) -> None:
    unknown = api.send(dlt_template_id="1207000000000000001")
    err(unknown, 422, "dlt_template_unknown", "dlt_template_id")
    err(api.send(content="Your OTP is"), 422, "dlt_template_mismatch", "content")
    err(api.send(header="NOSUCH"), 422, "dlt_header_unknown", "header")


# --------------------------------------------------------------------------- webhooks


def test_webhook_lifecycle_deliveries_attempts_and_replay(api: Api) -> None:
    created = ok(api.post("/v1/webhooks", {"url": HOOK_URL, "events": ["sms.*"]}), 201)
    hook = created["id"]
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True
    listed = ok(api.get("/v1/webhooks"))
    assert [h["id"] for h in listed] == [hook]
    assert listed[0]["secret"] is None

    disabled = ok(api.request("DELETE", f"/v1/webhooks/{hook}"))
    assert disabled["enabled"] is False
    assert ok(api.get("/v1/webhooks"))[0]["enabled"] is False  # history kept
    assert ok(api.post(f"/v1/webhooks/{hook}/enable"))["enabled"] is True
    rotated = ok(api.post(f"/v1/webhooks/{hook}/rotate-secret", {"overlap_seconds": 60}))
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    ok(api.post(f"/v1/webhooks/{hook}/rotate-secret", {}))  # default overlap
    bad_overlap = api.post(f"/v1/webhooks/{hook}/rotate-secret", {"overlap_seconds": -1})
    err(bad_overlap, 422, "invalid_argument", "overlap_seconds")

    message = ok(api.send())
    [pending] = ok(api.get("/v1/webhook-deliveries"))
    assert pending["endpoint_id"] == hook
    assert pending["event_type"] == "sms.accepted"
    assert pending["state"] == "pending"
    event_id = pending["event_id"]
    assert ok(api.get("/v1/webhook-deliveries", query={"state": "delivered"})) == []

    transport = MemoryTransport()
    assert api.bs.webhook_deliverer(transport=transport, owner="api-test").run_once() == 1
    assert message["id"].encode() in transport.posted[0].body
    [delivered] = ok(api.get("/v1/webhook-deliveries", query={"state": "delivered"}))
    assert delivered["attempts"] == 1
    [attempt] = ok(api.get(f"/v1/webhooks/{hook}/attempts", query={"event_id": event_id}))
    assert attempt["number"] == 1
    assert attempt["status"] == 200

    replay = ok(api.post(f"/v1/webhooks/{hook}/replay", {"event_id": event_id}))
    assert replay == {"event_id": event_id, "endpoint_id": hook, "queued": True}
    assert ok(api.get("/v1/webhook-deliveries", query={"state": "pending"}))[0]["event_id"] == (
        event_id
    )
    err(
        api.post(f"/v1/webhooks/{hook}/replay", {"event_id": "evt_unknown"}),
        404,
        "webhook_endpoint_not_found",
        "event_id",
    )
    err(
        api.get(f"/v1/webhooks/{hook}/attempts"), 422, "invalid_argument", "event_id"
    )  # event_id is required
    err(
        api.get("/v1/webhook-deliveries", query={"state": "lost"}),
        422,
        "invalid_argument",
        "state",
    )


def test_webhook_urls_are_checked(api: Api) -> None:
    err(api.post("/v1/webhooks", {"url": "ftp://example.com/x"}), 422, "webhook_url_forbidden")
    err(
        api.post("/v1/webhooks", {"url": HOOK_URL, "events": []}), 422, "invalid_argument", "events"
    )


def test_private_webhook_urls_need_the_setting(api_factory: ApiFactory) -> None:
    api = api_factory(webhooks_allow_private=False)
    err(api.post("/v1/webhooks", {"url": HOOK_URL}), 422, "webhook_url_forbidden")


# --------------------------------------------------------------------------- keys


def test_keys_create_list_revoke(api: Api) -> None:
    created = ok(api.post("/v1/keys", {"scopes": ["sms:read"], "name": "ci"}), 201)
    assert created["key"].startswith("bs_live_")
    assert created["scopes"] == ["sms:read"]
    assert created["mode"] == "live"
    ok(api.get("/v1/sms", key=created["key"]))
    listed = ok(api.get("/v1/keys"))
    assert created["id"] in {k["id"] for k in listed}
    assert all(k["key"] is None for k in listed)
    revoked = ok(api.request("DELETE", f"/v1/keys/{created['id']}"))
    assert revoked["revoked_at"] is not None
    err(api.get("/v1/sms", key=created["key"]), 401, "invalid_api_key")

    later = iso(datetime.now(UTC) + timedelta(days=1))
    expiring = ok(api.post("/v1/keys", {"scopes": ["sms:send"], "expires_at": later}), 201)
    assert expiring["expires_at"] is not None
    err(
        api.post("/v1/keys", {"scopes": ["sms:send"], "expires_at": "tomorrow"}),
        422,
        "invalid_argument",
        "expires_at",
    )
    err(
        api.post("/v1/keys", {"scopes": ["sms:send"], "expires_at": "2030-01-01T00:00:00"}),
        422,
        "invalid_argument",
        "expires_at",
    )
    err(api.post("/v1/keys", {"scopes": []}), 422, "invalid_argument", "scopes")
    err(api.post("/v1/keys", {"scopes": ["root"]}), 422, "invalid_argument", "scopes")


def test_a_test_key_cannot_create_a_live_key(api: Api) -> None:
    refused = api.post("/v1/keys", {"scopes": ["sms:send"]}, key=api.main.test_key)
    err(refused, 403, "insufficient_scope", "mode")
    made = api.post("/v1/keys", {"scopes": ["sms:send"], "mode": "test"}, key=api.main.test_key)
    assert ok(made, 201)["key"].startswith("bs_test_")


# --------------------------------------------------------------------------- meta


def test_openapi_document_lists_every_operation(api: Api) -> None:
    from openapi_spec_validator import validate

    resp = api.get("/v1/openapi.json", key=None)
    assert resp.status == 200
    document = resp.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    expected = {(op.method, op.path) for op in ApiApp(api.bs).operations}
    assert served == expected
    assert len(expected) == 30


def _beat(api: Api, seconds_ago: float) -> None:
    now = datetime.now(UTC)
    beat = Heartbeat(
        "host:1:w", "worker", now - timedelta(hours=1), now - timedelta(seconds=seconds_ago)
    )
    with api.bs.storage.unit_of_work() as uow:
        uow.heartbeats.beat(beat)
        uow.commit()


def test_health_and_readiness_need_no_key(api: Api) -> None:
    assert ok(api.get("/healthz", key=None)) == {"status": "ok", "checks": {"process": "ok"}}
    head = api.request("HEAD", "/healthz", key=None)
    assert head.status == 200

    # No worker is running yet: the API is up but messages would not move.
    resp = api.get("/readyz", key=None)
    assert resp.status == 503
    assert resp.json()["data"] == {
        "status": "unavailable",
        "checks": {"storage": "ok", "worker": "no heartbeat"},
    }
    _beat(api, seconds_ago=2)
    ready = ok(api.get("/readyz", key=None))
    assert ready == {"status": "ok", "checks": {"storage": "ok", "worker": "ok"}}
    _beat(api, seconds_ago=120)
    resp = api.get("/readyz", key=None)
    assert resp.status == 503
    assert resp.json()["data"]["checks"]["worker"].startswith("last heartbeat 120")


# --------------------------------------------------------------------------- auth errors


def test_every_bad_key_gets_the_identical_401(api: Api) -> None:
    main = api.main
    prefix, mode, key_id, secret = main.read_key.split("_", 3)
    revoked = api.bs.create_api_key(api.tenant_id, scopes=["sms:read"])
    api.bs.revoke_api_key(api.tenant_id, revoked.key.id)
    expired = api.bs.create_api_key(
        api.tenant_id, scopes=["sms:read"], expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    expire_key(api, expired.key.id)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    attempts = {
        "missing": api.get("/v1/sms", key=None),
        "empty bearer": api.get("/v1/sms", headers={"Authorization": "Bearer "}),
        "basic scheme": api.get("/v1/sms", headers={"Authorization": "Basic dXNlcjpwYXNz"}),
        "malformed": api.get("/v1/sms", key="not-a-key"),
        "unknown id": api.get("/v1/sms", key=f"{prefix}_{mode}_{'z' * len(key_id)}_{secret}"),
        "wrong secret": api.get("/v1/sms", key=f"{prefix}_{mode}_{key_id}_{flipped}"),
        "wrong mode": api.get("/v1/sms", key=f"{prefix}_test_{key_id}_{secret}"),
        "revoked": api.get("/v1/sms", key=revoked.secret),
        "expired": api.get("/v1/sms", key=expired.secret),
    }
    bodies = {name: resp.body for name, resp in attempts.items()}
    reference = bodies["missing"]
    for name, resp in attempts.items():
        err(resp, 401, "invalid_api_key", "authorization")
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert bodies[name] == reference, name
    # Auth comes before the body is looked at: no validation leaks to anonymous callers.
    anonymous = api.post("/v1/sms/send", {"nonsense": True}, key=None)
    assert anonymous.body == reference


def test_missing_scope_is_a_403(api: Api) -> None:
    for method, path in [
        ("POST", "/v1/sms/send"),
        ("GET", "/v1/balance"),
        ("POST", "/v1/dlt/templates"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/keys"),
    ]:
        resp = api.request(method, path, json={}, key=api.main.read_key)
        err(resp, 403, "insufficient_scope", "scope")
        assert "insufficient_scope" in (resp.headers.get("WWW-Authenticate") or "")
    ok(api.get("/v1/sms", key=api.main.read_key))
    ok(api.get("/v1/dlt/templates", key=api.main.read_key))  # any DLT-read scope


# --------------------------------------------------------------------------- isolation


def test_another_tenants_message_is_a_404_like_a_missing_one(api: Api) -> None:
    theirs = api.bs.send(
        api.other.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE
    )
    probe = api.get(f"/v1/sms/{theirs.id}")
    err(probe, 404, "message_not_found", "id")
    missing_id = "msg_" + "0" * (len(theirs.id) - 4)
    missing = api.get(f"/v1/sms/{missing_id}")
    err(missing, 404, "message_not_found", "id")
    assert probe.body.replace(theirs.id.encode(), b"ID") == missing.body.replace(
        missing_id.encode(), b"ID"
    )
    assert ok(api.get(f"/v1/sms/{theirs.id}", key=api.other.key))["id"] == theirs.id


def test_no_id_endpoint_reaches_another_tenant(api: Api) -> None:
    other = api.other
    created = api.bs.add_webhook_endpoint(other.tenant_id, HOOK_URL)
    their_hook = created.endpoint.id
    api.bs.send(other.tenant_id, phone_number=PHONE, content=otp(), dlt_template_id=OTP_TEMPLATE)
    [delivery] = api.bs.webhook_deliveries(other.tenant_id)
    event = delivery.event_id

    probes = [
        ("GET", f"/v1/dlt/templates/{OTHER_TEMPLATE}", None),
        ("PATCH", f"/v1/dlt/templates/{OTHER_TEMPLATE}", {"active": False}),
        ("DELETE", f"/v1/webhooks/{their_hook}", None),
        ("POST", f"/v1/webhooks/{their_hook}/enable", None),
        ("POST", f"/v1/webhooks/{their_hook}/rotate-secret", {"overlap_seconds": 0}),
        ("GET", f"/v1/webhooks/{their_hook}/attempts?event_id={event}", None),
        ("POST", f"/v1/webhooks/{their_hook}/replay", {"event_id": event}),
        ("DELETE", f"/v1/keys/{other.key_id}", None),
    ]
    for method, target, body in probes:
        path, _, query = target.partition("?")
        resp = api.request(method, path, json=body, query=query or None)
        assert resp.status == 404, (method, path, resp.body)
        _conforms_to_error_schema(resp)
    # Nothing of theirs changed and nothing of theirs is listed.
    assert ok(api.get(f"/v1/dlt/templates/{OTHER_TEMPLATE}", key=other.key))["active"] is True
    [hook] = ok(api.get("/v1/webhooks", key=other.key))
    assert hook["enabled"] is True
    assert ok(api.get("/v1/webhooks")) == []
    assert ok(api.get("/v1/webhook-deliveries")) == []
    assert other.key_id not in {k["id"] for k in ok(api.get("/v1/keys"))}
    ok(api.get("/v1/keys", key=other.key))  # their key still works
    mine = ok(api.get("/v1/ledger"))
    assert all(line["message_id"] is None for line in mine)


# --------------------------------------------------------------------------- request errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone_number": 9876543210, "content": "x", "dlt_template_id": "1"}, "phone_number"),
        ({"phone_number": PHONE, "content": "x", "dlt_template_id": 1207}, "dlt_template_id"),
        (
            {"phone_number": PHONE, "content": "x", "dlt_template_id": "1", "priority": True},
            "priority",
        ),
        (
            {"phone_number": PHONE, "content": "x", "dlt_template_id": "1", "metadata": []},
            "metadata",
        ),
        ({"phone_number": PHONE, "content": "x", "dlt_template_id": "1", "extra": 1}, "extra"),
        ({"phone_number": PHONE, "dlt_template_id": "1"}, "content"),
        ({"content": "x", "dlt_template_id": "1"}, "phone_number"),
        ({"phone_number": PHONE, "content": "x", "dlt_template_id": "12ab"}, "dlt_template_id"),
        ({"phone_number": PHONE, "content": "", "dlt_template_id": "1"}, "content"),
        (
            {"phone_number": PHONE, "content": "x", "dlt_template_id": "1", "priority": 101},
            "priority",
        ),
        (["not", "an", "object"], "body"),
    ],
)
def test_validation_errors_name_the_field(api: Api, body: Any, field: str) -> None:
    err(api.post("/v1/sms/send", body), 422, "invalid_argument", field)


def test_malformed_json_is_a_400(api: Api) -> None:
    resp = api.post(
        "/v1/sms/send", body=b'{"phone_number": ', headers={"Content-Type": "application/json"}
    )
    err(resp, 400, "malformed_json", "body")
    latin = api.post("/v1/sms/send", body=b"\xff\xfe", headers={"Content-Type": "application/json"})
    err(latin, 400, "malformed_json", "body")


def test_json_sent_as_text_plain_is_a_415(api: Api) -> None:
    body = '{"phone_number": "+919876543210", "content": "x", "dlt_template_id": "1"}'
    resp = api.post("/v1/sms/send", body=body, headers={"Content-Type": "text/plain"})
    err(resp, 415, "unsupported_media_type", "content-type")
    err(api.post("/v1/sms/send", body=body), 415, "unsupported_media_type")  # no content type
    vendor = api.post(
        "/v1/sms/estimate",
        body='{"content": "Your OTP is 1. Valid for 5 minutes.", "dlt_template_id": "1"}',
        headers={"Content-Type": "application/vnd.acme+json; charset=utf-8"},
    )
    assert vendor.status == 200


def test_bodies_over_the_limit_are_a_413(api_factory: ApiFactory) -> None:
    api = api_factory(max_body_bytes=1024)
    big = api.send(metadata={"blob": "x" * 2000})
    error = err(big, 413, "payload_too_large", "body")
    assert error["detail"] == {"limit_bytes": 1024}
    ok(api.send(metadata={"small": "y"}))


def test_wrong_method_is_a_405_with_allow(api: Api) -> None:
    resp = api.request("PUT", "/v1/balance", json={})
    err(resp, 405, "method_not_allowed")
    assert resp.headers.get("Allow") == "GET"
    assert resp.error["detail"] == {"allow": ["GET"]}
    send = api.request("PUT", "/v1/sms/send", json={})  # also matches GET /v1/sms/{id}
    assert send.headers.get("Allow") == "GET, POST"
    listing = api.request("DELETE", "/v1/webhooks")
    err(listing, 405, "method_not_allowed")
    assert listing.headers.get("Allow") == "GET, POST"
    template = api.request("POST", f"/v1/dlt/templates/{OTP_TEMPLATE}", json={})
    assert template.headers.get("allow") == "GET, PATCH"


def test_unknown_endpoint_is_a_404(api: Api) -> None:
    err(api.get("/v1/nope"), 404, "endpoint_not_found", "path")
    err(api.get("/v1/sms/a/b"), 404, "endpoint_not_found", "path")
    outside = api.get("/v2/sms", key=None)
    if api.backend.startswith("django"):
        # bharatsend_django.urls claims only v1/, healthz and readyz: included at ""
        # it must not shadow the host project's own URLs, whose 404 this is.
        assert outside.status == 404
        assert not outside.headers.get("content-type", "").startswith("application/json")
    else:
        err(outside, 404, "endpoint_not_found", "path")


def test_unknown_query_parameters_are_refused(api: Api) -> None:
    err(api.get("/v1/balance", query={"x": "1"}), 422, "invalid_argument", "x")
    err(api.get("/v1/webhooks/whk_x/attempts", query={"event_id": "e", "y": "2"}), 422,
        "invalid_argument", "y")  # fmt: skip


# --------------------------------------------------------------------------- rate limits


def test_each_key_is_rate_limited_on_its_own(api_factory: ApiFactory) -> None:
    api = api_factory(key_rate=0.01, key_burst=2)
    ok(api.get("/v1/balance"))
    ok(api.get("/v1/balance"))
    limited = api.get("/v1/balance")
    error = err(limited, 429, "rate_limited", "authorization")
    retry_after = limited.headers.get("Retry-After")
    assert retry_after is not None
    assert int(retry_after) >= 1
    assert error["retry_after"] == int(retry_after)
    ok(api.get("/v1/balance", key=api.main.test_key))  # another key has its own bucket
    ok(api.get("/healthz", key=None))  # unauthenticated endpoints are not limited per key


def test_the_per_number_limit_is_a_429(api_factory: ApiFactory) -> None:
    api = api_factory(number_limit=2)
    ok(api.send(content=otp("100001")))
    ok(api.send(content=otp("100002")))
    third = api.send(content=otp("100003"))
    err(third, 429, "rate_limited")
    assert int(third.headers.get("Retry-After") or "0") >= 1
    ok(api.send(content=otp("100004"), phone_number="+919812345678"))  # another number is fine
    assert len(api.get("/v1/sms").json()["data"]) == 3


# --------------------------------------------------------------------------- integration


def test_flask_url_prefix_mounts_the_api(backend: str, tmp_path: Any) -> None:
    if backend != "flask":
        pytest.skip("a Flask configuration test")
    from flask import Flask

    from bharatsend_flask import BharatSend, facade

    app = Flask("prefixed")
    app.config.update(
        BHARATSEND_DATABASE_URL=f"sqlite:///{tmp_path / 'prefixed.db'}",
        BHARATSEND_KEY_PEPPER="a-long-server-side-secret",
        BHARATSEND_URL_PREFIX="/sms-api/",
    )
    BharatSend(app)
    facade(app).migrate()
    client = app.test_client()
    assert client.get("/sms-api/healthz").status_code == 200
    assert client.get("/healthz").status_code == 404
    facade(app).close()


def test_all_scopes_are_known(api: Api) -> None:
    made = ok(api.post("/v1/keys", {"scopes": list(ALL_SCOPES), "mode": "test"}), 201)
    assert sorted(made["scopes"]) == sorted(ALL_SCOPES)


def test_the_readme_flask_app_serves_the_api_in_under_ten_lines(
    backend: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "flask":
        pytest.skip("runs once, on the Flask leg")
    import importlib
    import sys
    from pathlib import Path

    source = Path(__file__).with_name("flask_app.py").read_text()
    assert len([line for line in source.splitlines() if line.strip()]) < 10
    monkeypatch.chdir(tmp_path)  # its sqlite:///sms.db is relative to the working directory
    monkeypatch.delitem(sys.modules, "tests.api.flask_app", raising=False)
    module = importlib.import_module("tests.api.flask_app")
    from bharatsend_flask import facade

    bs = facade(module.app)
    try:
        bs.migrate()
        from .conftest import seed_tenant

        seeded = seed_tenant(bs, "Readme Co")
        client = module.app.test_client()
        sent = client.post(
            "/v1/sms/send",
            json={"phone_number": PHONE, "content": otp(), "dlt_template_id": OTP_TEMPLATE},
            headers={"Authorization": f"Bearer {seeded.key}"},
        )
        assert sent.status_code == 200, sent.get_data()
        got = client.get(
            f"/v1/sms/{sent.get_json()['data']['id']}",
            headers={"Authorization": f"Bearer {seeded.key}"},
        )
        assert got.get_json()["data"]["status"] == "accepted"
        assert (tmp_path / "sms.db").exists()
    finally:
        bs.close()
        monkeypatch.delitem(sys.modules, "tests.api.flask_app", raising=False)
