"""``bharatsend report`` over real traffic: sandbox messages delivered by the SMSC simulator."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.cli import main

PEPPER = "a-test-pepper-of-sufficient-length"
PE = "1201159123456789012"
TEMPLATE = "1207161234567890123"
BODY = "Your OTP is {#var#}. Valid for 5 minutes."


@pytest.fixture
def traffic(tmp_path: Path) -> tuple[str, str]:
    """A SQLite file with 3 delivered sandbox messages and 1 refused by the carrier route."""
    url = f"sqlite:///{tmp_path / 'report.db'}"
    bs = BharatSend.from_url(url, key_pepper=PEPPER, environ={})
    bs.migrate()
    tenant = bs.create_tenant("Acme")
    bs.register_entity(tenant.id, pe_id=PE)
    bs.register_header(tenant.id, "ACMEOT", category="transactional")
    bs.register_template(
        tenant.id, template_id=TEMPLATE, header="ACMEOT", category="transactional", body=BODY
    )
    bs.top_up(tenant.id, paise=10_000)
    ids = [
        bs.send(
            tenant.id,
            phone_number=f"+91987654321{n}",
            content=f"Your OTP is {n}. Valid for 5 minutes.",
            dlt_template_id=TEMPLATE,
            sandbox=True,
        ).id
        for n in range(3)
    ]
    worker = bs.worker(sandbox_carrier=True, webhooks=False).start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all(bs.get_message(tenant.id, i).status.value == "delivered" for i in ids):
                break
            time.sleep(0.05)
        else:
            pytest.fail("sandbox messages were not delivered")
    finally:
        worker.stop()
        bs.close()
    return url, tenant.id


def test_report_counts_delivery_and_latency_in_every_format(
    traffic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, tenant_id = traffic
    assert main(["report", "--database-url", url, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    total = data["rows"][0]
    assert (total["dimension"], total["messages"], total["delivered"]) == ("all", 3, 3)
    assert total["delivery_rate"] == 1.0
    assert total["p50_ms"] is not None
    assert total["p50_ms"] <= total["p99_ms"]
    by = {(r["dimension"], r["key"]): r for r in data["rows"][1:]}
    assert by[("route", "sandbox")]["delivered"] == 3
    assert by[("template", TEMPLATE)]["messages"] == 3
    assert sum(r["messages"] for (d, _k), r in by.items() if d == "operator") == 3

    assert main(["report", "--database-url", url, "--tenant", tenant_id, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["dimension"] == "all"
    assert rows[0]["delivered"] == "3"

    assert main(["report", "--database-url", url, "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "100.0%" in out
    assert "sandbox" in out


def test_report_of_an_empty_period_and_bad_dates(
    traffic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _tenant = traffic
    code = main(["report", "--database-url", url, "--since", "2020-01-01", "--until", "2020-02-01",
                 "--json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"][0]["messages"] == 0
    assert data["rows"][0]["delivery_rate"] is None

    assert main(["report", "--database-url", url, "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid_argument: --since")
    assert "Traceback" not in err
    assert main(["report", "--database-url", url, "--since", "1h", "--until", "2h"]) == 2
