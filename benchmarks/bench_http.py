"""``POST /v1/sms/send`` through the Flask app under waitress, against the facade's call rate.

For each database (a SQLite file; PostgreSQL when a URL is given or
BHARATSEND_TEST_POSTGRES_URL is set), in the same run:

- HTTP: the Flask integration (``bharatsend_flask.BharatSend``) served by
  waitress (threads) in a separate process; C client threads in this process,
  each on its own keep-alive connection, post N OTP requests with a Bearer
  key; every answer must be 200 ``accepted``. Requests/s and latency
  percentiles.
- In-process API: ``ApiApp.handle`` called directly (JSON parsing, auth,
  validation, rendering; no sockets, no WSGI), single thread.
- Baseline: ``BharatSend.send`` called directly with the same messages,
  single thread: the rate the facade sustains without any HTTP.

waitress is the documented server here because it is pure Python, runs on
every platform and needs no process manager; gunicorn with ``--threads`` works
the same way (``bharatsend_flask`` is a plain WSGI app).

Run: ``python benchmarks/bench_http.py [--requests N] [--clients C] [--threads T]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import TEMPLATE, machine, on_each_database, phone, setup, text
from bharatsend_core import BharatSend, Settings
from bharatsend_core.adapters.sqlalchemy import SqlStorage
from bharatsend_core.http import ApiApp, ApiConfig, ApiRequest

PEPPER = "bench-pepper-0123456789abcdef"
SCOPES = ["sms:send", "sms:read"]


def flask_app(url: str, schema: str | None) -> Any:
    """The Flask app with the integration, as a host application would build it."""
    from flask import Flask

    from bharatsend_flask import BharatSend as FlaskBharatSend

    storage = SqlStorage.from_url(url, schema=schema) if schema else SqlStorage.from_url(url)
    settings = Settings.resolve({}, key_pepper=PEPPER, number_limit=0)
    app = Flask("bench")
    app.config["BHARATSEND_KEY_RATE"] = 0.0  # measure the API, not the limiter
    FlaskBharatSend(app, facade=BharatSend(storage=storage, settings=settings))
    return app


def gunicorn_app() -> Any:
    """``gunicorn 'bench_http:gunicorn_app()'``: the app from BENCH_URL / BENCH_SCHEMA."""
    return flask_app(os.environ["BENCH_URL"], os.environ.get("BENCH_SCHEMA") or None)


def serve(url: str, schema: str | None, port: int, threads: int) -> None:
    """The server process: the Flask app on waitress until killed."""
    import waitress

    app = flask_app(url, schema)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" notes
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, _quiet=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(n: int, prefix: str) -> bytes:
    return json.dumps(
        {
            "phone_number": phone(n),
            "content": text(n),
            "dlt_template_id": TEMPLATE,
            "header": "ACMEOT",
            "client_message_id": f"{prefix}{n}",
        }
    ).encode()


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the waitress server did not come up")


def run_http(port: int, key: str, count: int, clients: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    lock = threading.Lock()

    def client(numbers: range) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for n in numbers:
            started = time.perf_counter()
            conn.request("POST", "/v1/sms/send", body(n, "h"), headers)
            answer = conn.getresponse()
            data = answer.read()
            mine.append(time.perf_counter() - started)
            if answer.status != 200:
                raise SystemExit(f"HTTP {answer.status}: {data[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    share = -(-count // clients)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [
            pool.submit(client, range(i * share, min(count, (i + 1) * share)))
            for i in range(clients)
        ]
        for future in futures:
            future.result()
    return time.perf_counter() - started, sorted(latencies)


def run_handle(bs: BharatSend, key: str, count: int) -> float:
    api = ApiApp(bs, ApiConfig(key_rate=0.0))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [body(n, "a") for n in range(count)]
    started = time.perf_counter()
    for data in bodies:
        answer = api.handle(ApiRequest("POST", "/v1/sms/send", headers, data))
        assert answer.status == 200, answer.body[:200]
    return time.perf_counter() - started


def run_facade(bs: BharatSend, tenant_id: str, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        bs.send(
            tenant_id,
            phone_number=phone(n),
            content=text(n),
            dlt_template_id=TEMPLATE,
            header="ACMEOT",
            client_message_id=f"f{n}",
        )
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="server threads (per worker)")
    parser.add_argument("--server", choices=("waitress", "gunicorn"), default="waitress")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--postgres", default=os.environ.get("BHARATSEND_TEST_POSTGRES_URL"))
    parser.add_argument("--serve", nargs=4, metavar=("URL", "SCHEMA", "PORT", "THREADS"))
    args = parser.parse_args()
    if args.serve:
        url, schema, port, threads = args.serve
        serve(url, None if schema == "-" else schema, int(port), int(threads))
        return

    print(f"machine: {machine()}")
    print(f"POST /v1/sms/send: {args.requests} requests, {args.clients} clients")

    server_name = (
        f"gunicorn {args.workers}x{args.threads} gthread"
        if args.server == "gunicorn"
        else f"waitress {args.threads} threads"
    )

    def run(kind: str, storage: SqlStorage) -> None:
        bs, tenant_id = setup(storage, credits=100 * args.requests * 3)
        bs = BharatSend(storage=storage, settings=Settings.resolve({}, key_pepper=PEPPER,
                                                                    number_limit=0))  # fmt: skip
        key = bs.create_api_key(tenant_id, scopes=SCOPES).secret
        url = str(storage.engine.url.render_as_string(hide_password=False))
        schema = storage.schema or "-"
        port = free_port()
        if args.server == "gunicorn":
            command = [
                sys.executable, "-m", "gunicorn", "--workers", str(args.workers),
                "--threads", str(args.threads), "--worker-class", "gthread",
                "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                "bench_http:gunicorn_app()",
            ]  # fmt: skip
        else:
            command = [sys.executable, __file__, "--serve", url, schema, str(port),
                       str(args.threads)]  # fmt: skip
        env = {**os.environ, "BENCH_URL": url, "BENCH_SCHEMA": "" if schema == "-" else schema}
        server = subprocess.Popen(command, cwd=Path(__file__).parent, env=env)
        try:
            wait_ready(port)
            run_http(port, key, min(200, args.requests), args.clients)  # warm-up
            elapsed, latencies = run_http(port, key, args.requests, args.clients)
        finally:
            server.terminate()
            server.wait(timeout=10)
        http_rate = args.requests / elapsed
        handle_rate = args.requests / run_handle(bs, key, args.requests)
        facade_rate = args.requests / run_facade(bs, tenant_id, args.requests)
        print(
            f"[{kind}] HTTP (Flask + {server_name}): {http_rate:,.0f} req/s, "
            f"p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms"
        )
        print(f"[{kind}] ApiApp.handle in-process: {handle_rate:,.0f} req/s")
        print(f"[{kind}] baseline BharatSend.send: {facade_rate:,.0f} msg/s")
        print(
            f"[{kind}] ratio HTTP/facade: {http_rate / facade_rate:.2f}x, "
            f"in-process API/facade: {handle_rate / facade_rate:.2f}x"
        )
        bs.close()

    on_each_database(args.postgres, "bench_http.db", run)


if __name__ == "__main__":
    main()
