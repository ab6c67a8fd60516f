"""``bharatsend demo`` end to end: a real process, a real HTTP send, real signed webhooks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_START = "import sys; from bharatsend_core.demo import main; sys.exit(main(sys.argv[1:]))"
_CURL = re.compile(
    r"curl -s (?P<api>http://\S+)/v1/sms/send -H \"Authorization: Bearer (?P<key>bs_test_\S+)\""
    r".*\"dlt_template_id\": \"(?P<template>\d+)\""
)
#: Digits only the test sends: they must never appear in the demo's output.
_OTP = "715204"


class DemoProcess:
    """The demo as a subprocess; stdout and stderr read on threads, lines timestamped."""

    def __init__(self, workdir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BHARATSEND_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _START, *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, is_stdout: bool) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            with self._cond:
                if is_stdout:
                    self.lines.append((time.monotonic(), line))
                else:
                    self.errors.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, found: Callable[[str], bool], timeout: float) -> tuple[float, str]:
        """The first stdout line ``found`` accepts, with the time it was read."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, line in self.lines:
                    if found(line):
                        return at, line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._alive()):
                    raise AssertionError(
                        f"not seen within {timeout} s; stdout:\n{self.output()}\n"
                        f"stderr:\n{chr(10).join(self.errors)}"
                    )
                self._cond.wait(min(left, 0.2))

    def _alive(self) -> bool:
        return any(r.is_alive() for r in self._readers)

    def output(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then the exit code (``subprocess.TimeoutExpired`` if it hangs)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., DemoProcess]]:
    started: list[DemoProcess] = []

    def start(*extra: str) -> DemoProcess:
        demo = DemoProcess(
            tmp_path,
            "--database",
            str(tmp_path / "demo.db"),
            "--port",
            "0",
            "--webhook-port",
            "0",
            "--smsc-port",
            "0",
            *extra,
        )
        started.append(demo)
        return demo

    try:
        yield start
    finally:
        for demo in started:
            demo.kill()


def _request(url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _curl(demo: DemoProcess) -> re.Match[str]:
    _, line = demo.wait_for(lambda text: _CURL.search(text) is not None, timeout=60)
    match = _CURL.search(line)
    assert match is not None
    return match


def test_demo_sends_and_reports_delivery_with_verified_webhooks(
    start_demo: Callable[..., DemoProcess],
) -> None:
    demo = start_demo()
    curl = _curl(demo)
    api, key, template_id = curl["api"], curl["key"], curl["template"]
    assert template_id == "1207161234567890123"
    # The banner's next line may still be on its way through the pipe.
    status_line = f'/v1/sms/<id> -H "Authorization: Bearer {key}"'
    demo.wait_for(lambda line: status_line in line, timeout=10)

    sent_at = time.monotonic()
    status, reply = _request(
        f"{api}/v1/sms/send",
        key,
        {
            "phone_number": "+919876543210",
            "content": f"Your OTP is {_OTP}. Valid for 5 minutes.",
            "dlt_template_id": template_id,
        },
    )
    assert status == 200
    message = reply["data"]
    assert message["status"] == "accepted"
    message_id = message["id"]

    def webhook(kind: str) -> Callable[[str], bool]:
        return lambda line: (
            line.startswith("webhook")
            and kind in line.split()
            and message_id in line.split()
            and line.endswith("signature verified")
        )

    sent_line_at, _ = demo.wait_for(webhook("sms.sent"), timeout=10)
    delivered_at, _ = demo.wait_for(webhook("sms.delivered"), timeout=10)
    latency = delivered_at - sent_at
    print(f"\nsend -> sms.delivered webhook line: {latency * 1000:.0f} ms")
    assert sent_line_at <= delivered_at
    lines = demo.output().splitlines()
    ours = [line.split()[1] for line in lines if line.startswith("webhook") and message_id in line]
    assert ours.index("sms.sent") < ours.index("sms.delivered")
    assert "INVALID" not in demo.output()

    status, reply = _request(f"{api}/v1/sms/{message_id}", key)
    assert status == 200
    assert reply["data"]["status"] == "delivered"
    timeline = reply["data"]["timeline"]
    assert timeline[0]["status"] == "accepted"
    assert timeline[-1]["status"] == "delivered"

    assert demo.stop() == 0
    assert "demo stopped" in demo.output()
    # Message content (the OTP digits) is never printed.
    assert _OTP not in demo.output()
    assert not any(_OTP in line for line in demo.errors)


def test_demo_reruns_reuse_the_tenant_and_replace_the_endpoint(
    start_demo: Callable[..., DemoProcess], tmp_path: Path
) -> None:
    from bharatsend_core.app import BharatSend
    from bharatsend_core.demo import DEMO_PEPPER

    first = start_demo()
    first_key = _curl(first)["key"]
    assert first.stop() == 0

    second = start_demo()
    curl = _curl(second)
    assert curl["key"] != first_key  # a fresh key every run
    status, reply = _request(f"{curl['api']}/v1/balance", curl["key"])
    assert status == 200
    assert reply["data"]["available_paise"] == 100_000  # topped up once, not twice
    assert second.stop() == 0

    bs = BharatSend.from_url(
        f"sqlite:///{tmp_path / 'demo.db'}", environ={}, key_pepper=DEMO_PEPPER
    )
    try:
        tenants = bs.list_tenants()
        assert [t.name for t in tenants] == ["Demo"]
        tenant = tenants[0].id
        assert bs.balance(tenant).available_paise == 100_000  # topped up once
        assert len(bs.list_templates(tenant)) == 2
        endpoints = bs.list_webhook_endpoints(tenant)
        assert len(endpoints) == 2
        assert not any(e.enabled for e in endpoints)  # each run disables its own on exit
        assert len(bs.list_api_keys(tenant)) == 2
        assert [r.name for r in bs.list_routes()] == ["demo-sandbox"]
    finally:
        bs.close()


def test_demo_fresh_starts_over(start_demo: Callable[..., DemoProcess], tmp_path: Path) -> None:
    first = start_demo()
    tenant_line = first.wait_for(lambda line: line.strip().startswith("tenant "), timeout=60)[1]
    assert first.stop() == 0

    second = start_demo("--fresh")
    again = second.wait_for(lambda line: line.strip().startswith("tenant "), timeout=60)[1]
    assert again != tenant_line  # a new tenant id: the old database is gone
    assert second.stop() == 0
