"""The operator commands of ``bharatsend``: tenants, keys, DLT import, credits, send, status.

Every test runs ``main([...])`` against a temporary SQLite file upgraded with
``db upgrade``, as an operator would, and checks what the database holds
afterwards through the facade.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bharatsend_core import BharatSend
from bharatsend_core import cli as cli_module
from bharatsend_core.cli import main

PEPPER = "a-test-pepper-of-sufficient-length"
PE = "1101234567890123456"
OTP_ID = "1107161234567890123"
OTP_BODY = "Your OTP is {#numeric#}. Do not share it with anyone. - ACME"
SHIP_ID = "1107161234567890124"
SHIP_BODY = (
    "Your order {#alphanumeric#} has shipped and will reach you within {#numeric#} days."
    " Track it on the ACME app. - ACME"
)
DLT_CSV = (
    "PE ID,Template ID,Template Name,Content Type,Header,Template Content,Status\r\n"
    f'{PE},{OTP_ID},login otp,Transactional,ACMEBK,"{OTP_BODY}",Approved\r\n'
    f'{PE},{SHIP_ID},shipping,Service Implicit,ACMESV,"{SHIP_BODY}",Approved\r\n'
)
BAD_DLT_CSV = (
    "PE ID,Template ID,Template Name,Content Type,Header,Template Content,Status\r\n"
    f'{PE},{OTP_ID},login otp,Transactional,ACMEBK,"{OTP_BODY}",Approved\r\n'
    f'{PE},12ab,broken id,Transactional,ACMEBK,"{OTP_BODY}",Approved\r\n'
    f'{PE},{SHIP_ID},shipping,Service Implicit,AC,"{SHIP_BODY}",Approved\r\n'
)


def otp(code: str) -> str:
    return OTP_BODY.replace("{#numeric#}", code)


# ----------------------------------------------------------------------------- helpers


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Call ``main`` and return its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Call ``main`` with ``--json`` and parse the one JSON object on stdout."""
    code, out, err = run(capsys, *argv, "--json")
    assert err == ""
    return code, json.loads(out)


def assert_one_error(err: str, code: str) -> None:
    """An error: ``error: <code>: ...`` first, no traceback, detail lines indented."""
    lines = err.splitlines()
    assert lines[0].startswith(f"error: {code}: "), err
    assert "Traceback" not in err
    assert all(line.startswith("  ") for line in lines[1:]), err


@pytest.fixture
def url(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file; the key pepper in the environment as in production."""
    for name in ("BHARATSEND_DATABASE_URL", "BHARATSEND_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BHARATSEND_KEY_PEPPER", PEPPER)
    database = f"sqlite:///{tmp_path / 'admin.db'}"
    code, _out, err = run(capsys, "db", "upgrade", "--database-url", database)
    assert code == 0, err
    return database


@pytest.fixture
def tenant(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run(capsys, "tenants", "create", "Acme Corp", "--database-url", url)
    assert (code, err) == (0, "")
    return out.strip()


@pytest.fixture
def registered(tenant: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A tenant with the two templates imported and ₹500 of credits."""
    path = tmp_path / "dlt.csv"
    path.write_text(DLT_CSV, encoding="utf-8")
    code, _out, err = run(capsys, "dlt", "import", "--tenant", tenant, str(path),
                          "--database-url", url)  # fmt: skip
    assert code == 0, err
    code, _out, err = run(capsys, "topup", "--tenant", tenant, "50000", "--database-url", url)
    assert code == 0, err
    return tenant


def facade(url: str) -> BharatSend:
    return BharatSend.from_url(url, key_pepper=PEPPER)


# ----------------------------------------------------------------------------- tenants


def test_tenants_create_prints_only_the_id(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tenants", "create", "Acme", "--billing-point", "delivery",
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    tenant_id = out.strip()
    assert out == tenant_id + "\n"
    with facade(url) as bs:
        stored = bs.get_tenant(tenant_id)
    assert stored.name == "Acme"
    assert stored.billing_point.value == "delivery"


def test_tenants_list_grid_and_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tenants", "list", "--database-url", url)
    assert code == 0
    assert "no tenants" in out
    first = run(capsys, "tenants", "create", "Acme", "--database-url", url)[1].strip()
    second = run(capsys, "tenants", "create", "Zeta", "--database-url", url)[1].strip()

    code, out, err = run(capsys, "tenants", "list", "--database-url", url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "status", "billing", "created"]
    assert {line.split()[0] for line in lines[1:]} == {first, second}

    code, data = run_json(capsys, "tenants", "list", "--database-url", url)
    assert code == 0
    by_id = {t["id"]: t for t in data["tenants"]}
    assert by_id[first]["name"] == "Acme"
    assert by_id[second]["billing_point"] == "submit"
    assert by_id[first]["status"] == "active"


def test_tenants_create_refuses_a_blank_name(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tenants", "create", "  ", "--database-url", url)
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")


def test_unknown_billing_point_is_a_usage_error(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "tenants", "create", "Acme", "--billing-point", "monthly",
                          "--database-url", url)  # fmt: skip
    assert code == 2
    assert "invalid choice" in err


# ----------------------------------------------------------------------------- keys


def test_key_is_printed_once_and_authenticates(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "keys", "create", "--tenant", tenant, "--scope", "sms:send",
                         "balance:read", "--name", "ci", "--database-url", url)  # fmt: skip
    assert code == 0, err
    key = out.strip()
    assert out == key + "\n"  # the key alone on stdout
    assert key.startswith("bs_live_")
    assert "only time" in err
    assert "warning:" in err
    assert key not in err

    with facade(url) as bs:
        principal = bs.authenticate(key, "sms:send")
        assert principal.tenant.id == tenant
        assert {s.value for s in principal.key.scopes} == {"sms:send", "balance:read"}
        assert principal.key.name == "ci"
        assert principal.key.expires_at is None

    # Listing never shows it again, nor its hash.
    code, out, err = run(capsys, "keys", "list", "--tenant", tenant, "--database-url", url)
    assert (code, err) == (0, "")
    secret = key.rsplit("_", 1)[1]
    assert secret not in out
    assert principal.key.secret_hash not in out
    assert principal.key.prefix in out
    assert "never" in out  # not used yet as far as the list is concerned, or no expiry
    code, data = run_json(capsys, "keys", "list", "--tenant", tenant, "--database-url", url)
    text = json.dumps(data)
    assert secret not in text
    assert principal.key.secret_hash not in text
    (listed,) = data["keys"]
    assert listed["id"] == principal.key.id
    assert listed["mode"] == "live"
    assert listed["scopes"] == ["balance:read", "sms:send"]
    assert listed["state"] == "active"
    assert listed["last_used_at"] is not None  # authenticate touched it
    assert set(listed) >= {"created_at", "expires_at", "revoked_at", "prefix", "name"}


def test_test_key_with_expiry_and_default_scopes(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = run_json(capsys, "keys", "create", "--tenant", tenant, "--test",
                          "--expires-in", "3600", "--database-url", url)  # fmt: skip
    assert code == 0
    assert data["key"].startswith("bs_test_")
    assert data["mode"] == "test"
    assert data["scopes"] == ["sms:read", "sms:send"]
    assert data["expires_at"] is not None
    assert "shown" in data["warning"]
    with facade(url) as bs:
        principal = bs.authenticate(data["key"])
    assert principal.sandbox is True
    assert principal.key.expires_at is not None


def test_keys_revoke_stops_authentication(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bharatsend_core.domain.errors import InvalidApiKey

    code, data = run_json(capsys, "keys", "create", "--tenant", tenant, "--database-url", url)
    assert code == 0
    key, key_id = data["key"], data["id"]

    code, out, err = run(capsys, "keys", "revoke", "--tenant", tenant, key_id,
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith(f"revoked bs_live_{key_id} at ")
    with facade(url) as bs, pytest.raises(InvalidApiKey):
        bs.authenticate(key)

    code, data = run_json(capsys, "keys", "list", "--tenant", tenant, "--database-url", url)
    assert data["keys"][0]["state"] == "revoked"
    assert data["keys"][0]["revoked_at"] is not None

    code, out, err = run(capsys, "keys", "revoke", "--tenant", tenant, "nope",
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "api_key_not_found")


def test_keys_refuse_unknown_scopes_and_bad_expiry(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (["--scope", "sms:everything"], ["--expires-in", "0"], ["--expires-in", "x"]):
        code, out, err = run(capsys, "keys", "create", "--tenant", tenant, *extra,
                             "--database-url", url)  # fmt: skip
        assert (code, out) == (2, "")
        assert "usage:" in err


def test_keys_without_a_pepper_is_a_configuration_error(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BHARATSEND_KEY_PEPPER")
    code, out, err = run(capsys, "keys", "create", "--tenant", tenant, "--database-url", url)
    assert (code, out) == (1, "")
    assert_one_error(err, "configuration_error")
    assert "key_pepper" in err


def test_keys_for_an_unknown_tenant(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["keys", "create"], ["keys", "list"]):
        code, out, err = run(capsys, *argv, "--tenant", "ten_nope", "--database-url", url)
        assert (code, out) == (2, "")
        assert_one_error(err, "tenant_not_found")


# ----------------------------------------------------------------------------- dlt import


def test_dlt_import_good_file_prints_counts(
    tenant: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "portal.csv"
    path.write_bytes(DLT_CSV.encode("utf-8-sig"))
    code, out, err = run(capsys, "dlt", "import", "--tenant", tenant, str(path),
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert "templates created    2" in out
    assert "headers created      2" in out
    assert "entities created     1" in out

    # Importing again changes nothing.
    code, data = run_json(capsys, "dlt", "import", "--tenant", tenant, str(path),
                          "--database-url", url)  # fmt: skip
    assert code == 0
    assert data["counts"]["created"] == 0
    assert data["counts"]["unchanged"] == 2
    assert sorted(data["unchanged"]) == [OTP_ID, SHIP_ID]
    with facade(url) as bs:
        assert sorted(t.template_id for t in bs.list_templates(tenant)) == [OTP_ID, SHIP_ID]


def test_dlt_import_bad_file_lists_errors_by_line_and_imports_nothing(
    tenant: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_DLT_CSV, encoding="utf-8")
    code, out, err = run(capsys, "dlt", "import", "--tenant", tenant, str(path),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "dlt_csv_invalid")
    assert "not imported" in err.splitlines()[0]
    assert "    line 3, column 'Template ID': dlt_template_invalid: " in err
    assert "    line 4, column 'Header': dlt_header_invalid: " in err
    assert "Traceback" not in err
    with facade(url) as bs:
        assert list(bs.list_templates(tenant)) == []  # the good first row was not imported either

    code, out, err = run(capsys, "dlt", "import", "--tenant", tenant, str(path),
                         "--database-url", url, "--json")  # fmt: skip
    assert (code, out) == (2, "")
    error = json.loads(err)["error"]
    assert error["code"] == "dlt_csv_invalid"
    assert [e["line"] for e in error["detail"]["errors"]] == [3, 4]


def test_dlt_import_missing_file(
    tenant: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "dlt", "import", "--tenant", tenant, str(tmp_path / "no.csv"),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")
    assert "cannot read" in err


# ----------------------------------------------------------------------------- templates list


def test_templates_list_truncates_bodies(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "templates", "list", "--tenant", registered,
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["template", "id", "header", "category", "active", "body"]
    ship = next(line for line in lines if line.startswith(SHIP_ID))
    assert "ACMESV" in ship
    assert "service_implicit" in ship
    assert " yes " in ship
    assert json.dumps(SHIP_BODY[:57] + "...") in ship
    assert SHIP_BODY not in out
    assert json.dumps(OTP_BODY) in out  # short enough to show whole

    code, data = run_json(capsys, "templates", "list", "--tenant", registered,
                          "--database-url", url)  # fmt: skip
    by_id = {t["template_id"]: t for t in data["templates"]}
    assert by_id[SHIP_ID]["body"] == SHIP_BODY
    assert by_id[OTP_ID]["headers"] == ["ACMEBK"]
    assert by_id[OTP_ID]["active"] is True


def test_templates_list_empty(tenant: str, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "list", "--tenant", tenant, "--database-url", url)
    assert code == 0
    assert "no templates" in out


# ----------------------------------------------------------------------------- credits


def test_topup_and_balance(tenant: str, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "topup", "--tenant", tenant, "12345", "--reference", "pay_1",
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert "INR 123.45" in out
    assert "(12345 paise)" in out

    # The same reference again is a no-op.
    code, data = run_json(capsys, "topup", "--tenant", tenant, "12345", "--reference", "pay_1",
                          "--database-url", url)  # fmt: skip
    assert code == 0
    assert data["balance"]["available"] == {"paise": 12345, "rupees": "123.45"}

    code, out, err = run(capsys, "balance", "--tenant", tenant, "--database-url", url)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].split()[:3] == ["available", "INR", "123.45"]
    assert "pending" in out
    code, data = run_json(capsys, "balance", "--tenant", tenant, "--database-url", url)
    assert data["available"]["paise"] == 12345
    assert data["posted"]["paise"] == 12345
    assert data["pending"] == {"paise": 0, "rupees": "0.00"}


def test_topup_refuses_non_positive_amounts(
    tenant: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for amount in ("0", "-5", "1.5"):
        code, out, err = run(capsys, "topup", "--tenant", tenant, "--database-url", url,
                             "--", amount)  # fmt: skip
        assert (code, out) == (2, "")
        assert "usage:" in err


def test_balance_of_an_unknown_tenant(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "balance", "--tenant", "ten_nope", "--database-url", url)
    assert (code, out) == (2, "")
    assert_one_error(err, "tenant_not_found")


# ----------------------------------------------------------------------------- send one


def test_send_one_message_prints_id_status_segments_price(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "send", "--tenant", registered, "--to", "9876543210",
                         "--template", OTP_ID, "--text", otp("482913"),
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert "482913" not in out  # never the content
    table = dict(line.split(None, 1) for line in out.splitlines())
    assert table["status"] == "accepted"
    assert table["segments"] == "1 (gsm7)"
    assert "paise" in table["price"]
    with facade(url) as bs:
        message = bs.get_message(registered, table["id"])
    assert message.phone == "+919876543210"
    assert message.header == "ACMEBK"


def test_send_one_json_replay_and_test_mode(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["send", "--tenant", registered, "--to", "+919876543210", "--template", OTP_ID,
            "--text", otp("111111"), "--client-message-id", "order-1",
            "--database-url", url]  # fmt: skip
    code, first = run_json(capsys, *argv)
    assert code == 0
    assert first["replayed"] is False
    assert first["price"]["paise"] > 0
    code, again = run_json(capsys, *argv)
    assert (code, again["id"], again["replayed"]) == (0, first["id"], True)

    code, sandbox = run_json(capsys, "send", "--tenant", registered, "--to", "9876543210",
                             "--template", OTP_ID, "--text", otp("222222"), "--test",
                             "--database-url", url)  # fmt: skip
    assert code == 0
    assert sandbox["sandbox"] is True
    assert sandbox["price"]["paise"] == 0


def test_send_one_refused_message_is_one_error(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "send", "--tenant", registered, "--to", "9876543210",
                         "--template", OTP_ID, "--text", "Your OTP is abc. 482913",
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith("error: dlt_")
    assert "Traceback" not in err

    code, out, err = run(capsys, "send", "--tenant", registered, "--to", "12",
                         "--template", OTP_ID, "--text", otp("1"),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_phone_number")


def test_send_needs_a_message_or_a_csv(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "send", "--tenant", registered, "--to", "9876543210",
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")
    assert "--template, --text" in err
    code, out, err = run(capsys, "send", "--tenant", registered, "--to", "9876543210",
                         "--csv", str(tmp_path / "x.csv"), "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")
    assert "--to" in err


# ----------------------------------------------------------------------------- send --csv


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_send_csv_with_bad_rows_writes_the_report_and_exits_3(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(
        tmp_path / "bulk.csv",
        # Header case and spaces are tolerated.
        [" Phone_Number", "CONTENT ", "dlt_template_id", "Client_Message_ID", "validity_seconds"],
        [
            ["9876543210", otp("100001"), OTP_ID, "c1", ""],
            ["12345", otp("100002"), OTP_ID, "c2", ""],  # invalid phone
            ["9876543211", otp("100003"), "1107169999999999999", "c3", ""],  # unknown template
            ["", "", "", "", ""],  # blank rows are skipped
            ["9876543212", otp("100004"), OTP_ID, "c4", "600"],
            ["9876543213", otp("100005"), OTP_ID, "c5", "soon"],  # bad validity
            ["+919876543214", otp("100006"), OTP_ID, "", ""],
        ],
    )
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv", str(source),
                         "--batch-size", "2", "--database-url", url)  # fmt: skip
    report = tmp_path / "bulk.errors.csv"
    assert code == 3
    assert out == f"accepted 3, replayed 0, failed 3 (report: {report})\n"
    # Not a terminal: plain progress lines, one per batch.
    progress = err.splitlines()
    assert progress[-1] == "progress: 6/6 rows; accepted 3, replayed 0, failed 3"
    assert all(line.startswith("progress: ") for line in progress)
    for n in range(100001, 100007):
        assert str(n) not in out + err  # never the content

    rows = read_report(report)
    assert list(rows[0]) == ["line", "phone_number", "client_message_id", "error_code",
                             "error_message", "field"]  # fmt: skip
    assert [(r["line"], r["client_message_id"], r["error_code"], r["field"]) for r in rows] == [
        ("3", "c2", "invalid_phone_number", "phone_number"),
        ("4", "c3", "dlt_template_unknown", "dlt_template_id"),
        ("7", "c5", "invalid_argument", "validity_seconds"),
    ]
    assert rows[0]["phone_number"] == "12345"
    assert all(r["error_message"] for r in rows)
    assert "100002" not in report.read_text(encoding="utf-8")

    # The accepted rows are really in the database: their ids replay, and each reserved credits.
    with facade(url) as bs:
        balance = bs.balance(registered)
        for client_id, phone, code_, validity in (("c1", "9876543210", "100001", None),
                                                  ("c4", "9876543212", "100004", 600)):  # fmt: skip
            replay = bs.send(registered, phone_number=phone, content=otp(code_),
                             dlt_template_id=OTP_ID, client_message_id=client_id,
                             validity_seconds=validity)  # fmt: skip
            assert replay.replayed is True
            assert replay.message.phone == "+91" + phone
            assert bs.get_message(registered, replay.id).status.value == "accepted"
    assert balance.reserved_paise == 3 * replay.message.price_paise > 0

    # Running the file again: the rows with a client_message_id replay.
    code, data = run_json(capsys, "send", "--tenant", registered, "--csv", str(source),
                          "--database-url", url)  # fmt: skip
    assert code == 3
    assert (data["accepted"], data["replayed"], data["failed"]) == (1, 2, 3)
    assert data["report"] == str(report)
    assert data["rows"] == 6


def test_send_csv_all_good_exits_0_and_messages_are_stored(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(
        tmp_path / "good.csv",
        ["phone_number", "content", "dlt_template_id", "header", "client_message_id"],
        [[f"98765432{i:02d}", otp(f"5000{i:02d}"), OTP_ID, "ACMEBK", f"g{i}"] for i in range(5)],
    )
    report = tmp_path / "out" / "errors.csv"
    report.parent.mkdir()
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv", str(source),
                         "--report", str(report), "--no-progress", "--test",
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert out == f"accepted 5, replayed 0, failed 0 (report: {report})\n"
    assert read_report(report) == []  # written anyway, so no stale report misleads

    from bharatsend_core.domain.errors import MessageNotFound

    with facade(url) as bs:
        for i in range(5):
            result = bs.send(
                registered,
                phone_number=f"98765432{i:02d}",
                content=otp(f"5000{i:02d}"),
                dlt_template_id=OTP_ID,
                header="ACMEBK",
                client_message_id=f"g{i}",
                sandbox=True,
            )
            assert result.replayed is True
            assert result.message.sandbox is True
            assert bs.get_message(registered, result.id).client_message_id == f"g{i}"
        with pytest.raises(MessageNotFound):
            bs.get_message(registered, "msg_nope")


def test_send_csv_missing_column_is_fatal_and_names_it(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(tmp_path / "cols.csv", ["phone_number", "text", "dlt_template_id"],
                        [["9876543210", otp("1"), OTP_ID]])  # fmt: skip
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv", str(source),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")
    assert "no 'content' column" in err.splitlines()[0]
    assert not (tmp_path / "cols.errors.csv").exists()


def test_send_csv_unreadable_file_is_fatal(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv",
                         str(tmp_path / "missing.csv"), "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")

    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"phone_number,content,dlt_template_id\r\n9876543210,caf\xe9,1\r\n")
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv", str(latin),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "invalid_argument")
    assert "UTF-8" in err

    empty = write_rows(tmp_path / "empty.csv", ["phone_number", "content", "dlt_template_id"], [])
    code, out, err = run(capsys, "send", "--tenant", registered, "--csv", str(empty),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert "no data rows" in err


def test_send_csv_wrong_cell_count_and_multiline_content_lines(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "odd.csv"
    source.write_text(
        "phone_number,content,dlt_template_id\r\n"
        '9876543210,"Your OTP is 1.\nDo not share",' + OTP_ID + "\r\n"  # spans lines 2-3
        "9876543211,extra,cells," + OTP_ID + "\r\n",  # line 4
        encoding="utf-8",
    )
    code, _out, _err = run(capsys, "send", "--tenant", registered, "--csv", str(source),
                           "--database-url", url)  # fmt: skip
    assert code == 3
    rows = read_report(tmp_path / "odd.errors.csv")
    assert [(r["line"], r["error_code"]) for r in rows] == [
        ("2", "dlt_template_mismatch"),
        ("4", "invalid_argument"),
    ]
    assert rows[1]["field"] == "row"


def test_send_csv_batch_size_is_bounded(
    registered: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "send", "--tenant", registered, "--csv", "x.csv",
                          "--batch-size", "1001", "--database-url", url)  # fmt: skip
    assert code == 2
    assert "at most 1000" in err


def test_send_csv_unknown_tenant_writes_no_report(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(tmp_path / "t.csv", ["phone_number", "content", "dlt_template_id"],
                        [["9876543210", otp("1"), OTP_ID]])  # fmt: skip
    code, out, err = run(capsys, "send", "--tenant", "ten_nope", "--csv", str(source),
                         "--database-url", url)  # fmt: skip
    assert (code, out) == (2, "")
    assert_one_error(err, "tenant_not_found")
    assert not (tmp_path / "t.errors.csv").exists()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    stream = _Tty()
    progress = cli_module._Progress(4, stream, plain=False)
    progress.update(2, 2, 0, 0)
    progress.update(4, 3, 0, 1)
    text = stream.getvalue()
    assert text.startswith("\r[###############---------------]  50% 2/4 rows")
    assert (
        "\r[##############################] 100% 4/4 rows; accepted 3, replayed 0, failed 1\n"
        in (text)
    )

    plain = io.StringIO()
    cli_module._Progress(4, plain, plain=False).update(4, 4, 0, 0)
    assert plain.getvalue() == ""  # --json without a terminal: quiet
    cli_module._Progress(4, plain, plain=True).update(4, 4, 0, 0)
    assert plain.getvalue() == "progress: 4/4 rows; accepted 4, replayed 0, failed 0\n"


# ----------------------------------------------------------------------------- status


def test_status_shows_parts_timeline_and_a_masked_phone(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, sent = run_json(capsys, "send", "--tenant", registered, "--to", "9876543210",
                          "--template", OTP_ID, "--text", otp("482913"),
                          "--database-url", url)  # fmt: skip
    assert code == 0
    code, out, err = run(capsys, "status", sent["id"], "--tenant", registered,
                         "--database-url", url)  # fmt: skip
    assert (code, err) == (0, "")
    assert "482913" not in out
    assert "9876543210" not in out
    assert "3210" in out
    lines = out.splitlines()
    table = dict(line.split(None, 1) for line in lines[: lines.index("")])
    assert table["status"] == "accepted"
    assert table["phone"] == "+********3210"
    assert table["template"] == OTP_ID
    assert table["segments"] == "1 (gsm7)"
    assert table["error"] == "-"
    assert any(line.split()[:2] == ["1", "pending"] for line in lines)  # part 1
    assert any(line.split()[1:3] == ["accepted", "accepted"] for line in lines)  # timeline

    code, data = run_json(capsys, "status", sent["id"], "--tenant", registered,
                          "--database-url", url)  # fmt: skip
    assert code == 0
    assert data["id"] == sent["id"]
    assert data["phone"] == "+********3210"
    assert "content" not in data
    assert "482913" not in json.dumps(data)
    assert data["parts"] == [
        {
            "part": 1,
            "status": "pending",
            "carrier_message_id": None,
            "route": None,
            "submitted_at": None,
            "final_at": None,
            "error_code": None,
            "outcome_unknown": False,
        }
    ]
    assert data["timeline"][0]["kind"] == "accepted"
    assert data["timeline"][0]["status"] == "accepted"
    assert isinstance(data["timeline"][0]["detail"], dict)


def test_status_of_an_unknown_or_foreign_message(
    registered: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, sent = run_json(capsys, "send", "--tenant", registered, "--to", "9876543210",
                          "--template", OTP_ID, "--text", otp("1"),
                          "--database-url", url)  # fmt: skip
    other = run(capsys, "tenants", "create", "Other", "--database-url", url)[1].strip()
    for tenant_id, message_id in ((registered, "msg_nope"), (other, sent["id"])):
        code, out, err = run(capsys, "status", message_id, "--tenant", tenant_id,
                             "--database-url", url)  # fmt: skip
        assert (code, out) == (2, "")
        assert_one_error(err, "message_not_found")


# ----------------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke", "key_1"],
        ["dlt", "import", "f.csv"],
        ["templates", "list"],
        ["topup", "100"],
        ["balance"],
        ["send", "--to", "9876543210"],
        ["status", "msg_1"],
    ],
)
def test_missing_tenant_is_argparses_error(
    argv: list[str], url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv, "--database-url", url)
    assert (code, out) == (2, "")
    assert "the following arguments are required: --tenant" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["tenants", "create"],
        ["tenants", "list"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["dlt", "import"],
        ["templates", "list"],
        ["topup"],
        ["balance"],
        ["send"],
        ["status"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    assert "--json" in out
    assert "--database-url" in out


def test_top_level_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "exit codes:" in out
    for line in (
        "  0  success",
        "  1  unexpected failure",
        "  2  refused input",
        "  3  send --csv",
    ):
        assert line in out
