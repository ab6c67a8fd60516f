"""``flask bharatsend ...``: the commands the Flask integration adds, on the app's facade."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from bharatsend_flask import BharatSend, facade

PEPPER = "a-flask-cli-pepper-of-sufficient-length"
PE = "1201159123456789012"
TEMPLATE = "1207161234567890123"
CSV = (
    "PE ID,Template ID,Template Name,Content Type,Header,Template Content,Status\r\n"
    f'{PE},{TEMPLATE},otp,Transactional,ACMEOT,"Your OTP is {{#var#}}. Valid for 5 minutes.",'
    "Approved\r\n"
)


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = Flask("cli_app")
    app.config.update(
        BHARATSEND_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        BHARATSEND_KEY_PEPPER=PEPPER,
        BHARATSEND_ROUTES=[
            {"name": "agg1", "host": "127.0.0.1", "port": 2775, "system_id": "acme",
             "password": "secret", "categories": ["transactional"]},
        ],
    )  # fmt: skip
    BharatSend(app)
    return app


def invoke(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=["bharatsend", *args])
    return result.exit_code, result.output


def test_db_keys_templates_and_routes_commands(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    code, out = invoke(runner, "db", "upgrade")
    assert code == 0, out
    with app.app_context():
        tenant = facade().create_tenant("Acme")

    code, out = invoke(runner, "keys", "create", "--tenant", tenant.id, "--scope", "sms:send")
    assert code == 0, out
    key = out.strip().splitlines()[0]
    assert key.startswith("bs_live_")
    with app.app_context():
        principal = facade().authenticate(key)
    assert principal.tenant.id == tenant.id

    code, out = invoke(runner, "keys", "list", "--tenant", tenant.id)
    assert code == 0
    assert "active" in out
    assert key not in out  # never the secret again
    code, out = invoke(runner, "keys", "revoke", "--tenant", tenant.id, principal.key.id)
    assert code == 0
    assert "revoked" in out

    path = tmp_path / "templates.csv"
    path.write_text(CSV)
    code, out = invoke(runner, "templates", "import", "--tenant", tenant.id, str(path))
    assert code == 0, out
    assert "created 1" in out
    code, out = invoke(runner, "templates", "list", "--tenant", tenant.id)
    assert TEMPLATE in out

    code, out = invoke(runner, "routes", "sync")
    assert (code, out.strip()) == (0, "routes: 1 added, 0 updated")
    code, out = invoke(runner, "routes", "sync")
    assert out.strip() == "routes: 0 added, 1 updated"
    code, out = invoke(runner, "routes", "list")
    assert "agg1  127.0.0.1:2775  enabled" in out


def test_an_error_is_one_line_and_exit_code_1(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert invoke(runner, "db", "upgrade")[0] == 0
    with app.app_context():
        tenant = facade().create_tenant("Acme")
    code, out = invoke(runner, "keys", "revoke", "--tenant", tenant.id, "nosuchkey")
    assert code == 1
    assert "error: api_key_not_found" in out
    assert "Traceback" not in out


def test_an_unknown_setting_is_refused_by_name(tmp_path: Path) -> None:
    app = Flask("bad")
    app.config["BHARATSEND_DATABSE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(Exception, match="BHARATSEND_DATABSE_URL"):
        BharatSend(app)


def test_worker_refuses_a_bad_receipt_thread_count(app: Flask) -> None:
    runner = app.test_cli_runner()
    code, out = invoke(runner, "worker", "--receipt-threads", "9")
    assert code == 1
    assert "error: invalid_argument (receipt_threads)" in out


def test_worker_refuses_a_bad_cpu_list_before_starting(app: Flask) -> None:
    runner = app.test_cli_runner()
    code, out = invoke(runner, "worker", "--cpus", "two")
    assert code == 1
    assert "error: invalid_argument (cpus)" in out
