"""The ``manage.py bharatsend_*`` commands, through ``call_command`` and one real worker process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import attrs
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from bharatsend_core import BharatSend
from bharatsend_core.adapters.smpp.simulator import SmscSimulator
from bharatsend_core.cli import main as bharatsend_main
from bharatsend_django import runtime

ROOT = Path(__file__).resolve().parents[2]
PE = "1201159123456789012"
TEMPLATE = "1207161234567890123"
BODY = "Your OTP is {#var#}. Valid for 5 minutes."
HEAD = "PE ID,Template ID,Template Name,Content Type,Header,Template Content,Status\r\n"
CSV = f'{HEAD}{PE},{TEMPLATE},otp,Transactional,ACMEOT,"{BODY}",Approved\r\n'
BAD_CSV = (
    f'{HEAD}{PE},{TEMPLATE},otp,Transactional,ACMEOT,"{BODY}",Approved\r\n'
    f'{PE},12ab,broken id,Transactional,ACMEOT,"{BODY}",Approved\r\n'
    f'{PE},1207161234567890124,short header,Transactional,AC,"{BODY}",Approved\r\n'
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    """Each test builds the facade from the settings it runs with (override_settings)."""
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def bs() -> BharatSend:
    return runtime.facade()


@pytest.fixture
def tenant(bs: BharatSend) -> str:
    return bs.create_tenant("Acme").id


def call(name: str, *args: str, **options: Any) -> tuple[str, str]:
    """Run a command; its stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def fails(name: str, *args: str, **options: Any) -> tuple[CommandError, str, str]:
    """Run a command that must fail: its CommandError, stdout and stderr."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command(name, *args, stdout=out, stderr=err, **options)
    return info.value, out.getvalue(), err.getvalue()


def with_routes(*routes: dict[str, Any]) -> override_settings:
    return override_settings(BHARATSEND={**settings.BHARATSEND, "ROUTES": list(routes)})


def route(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": 2775, "system_id": "acme",
            "password": "secret", **extra}  # fmt: skip


# ----------------------------------------------------------------------------- migrate, tenants


def test_migrate_is_idempotent(bs: BharatSend) -> None:
    out, err = call("bharatsend_migrate")
    assert out.strip().endswith(": schema is up to date")
    assert err == ""
    assert call("bharatsend_migrate")[0] == out
    bs.ping()


def test_createtenant_prints_only_the_id(bs: BharatSend) -> None:
    out, err = call("bharatsend_createtenant", "Acme Retail", "--billing-point", "delivery")
    tenant_id = out.strip()
    assert tenant_id.startswith("ten_")
    assert out == f"{tenant_id}\n"
    assert err == ""
    made = bs.get_tenant(tenant_id)
    assert (made.name, made.billing_point.value) == ("Acme Retail", "delivery")


def test_createtenant_refuses_a_bad_name_in_one_line() -> None:
    error, out, _err = fails("bharatsend_createtenant", "")
    assert out == ""
    assert str(error).startswith("invalid_argument")
    assert "\n" not in str(error)
    assert error.returncode == 2


def test_createtenant_refuses_an_unknown_billing_point() -> None:
    error, _out, _err = fails("bharatsend_createtenant", "Acme", "--billing-point", "never")
    assert "invalid choice" in str(error)


# ----------------------------------------------------------------------------- keys


def test_createkey_prints_the_key_once_and_the_warning_on_stderr(
    bs: BharatSend, tenant: str
) -> None:
    out, err = call("bharatsend_createkey", "--tenant", tenant, "--name", "backend")
    key = out.strip()
    assert out == f"{key}\n"
    assert key.startswith("bs_live_")
    assert "warning: this is the only time the full key is shown" in err
    assert "sms:read sms:send" in err
    assert key not in err
    principal = bs.authenticate(key, "sms:send")
    assert principal.tenant.id == tenant
    assert principal.key.name == "backend"
    assert principal.key.expires_at is None


def test_createkey_test_mode_scopes_and_expiry(bs: BharatSend, tenant: str) -> None:
    out, err = call(
        "bharatsend_createkey", "--tenant", tenant, "--test", "--scope", "sms:read",
        "--expires-in", "3600",
    )  # fmt: skip
    key = out.strip()
    assert key.startswith("bs_test_")
    assert "mode     test" in err
    principal = bs.authenticate(key, "sms:read")
    assert {s.value for s in principal.key.scopes} == {"sms:read"}
    assert principal.key.expires_at is not None
    left = principal.key.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)


def test_createkey_for_an_unknown_tenant_is_a_command_error_with_the_code() -> None:
    error, out, _err = fails("bharatsend_createkey", "--tenant", "ten_nosuchtenant")
    assert out == ""
    assert str(error).startswith("tenant_not_found")
    assert "\n" not in str(error)
    assert error.returncode == 2


def test_createkey_refuses_an_unknown_scope(tenant: str) -> None:
    error, _out, _err = fails("bharatsend_createkey", "--tenant", tenant, "--scope", "sms:all")
    assert "invalid choice" in str(error)


def test_createkey_without_a_pepper_is_a_server_side_error(tenant: str) -> None:
    # settings.BHARATSEND cannot lack KEY_PEPPER (ImproperlyConfigured at start-up), so
    # drop it from the validated settings the runtime caches, as a broken deploy might.
    conf = runtime.config()
    runtime.reset()
    runtime._state["config"] = attrs.evolve(conf, core=attrs.evolve(conf.core, key_pepper=None))
    error, out, _err = fails("bharatsend_createkey", "--tenant", tenant)
    assert out == ""
    assert str(error).startswith("configuration_error")
    assert error.returncode == 1


# ----------------------------------------------------------------------------- DLT import


def test_import_dlt_good_file_prints_counts(bs: BharatSend, tenant: str, tmp_path: Path) -> None:
    path = tmp_path / "portal.csv"
    path.write_bytes(CSV.encode("utf-8-sig"))
    out, err = call("bharatsend_import_dlt", "--tenant", tenant, str(path))
    assert err == ""
    assert "templates created    1" in out
    assert "entities created     1" in out
    assert "headers created      1" in out
    assert [t.template_id for t in bs.list_templates(tenant)] == [TEMPLATE]

    out, _err = call("bharatsend_import_dlt", "--tenant", tenant, str(path), "--pe-id", PE)
    assert "templates created    0" in out
    assert "templates unchanged  1" in out


def test_import_dlt_bad_file_lists_errors_by_line_and_imports_nothing(
    bs: BharatSend, tenant: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    error, out, err = fails("bharatsend_import_dlt", "--tenant", tenant, str(path))
    assert out == ""
    assert str(error).startswith("dlt_csv_invalid")
    assert "\n" not in str(error)
    assert error.returncode == 2
    assert "    line 3, column 'Template ID': dlt_template_invalid: " in err
    assert "    line 4, column 'Header': dlt_header_invalid: " in err
    assert "Traceback" not in err
    assert list(bs.list_templates(tenant)) == []  # not even the good first row


def test_import_dlt_missing_file_and_unknown_tenant(tenant: str, tmp_path: Path) -> None:
    error, _out, _err = fails("bharatsend_import_dlt", "--tenant", tenant, str(tmp_path / "no"))
    assert str(error).startswith("invalid_argument (file): cannot read")
    path = tmp_path / "portal.csv"
    path.write_text(CSV, encoding="utf-8")
    error, _out, _err = fails("bharatsend_import_dlt", "--tenant", "ten_nosuchtenant", str(path))
    assert str(error).startswith("tenant_not_found")


# ----------------------------------------------------------------------------- routes


def test_routes_sync_list_disable_enable(bs: BharatSend) -> None:
    with with_routes(route("cmd-agg1", categories=["transactional"], tps=50)):
        runtime.reset()
        out, _err = call("bharatsend_routes", "sync")
        assert out.strip() == "routes: 1 added, 0 updated"
    runtime.reset()
    bs = runtime.facade()
    stored = bs.get_route("cmd-agg1")
    assert (stored.route.tps, stored.connection.port) == (50, 2775)

    with with_routes(route("cmd-agg1", port=2776, tps=80), route("cmd-agg2", priority=5)):
        runtime.reset()
        out, _err = call("bharatsend_routes", "sync")
        assert out.strip() == "routes: 1 added, 1 updated"
        out, _err = call("bharatsend_routes", "list")
    runtime.reset()
    bs = runtime.facade()
    stored = bs.get_route("cmd-agg1")
    assert (stored.route.tps, stored.connection.port) == (80, 2776)
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "enabled" in lines["cmd-agg1"]
    assert "127.0.0.1:2776" in lines["cmd-agg1"]
    assert "categories=transactional" in lines["cmd-agg1"]
    assert " p5 " in lines["cmd-agg2"]

    out, _err = call("bharatsend_routes", "disable", "cmd-agg2")
    assert out.split()[:2] == ["cmd-agg2", "disabled"]
    assert not bs.get_route("cmd-agg2").route.enabled
    out, _err = call("bharatsend_routes", "enable", "cmd-agg2")
    assert out.split()[:2] == ["cmd-agg2", "enabled"]
    assert bs.get_route("cmd-agg2").route.enabled

    # The core's tables outlive the test: leave no route for later tests' workers to bind.
    for name in ("cmd-agg1", "cmd-agg2"):
        bs.disable_route(name)


def test_routes_errors_are_one_line() -> None:
    error, out, _err = fails("bharatsend_routes", "disable", "cmd-nosuchroute")
    assert out == ""
    assert str(error).startswith("route_not_found")
    assert error.returncode == 2
    with with_routes(route("cmd-bad", colour="blue")):
        runtime.reset()
        error, _out, _err = fails("bharatsend_routes", "sync")
    assert str(error).startswith("invalid_argument")
    assert "\n" not in str(error)
    error, _out, _err = fails("bharatsend_routes", "rename")
    assert "invalid choice" in str(error)


# ----------------------------------------------------------------------------- report


def deliver_sandbox_messages(bs: BharatSend, tenant: str, count: int) -> None:
    """Send ``count`` sandbox messages and run a worker until the simulator delivered them."""
    bs.register_entity(tenant, pe_id=PE)
    bs.register_header(tenant, "ACMEOT", category="transactional")
    bs.register_template(
        tenant, template_id=TEMPLATE, header="ACMEOT", category="transactional", body=BODY
    )
    bs.top_up(tenant, paise=10_000)
    ids = [
        bs.send(
            tenant,
            phone_number=f"+91987654321{n}",
            content=f"Your OTP is {n}. Valid for 5 minutes.",
            dlt_template_id=TEMPLATE,
            sandbox=True,
        ).id
        for n in range(count)
    ]
    worker = bs.worker(webhooks=False, poll_interval=0.05).start()
    try:
        deadline = time.monotonic() + 15
        while not all(bs.get_message(tenant, i).status.value == "delivered" for i in ids):
            assert time.monotonic() < deadline, "sandbox messages were not delivered"
            time.sleep(0.05)
    finally:
        worker.stop()


def test_report_prints_what_bharatsend_report_prints(
    bs: BharatSend,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deliver_sandbox_messages(bs, tenant, 3)
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    period = ["--since", since, "--until", until, "--tenant", tenant]

    out, _err = call("bharatsend_report", *period, "--format", "json")
    data = json.loads(out)
    total = data["rows"][0]
    assert (total["dimension"], total["messages"], total["delivered"]) == ("all", 3, 3)
    assert data["tenant_id"] == tenant
    by = {(r["dimension"], r["key"]): r for r in data["rows"][1:]}
    assert by[("route", "sandbox")]["delivered"] == 3
    assert by[("template", TEMPLATE)]["messages"] == 3

    for name in [n for n in os.environ if n.startswith("BHARATSEND_")]:
        monkeypatch.delenv(name)
    url = runtime.config().core.database_url
    for fmt in ("table", "csv", "json"):
        out, err = call("bharatsend_report", *period, "--format", fmt)
        assert err == ""
        capsys.readouterr()
        assert bharatsend_main(["report", "--database-url", url, *period, "--format", fmt]) == 0
        assert out == capsys.readouterr().out, fmt
    assert out.startswith("{")
    out, _err = call("bharatsend_report", *period)  # the table by default
    assert out.startswith(f"messages created {since} .. {until} (tenant {tenant})")


def test_report_defaults_to_the_last_24_hours_of_all_tenants() -> None:
    out, _err = call("bharatsend_report", "--format", "csv")
    assert out.splitlines()[0].startswith("dimension,key,messages,delivered,failed,pending")
    assert out.splitlines()[1].startswith("all,")
    data = json.loads(call("bharatsend_report", "--since", "7d", "--format", "json")[0])
    assert data["tenant_id"] is None
    assert datetime.fromisoformat(data["until"]) - datetime.fromisoformat(data["since"]) == (
        timedelta(days=7)
    )


def test_report_refuses_bad_periods() -> None:
    error, _out, _err = fails("bharatsend_report", "--since", "yesterday")
    assert str(error).startswith("invalid_argument (since): --since takes an ISO 8601")
    assert error.returncode == 2
    error, _out, _err = fails("bharatsend_report", "--since", "2026-01-02", "--until", "2026-01-01")
    assert str(error) == "invalid_argument (since): --since must be before --until"
    error, _out, _err = fails("bharatsend_report", "--format", "xml")
    assert "invalid choice" in str(error)


# ----------------------------------------------------------------------------- worker

WORKER_SETTINGS = """\
from tests.django_project.settings import *  # noqa: F403

BHARATSEND = {{
    **BHARATSEND,  # noqa: F405
    "ROUTES": [{{"name": "sim", "host": "127.0.0.1", "port": {port}, "system_id": "acme",
                "password": "secret"}}],
}}
"""


# The worker process has its own database (tmp_path), so this test needs no Django
# test database: the closest django_db mark overrides the module's transactional one.
@pytest.mark.django_db(transaction=False)
def test_worker_process_applies_routes_delivers_and_stops_on_sigterm(tmp_path: Path) -> None:
    sim = SmscSimulator(credentials={"acme": "secret"}, receipt_delay=0.01).start()
    try:
        run_worker_process(tmp_path, sim)
    finally:
        sim.stop()


def run_worker_process(tmp_path: Path, sim: SmscSimulator) -> None:
    (tmp_path / "worker_settings.py").write_text(WORKER_SETTINGS.format(port=sim.port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BHARATSEND_")}
    env.update(
        BHARATSEND_DJANGO_TEST_DIR=str(tmp_path),  # the database: tmp_path / "app.db"
        DJANGO_SETTINGS_MODULE="worker_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "django"]
    done = subprocess.run(
        [*command, "bharatsend_migrate"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "schema is up to date" in done.stdout

    bs = BharatSend.from_url(
        f"sqlite:///{tmp_path / 'app.db'}", environ={}, key_pepper=settings.BHARATSEND["KEY_PEPPER"]
    )
    # Pinned to one CPU where the platform allows: the option end to end.
    pin = ["--cpus", str(max(os.sched_getaffinity(0)))] if hasattr(os, "sched_getaffinity") else []
    proc = subprocess.Popen(
        [*command, "bharatsend_worker", "--poll-interval", "0.1", "--receipt-threads", "2", *pin],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        tenant = bs.create_tenant("Acme").id
        bs.register_entity(tenant, pe_id=PE)
        bs.register_header(tenant, "ACMEOT", category="transactional")
        bs.register_template(
            tenant, template_id=TEMPLATE, header="ACMEOT", category="transactional", body=BODY
        )
        bs.top_up(tenant, paise=1000)
        # One sandbox message (the built-in simulator) and one live one (route "sim").
        deliver = [
            bs.send(
                tenant,
                phone_number="+919876543210",
                content="Your OTP is 482913. Valid for 5 minutes.",
                dlt_template_id=TEMPLATE,
                sandbox=sandbox,
            ).id
            for sandbox in (True, False)
        ]
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [bs.get_message(tenant, i).status.value for i in deliver]
            if statuses == ["delivered", "delivered"] or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert statuses == ["delivered", "delivered"], (statuses, proc.poll())
        assert [m.route for m in (bs.get_message(tenant, i) for i in deliver)] == [
            "sandbox",
            "sim",
        ]
        assert len(sim.submits) == 1  # the live message, on the route BHARATSEND["ROUTES"] gave

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - started < 10
        assert proc.returncode == 0, err
        assert "routes 1 added, 0 updated; webhooks on" in out
        if pin:
            assert f"pinned to CPUs [{pin[1]}]" in out
        assert "stopped: 2 sent" in out
        assert "Traceback" not in err
        assert bs.worker_heartbeats() == []  # it left cleanly
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        bs.close()
