"""``bharatsend demo``: the whole stack in one process, ready for a first ``curl``.

::

    bharatsend demo [--database bharatsend-demo.db] [--host 127.0.0.1] [--port 8080]
                    [--webhook-port 8081] [--smsc-port 0] [--fresh]

One process runs:

- a SQLite database file (migrated on every start);
- the SMSC simulator as the sandbox carrier (stored as the sandbox route
  ``demo-sandbox``, re-pointed at the simulator's port on every start);
- the HTTP API on ``--host``/``--port``;
- the dispatch worker with its webhook delivery thread;
- a small webhook receiver on ``127.0.0.1:--webhook-port/webhooks`` that
  verifies every delivery with :func:`bharatsend_core.webhooks.verify` and
  prints one line per event (type, message id, verification; never content).

It provisions (idempotently, so re-runs reuse everything) the tenant ``Demo``
with a DLT entity, the header ``BSDEMO``, an OTP template and at least
INR 1,000 of credits; disables the webhook endpoints of earlier runs and
registers the current receiver; and issues a fresh **test** key (``bs_test_…``):
its messages are sandbox messages, which only ever reach the simulator.
Then it prints a ready-to-paste ``curl`` line and serves until SIGINT/SIGTERM.

The key pepper is a fixed, public demo value: a demo database is never a
place for real keys or real traffic.
"""

from __future__ import annotations

import argparse
import http.server
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bharatsend_core.app import BharatSend
    from bharatsend_core.cli import _Report
    from bharatsend_core.domain.tenants import Tenant

__all__ = ["add_demo_parser", "main", "run_demo"]

#: Public and fixed on purpose: the demo database only ever holds demo keys.
DEMO_PEPPER: Final = "bharatsend-demo-pepper/not-a-secret/never-use-in-production"
DEMO_TENANT: Final = "Demo"
DEMO_PE_ID: Final = "1201159123456789012"
DEMO_ENTITY_NAME: Final = "BharatSend Demo Pvt Ltd"
DEMO_HEADER: Final = "BSDEMO"
#: (template id, name, body): all transactional, linked to :data:`DEMO_HEADER`.
DEMO_TEMPLATES: Final = (
    ("1207161234567890123", "otp", "Your OTP is {#var#}. Valid for 5 minutes."),
    (
        "1207161234567890124",
        "order-shipped",
        "Your order {#var#} has been shipped and will arrive by {#var#}.",
    ),
)
OTP_TEMPLATE_ID: Final = DEMO_TEMPLATES[0][0]
DEMO_SCOPES: Final = ("sms:send", "sms:read", "balance:read", "templates:write", "webhooks:write")
#: Top up to at least this (INR 1,000); sandbox messages are free, so it stays there.
DEMO_BALANCE_PAISE: Final = 100_000
DEMO_ROUTE: Final = "demo-sandbox"
_SMSC_SYSTEM_ID: Final = "bsdemo"
_SMSC_PASSWORD: Final = "bsdemo"  # noqa: S105 - the loopback simulator's
#: Seconds between submit and delivery receipt. Long enough that ``sms.sent``
#: is delivered before ``sms.delivered`` exists, short enough to feel instant.
RECEIPT_DELAY: Final = 0.25
#: The worker's idle poll: also how long a new webhook event may wait (default 0.5 s).
POLL_INTERVAL: Final = 0.1
WEBHOOK_PATH: Final = "/webhooks"
_SAMPLE_PHONE: Final = "+919876543210"
_SAMPLE_CONTENT: Final = "Your OTP is 482913. Valid for 5 minutes."


# ----------------------------------------------------------------------------- argparse


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default="bharatsend-demo.db",
        metavar="PATH",
        help="the demo's SQLite file (default: bharatsend-demo.db in the current directory)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP API address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP API port (8080; 0: any free)")
    parser.add_argument(
        "--webhook-port",
        type=int,
        default=8081,
        help="port of the local webhook receiver on 127.0.0.1 (8081; 0: any free)",
    )
    parser.add_argument(
        "--smsc-port", type=int, default=0, help="SMSC simulator port (default 0: any free)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete the demo database first and start over"
    )


def add_demo_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``bharatsend demo`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run API, worker, sandbox SMSC and a webhook receiver in one process",
        description="The whole stack in one process on a SQLite file: the HTTP API, the"
        " dispatch and webhook worker, the SMSC simulator as the sandbox carrier and a"
        " local webhook receiver that verifies signatures. Provisions a Demo tenant"
        " (reused on re-runs), prints a test API key and a curl line, and runs until"
        " SIGINT/SIGTERM. --database-url, if given, replaces --database.",
    )
    _add_options(parser)
    parser.set_defaults(handler=_run_demo_command)


def _run_demo_command(args: argparse.Namespace) -> _Report:
    from bharatsend_core.cli import _Report

    code = run_demo(args)
    return _Report(
        {"stopped": True, "exit_code": code},
        "demo stopped" if code == 0 else "demo failed",
        exit_code=code,
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bharatsend demo",
        description="BharatSend in one process: API, worker, sandbox SMSC, webhook receiver.",
    )
    _add_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo standalone (``python -c "from bharatsend_core.demo import main; main()"``)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    return run_demo(args)


# ----------------------------------------------------------------------------- output


class _Printer:
    """Whole lines to a stream from any thread, flushed at once (a pipe sees them live)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, line: str = "") -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def _safe(value: object) -> str:
    """A short, printable token for one output line (ids and event types only)."""
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in text[:64]) or "-"


# ----------------------------------------------------------------------------- receiver


class WebhookReceiver:
    """A tiny webhook endpoint: verify each delivery, print one line, answer 200 (401 if bad)."""

    def __init__(self, port: int, emit: Callable[[str], None]) -> None:
        self._emit = emit
        #: The endpoint's signing secret; set once the endpoint is registered.
        self.secret: str | None = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "bharatsend-demo-receiver"

            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the receiver prints its own line per event

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL to register as the webhook endpoint."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-webhook-receiver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def _handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        from bharatsend_core.domain.errors import WebhookSignatureInvalid
        from bharatsend_core.webhooks import verify

        if urlsplit(request.path).path != WEBHOOK_PATH:
            _answer(request, 404)
            return
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = request.rfile.read(max(0, min(length, 1_000_000)))
        headers = dict(request.headers.items())
        try:
            if self.secret is None:
                raise WebhookSignatureInvalid("no endpoint secret yet", field="webhook-signature")
            event = verify(self.secret, headers, body)
        except WebhookSignatureInvalid as e:
            event_id = _safe(request.headers.get("webhook-id"))
            self._emit(f"webhook  {event_id}  signature INVALID ({e.message})")
            _answer(request, 401)
            return
        data = event.get("data")
        message_id = data.get("id") if isinstance(data, dict) else None
        self._emit(
            f"webhook  {_safe(event.get('type')):<13}  {_safe(message_id)}  signature verified"
        )
        _answer(request, 200)


def _answer(request: http.server.BaseHTTPRequestHandler, status: int) -> None:
    request.send_response(status)
    request.send_header("Content-Length", "0")
    request.end_headers()


# ----------------------------------------------------------------------------- provisioning


def _tenant(bs: BharatSend) -> Tenant:
    from bharatsend_core.domain.tenants import TenantStatus

    for tenant in bs.list_tenants():
        if tenant.name == DEMO_TENANT:
            if tenant.status is not TenantStatus.ACTIVE:
                return bs.activate_tenant(tenant.id)
            return tenant
    return bs.create_tenant(DEMO_TENANT)


def _provision(bs: BharatSend) -> Tenant:
    """The Demo tenant with its DLT entity, header, templates and credits (idempotent)."""
    tenant = _tenant(bs)
    if not any(e.pe_id == DEMO_PE_ID for e in bs.list_entities(tenant.id)):
        bs.register_entity(tenant.id, DEMO_PE_ID, DEMO_ENTITY_NAME)
    if not any(h.sender_id == DEMO_HEADER for h in bs.list_headers(tenant.id)):
        bs.register_header(tenant.id, DEMO_HEADER, category="transactional", entity_id=DEMO_PE_ID)
    existing = {t.template_id: t for t in bs.list_templates(tenant.id)}
    for template_id, name, body in DEMO_TEMPLATES:
        found = existing.get(template_id)
        if found is None:
            bs.register_template(
                tenant.id,
                template_id=template_id,
                body=body,
                category="transactional",
                header=DEMO_HEADER,
                entity_id=DEMO_PE_ID,
                name=name,
            )
        elif not found.active:
            bs.update_template(tenant.id, template_id, active=True)
    available = bs.balance(tenant.id).available_paise
    if available < DEMO_BALANCE_PAISE:
        # The reference names the state it tops up from: two runs starting from the
        # same balance (at once, or one killed half-way) add the credits once.
        bs.top_up(
            tenant.id,
            DEMO_BALANCE_PAISE - available,
            reference=f"bharatsend-demo:{available}->{DEMO_BALANCE_PAISE}",
        )
    return tenant


def _point_route_at(bs: BharatSend, port: int) -> None:
    """Store the sandbox route ``demo-sandbox`` aimed at this run's simulator."""
    from bharatsend_core.domain.errors import RouteNotFound

    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": _SMSC_SYSTEM_ID,
        "password": _SMSC_PASSWORD,
        "sandbox": True,
        "enabled": True,
        "priority": 1000,
    }
    try:
        bs.get_route(DEMO_ROUTE)
    except RouteNotFound:
        bs.add_route(DEMO_ROUTE, **settings)
    else:
        bs.update_route(DEMO_ROUTE, **settings)


def _is_demo_endpoint(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.path == WEBHOOK_PATH


def _disable_quietly(bs: BharatSend, tenant_id: str, endpoint_id: str) -> None:
    from bharatsend_core.domain.errors import BharatSendError

    with suppress(BharatSendError):  # the next run disables it anyway
        bs.disable_webhook_endpoint(tenant_id, endpoint_id)


# ----------------------------------------------------------------------------- run


class _DemoError(Exception):
    """A start-up failure explained in one line (the port is taken, ...)."""


def _database_url(options: argparse.Namespace) -> str:
    url: str | None = getattr(options, "database_url", None)
    path = Path(options.database)
    if url:
        if options.fresh:
            raise _DemoError("--fresh deletes the --database file; it cannot clear --database-url")
        return url
    if options.fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path.resolve()}"


def _listening(what: str, host: str, port: int, flag: str, start: Callable[[], Any]) -> Any:
    try:
        return start()
    except OSError as e:
        raise _DemoError(
            f"cannot listen on {host}:{port} for the {what}: {e.strerror or e}"
            f" (choose another with {flag}, 0 for any free port)"
        ) from None


def run_demo(options: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """Run the demo until SIGINT/SIGTERM (or ``stop`` is set); 0 after a clean stop.

    ``options`` carries ``database``, ``host``, ``port``, ``webhook_port``,
    ``smsc_port`` and ``fresh`` (and optionally ``database_url``). Start-up
    errors are printed to stderr: 2 for refused input, 1 otherwise.
    """
    from bharatsend_core.domain.errors import BharatSendError, ClientError

    done = stop or threading.Event()
    restore = _install_signals(done)
    try:
        _serve(options, done, _Printer(sys.stdout))
    except _DemoError as e:
        _Printer(sys.stderr)(f"error: {e}")
        return 1
    except BharatSendError as e:
        _Printer(sys.stderr)(f"error: {e.code}: {e.message}")
        return 2 if isinstance(e, ClientError) else 1
    finally:
        restore()
    return 0


def _install_signals(done: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``done`` (main thread only); returns what restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _serve(options: argparse.Namespace, done: threading.Event, out: _Printer) -> None:
    from bharatsend_core.adapters.smpp.simulator import SmscSimulator
    from bharatsend_core.app import BharatSend
    from bharatsend_core.http import ApiApp, ApiServer

    url = _database_url(options)
    with ExitStack() as stack:
        bs = BharatSend.from_url(url, key_pepper=DEMO_PEPPER, webhooks_allow_private=True)
        stack.callback(bs.close)
        bs.migrate()
        tenant = _provision(bs)

        simulator = SmscSimulator(
            port=options.smsc_port,
            credentials={_SMSC_SYSTEM_ID: _SMSC_PASSWORD},
            receipt_delay=RECEIPT_DELAY,
            record_limit=1000,
        )
        _listening("SMSC simulator", "127.0.0.1", options.smsc_port, "--smsc-port", simulator.start)
        stack.callback(simulator.stop)
        _point_route_at(bs, simulator.port)

        receiver: WebhookReceiver = _listening(
            "webhook receiver",
            "127.0.0.1",
            options.webhook_port,
            "--webhook-port",
            lambda: WebhookReceiver(options.webhook_port, out),
        )
        stack.callback(receiver.stop)  # after the worker (LIFO): in-flight posts finish
        receiver.start()
        for endpoint in bs.list_webhook_endpoints(tenant.id):
            if endpoint.enabled and _is_demo_endpoint(endpoint.url):
                bs.disable_webhook_endpoint(tenant.id, endpoint.id)
        created = bs.add_webhook_endpoint(tenant.id, receiver.url, events=["sms.*"])
        receiver.secret = created.secret
        # Runs after the worker stopped (LIFO): nothing targets a dead port afterwards.
        stack.callback(_disable_quietly, bs, tenant.id, created.id)

        key = bs.create_api_key(tenant.id, scopes=DEMO_SCOPES, mode="test", name="demo")

        # The stored sandbox route is the carrier, so the facade starts no simulator of
        # its own. One webhook request at a time: events reach the receiver in order.
        worker = bs.worker(sandbox_carrier=True, webhooks=False, poll_interval=POLL_INTERVAL)
        worker.webhooks = bs.webhook_deliverer(owner=worker.owner, concurrency=1)
        worker.start()
        stack.callback(worker.stop)

        api = ApiApp(bs, heartbeats=lambda: 0.0 if worker.running else None)
        server: ApiServer = _listening(
            "HTTP API",
            options.host,
            options.port,
            "--port",
            lambda: ApiServer(api, options.host, options.port),
        )
        server.start()
        stack.callback(server.stop)

        _banner(
            out, url, options.host, server.port, simulator.port, receiver.url, tenant, key.secret
        )
        _banner_balance(out, bs, tenant.id)
        while not done.wait(0.5):
            pass
        out("stopping: HTTP API, worker, webhook receiver, SMSC simulator ...")
    out("demo stopped")


def _banner(
    out: _Printer,
    url: str,
    host: str,
    port: int,
    smsc_port: int,
    webhook_url: str,
    tenant: Tenant,
    key: str,
) -> None:
    api = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"  # noqa: S104
    auth = f'-H "Authorization: Bearer {key}"'
    body = (
        f'{{"phone_number": "{_SAMPLE_PHONE}", "content": "{_SAMPLE_CONTENT}",'
        f' "dlt_template_id": "{OTP_TEMPLATE_ID}"}}'
    )
    rows = [
        ("database", url),
        ("HTTP API", f"{api}  (OpenAPI: {api}/v1/openapi.json)"),
        ("worker", f"dispatch + webhooks, polling every {POLL_INTERVAL} s"),
        (
            "SMSC simulator",
            f"127.0.0.1:{smsc_port}  (sandbox route {DEMO_ROUTE}; receipts after"
            f" {RECEIPT_DELAY} s)",
        ),
        ("webhook receiver", f"{webhook_url}  (verifies signatures)"),
        ("tenant", f"{tenant.name} ({tenant.id})"),
        ("DLT", f"PE ID {DEMO_PE_ID}, header {DEMO_HEADER}"),
    ]
    rows.extend(
        (f"template {name}", f"{template_id}  {body_}")
        for template_id, name, body_ in DEMO_TEMPLATES
    )
    rows.append(("API key (test)", f"{key}  (sandbox: reaches only the simulator)"))
    width = max(len(label) for label, _ in rows)
    out("BharatSend demo is running. Ctrl-C stops it.")
    out()
    for label, value in rows:
        out(f"  {label:<{width}}  {value}")
    out()
    out("Send an OTP:")
    out()
    out(f"  curl -s {api}/v1/sms/send {auth} -H \"Content-Type: application/json\" -d '{body}'")
    out()
    out("Then follow it (the id is in the answer's data.id):")
    out()
    out(f"  curl -s {api}/v1/sms/<id> {auth}")
    out()


def _banner_balance(out: _Printer, bs: BharatSend, tenant_id: str) -> None:
    paise = bs.balance(tenant_id).available_paise
    rupees, rest = divmod(paise, 100)
    out(f"Credits: INR {rupees:,}.{rest:02d} available. Webhook events appear below.")
    out()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
