"""SQLite and PostgreSQL storage: the unit of work and its repositories, on SQLAlchemy Core.

Why Core and not the ORM: the accept path writes a message, its parts, its
timeline, a ledger reservation and a dispatch row per request, thousands of
times a second. Here every fixed statement is built and compiled once per
storage (:class:`_Statements`) and run on the driver's cursor
(``prepared.py``); rows map to domain values by hand (``_x_row`` /
``_x_from``), and batches go down as one ``executemany`` per table.

How the contract of ``ports/storage.py`` is kept:

- **One transaction per unit of work.** A unit of work checks out one pooled
  connection; SQLAlchemy begins on the first statement, ``commit()`` commits,
  and leaving the block rolls back whatever was not committed. On SQLite the
  transaction starts with ``BEGIN IMMEDIATE`` (the write lock up front), so
  concurrent writers queue on ``busy_timeout`` instead of failing with
  "database is locked" when a reader tries to become a writer.
- **Identity in unique constraints.** Inserts that can collide use
  ``INSERT ... ON CONFLICT DO NOTHING`` and read the row count: a duplicate
  raises the documented error without aborting a PostgreSQL transaction.
- **Ledger without races.** The tenant debit is a guarded
  ``UPDATE ... WHERE available >= :need``; the database re-checks the guard
  on the newest row version after any concurrent writer commits, so two
  transactions can never spend the same paise. Accounts are updated in one
  global order (tenant accounts, then system accounts, each by id), so
  two transfers never wait on each other's locks in a cycle.
- **Dispatch claims** use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
  concurrent workers take disjoint rows without blocking; on SQLite the single
  writer already serialises claims.
- **Errors** go through :func:`errors.translate` (``StorageUnavailable``,
  ``ConfigurationError``) with the driver error as ``__cause__``.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import sqlite3
import threading
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from bharatsend_core.adapters.signal import DispatchSignal, run_callbacks
from bharatsend_core.adapters.sqlalchemy.checkpoint import SAFETY_PAGES, WalCheckpointer
from bharatsend_core.adapters.sqlalchemy.doorbell import Doorbell, doorbell_path
from bharatsend_core.adapters.sqlalchemy.errors import reraise
from bharatsend_core.adapters.sqlalchemy.prepared import (
    Bulk,
    JsonBulk,
    Prepared,
    Session,
    encoder_for,
    json_dumps,
)
from bharatsend_core.adapters.sqlalchemy.tables import (
    UtcDateTime,
    api_keys,
    dispatch_queue,
    dlt_entities,
    dlt_headers,
    dlt_template_versions,
    dlt_templates,
    dlt_whitelist,
    ledger_accounts,
    ledger_transfers,
    message_events,
    message_parts,
    messages,
    receipts,
    routes,
    tenants,
    webhook_attempts,
    webhook_endpoints,
    webhook_outbox,
    worker_heartbeats,
)
from bharatsend_core.domain.dlt import Category, Entity, Header, Template
from bharatsend_core.domain.errors import (
    AlreadyExists,
    ApiKeyNotFound,
    BharatSendError,
    ConcurrentUpdate,
    ConfigurationError,
    DltRecordNotFound,
    MessageNotFound,
    RouteNotFound,
    StorageUnavailable,
    TenantNotFound,
    TransferConflict,
    WebhookEndpointNotFound,
)
from bharatsend_core.domain.keys import ApiKey
from bharatsend_core.domain.ledger import (
    REVENUE_ACCOUNT,
    TOPUPS_ACCOUNT,
    AccountBalance,
    Effect,
    Transfer,
    TransferKind,
    apply_effects,
    effects,
    is_tenant_account,
    recompute_balances,
    same_transfer,
)
from bharatsend_core.domain.message import (
    JsonObject,
    Message,
    MessageError,
    Part,
    PartStatus,
    ReceiptOutcome,
    Status,
    TimelineEntry,
)
from bharatsend_core.domain.reports import ReportInput
from bharatsend_core.domain.routing import Connection as CarrierConnection
from bharatsend_core.domain.routing import Route, RouteConfig, StatusClass
from bharatsend_core.domain.tenants import RateCard, Tenant
from bharatsend_core.domain.values import builder
from bharatsend_core.domain.webhooks import EndpointSecret, WebhookEndpoint
from bharatsend_core.ports.storage import (
    ApiKeyRepository,
    DeliveryAttempt,
    DispatchClaim,
    DispatchRepository,
    DltRepository,
    DuplicateClientMessageId,
    Heartbeat,
    LedgerRepository,
    MessagePage,
    MessageQuery,
    MessageRepository,
    MessageSummary,
    OutboxEntry,
    OutboxState,
    ReceiptRepository,
    ReceiptState,
    RouteRepository,
    StoredReceipt,
    TemplateVersion,
    TenantRepository,
    WebhookRepository,
    WhitelistKind,
)

__all__ = [
    "DEFAULT_POOL_SIZE",
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_MS",
    "VERSION_TABLE",
    "SqlApiKeyRepository",
    "SqlDispatchRepository",
    "SqlDltRepository",
    "SqlLedgerRepository",
    "SqlMessageRepository",
    "SqlReceiptRepository",
    "SqlRouteRepository",
    "SqlStorage",
    "SqlTenantRepository",
    "SqlUnitOfWork",
    "SqlWebhookRepository",
]

#: How long a SQLite writer waits for the write lock before giving up
#: (``StorageUnavailable``); transactions are short, so a queue drains fast.
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
#: The Alembic scripts shipped inside the package (no alembic.ini needed).
MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
#: Alembic's version table, named for us so it cannot collide with the host
#: application's own ``alembic_version`` in a shared database.
VERSION_TABLE: Final = "bharatsend_alembic_version"

_SCHEMA_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: The LISTEN/NOTIFY channel dispatch wake-ups travel on (suffixed by schema).
DISPATCH_CHANNEL: Final = "bharatsend_dispatch"
# IN lists are cut into chunks of this many ids (PostgreSQL and SQLite bind limits).
_CHUNK: Final = 500
_LOG: Final = logging.getLogger(__name__)
_PIP_POSTGRES: Final = 'pip install "bharatsend-core[postgres]"'

# What ``update`` writes: the columns ``Message.apply`` can change. What was
# accepted (content, DLT ids, price, expiry, created_at...) is fixed at ``add``;
# leaving it out of the SET also spares the (tenant_id, created_at) index.
_MESSAGE_STATE: Final = (
    "status",
    "attempts",
    "next_attempt_at",
    "updated_at",
    "route",
    "possible_duplicate",
    "error_code",
    "error_reason",
    "error_carrier_code",
)
_PART_STATE: Final = (
    "status",
    "carrier_message_id",
    "submitted_at",
    "final_at",
    "error_code",
    "outcome_unknown",
    "route",
)
_TEMPLATE_FIELDS: Final = (
    "entity_id",
    "category",
    "body",
    "content_type",
    "headers",
    "active",
    "name",
)
# What ``update_endpoint`` replaces: everything but the key.
_ENDPOINT_STATE: Final = (
    "url",
    "events",
    "secrets",
    "created_at",
    "enabled",
    "disabled_reason",
    "failing_since",
)
# What ``finish`` stores of an outbox entry's new state (the lease is cleared too).
_OUTBOX_STATE: Final = (
    "state",
    "attempts",
    "next_attempt_at",
    "last_status",
    "last_error",
    "finished_at",
)
# An outbox entry's columns, without its lease.
_OUTBOX_COLUMNS: Final = tuple(
    c for c in webhook_outbox.c if c.key not in ("owner", "lease_expires_at")
)
# Running total -> the bind name of its delta in the account UPDATEs.
_DELTA_KEYS: Final = {
    "debits_pending": "d_debits_pending",
    "debits_posted": "d_debits_posted",
    "credits_pending": "d_credits_pending",
    "credits_posted": "d_credits_posted",
}
# A guarded debit that failed and then found enough balance (a top-up committed
# in between) is tried again this many times before giving up.
_SPEND_ATTEMPTS: Final = 3


# =========================================================================== the storage


#: Connections a storage keeps open per process (and up to twice as many more in bursts).
DEFAULT_POOL_SIZE: Final = 10


class SqlStorage:
    """A :class:`~bharatsend_core.ports.storage.Storage` on SQLite or PostgreSQL.

    Build it with :meth:`from_url`; nothing connects until the first unit of
    work (or :meth:`migrate`). Safe to share between threads: each unit of
    work checks out its own pooled connection.
    """

    def __init__(self, engine: Engine, *, schema: str | None = None) -> None:
        """Wrap an engine configured by :meth:`from_url` (pragmas, BEGIN IMMEDIATE, search_path)."""
        self._engine = engine
        self._schema = schema
        self._statements = _Statements(engine.dialect)
        # An in-memory SQLite database lives in one connection: units of work
        # must take turns on it instead of interleaving their transactions.
        self._turns: AbstractContextManager[None] | None = (
            _SingleConnectionGate() if isinstance(engine.pool, StaticPool) else None
        )
        self._checkpointer: WalCheckpointer | None = None
        if self._turns is None and engine.dialect.name == "sqlite":
            # A file: this process's units of work queue for the write lock here,
            # where a waiter wakes the moment it is free, instead of in SQLite's
            # busy handler, which sleeps 1, 2, 5, 10... ms between tries.
            self._turns = _writer_gate(engine.url.database or "")
            # And the WAL is checkpointed by a thread, not inside a commit.
            self._checkpointer = WalCheckpointer(engine.url.database or "", self._turns)
        self._signal = DispatchSignal()
        # Our NOTIFY payload: the listener skips its own storage's notifications,
        # which already woke this process at commit.
        self._token = uuid.uuid4().hex
        # SQLite has no NOTIFY: a file beside the database carries wake-ups
        # between processes (doorbell.py).
        self._doorbell: Doorbell | None = None
        if self._checkpointer is not None:
            self._doorbell = Doorbell(
                doorbell_path(engine.url.database or ""), self._token, self._signal
            )
        self._channel: str | None = None
        self._listener: _PgListener | None = None
        self._listener_lock = threading.Lock()
        # A read-only unit of work ends with COMMIT (SqlUnitOfWork.__exit__).
        self._commit_reads = engine.dialect.name == "postgresql"
        if engine.dialect.name == "postgresql":
            self._channel = dispatch_channel(schema)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        schema: str | None = None,
        echo: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> SqlStorage:
        """A storage for ``sqlite:///path.db``, ``sqlite://`` (memory) or ``postgresql+psycopg://…``.

        ``schema`` (PostgreSQL only) puts every table, and Alembic's version
        table, in that schema via the connection's ``search_path``; ``echo``
        logs SQL (never the parameters, which may hold message content).
        ``pool_size`` connections stay open, and up to twice as many more
        open in bursts: every thread in a unit of work holds one, and a
        worker uses up to five (loop, recorder, receipts, webhooks,
        heartbeats), so size it above your request threads plus five.
        On PostgreSQL, psycopg prepares a statement after a connection ran it
        five times; ``?prepare_threshold=none`` in the URL turns that off (for
        PgBouncer in transaction mode before 1.21, or without
        ``max_prepared_statements``), a number sets the count.
        Raises ``ConfigurationError`` for an unsupported URL, a bad schema
        name, a pool size outside 1-1000, a bad ``prepare_threshold``, or a
        PostgreSQL URL without the psycopg driver installed.
        """
        if (
            not isinstance(pool_size, int)
            or isinstance(pool_size, bool)
            or not 1 <= pool_size <= 1000
        ):
            raise ConfigurationError("pool_size must be 1 to 1000", field="pool_size")
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise ConfigurationError(
                "the storage URL is not a database URL; use sqlite:///path.db, sqlite://"
                " or postgresql+psycopg://user@host/db",
                field="database_url",
            ) from e
        options: dict[str, Any] = {
            "echo": echo,
            # Parameters hold message content and OTPs: keep them out of logs
            # and out of the text of SQLAlchemy's exceptions.
            "hide_parameters": True,
            "json_serializer": json_dumps,
        }
        # The default (5 + 10) let 16 request threads of an embedding app hold
        # every connection while the worker in the same process waited seconds
        # for one to record or claim (benchmarks/README.md, sixth session).
        # Last in, first out: the connection used last is warm (its prepared
        # statements, on PostgreSQL), and the rest can sit idle.
        pooled = {"pool_size": pool_size, "max_overflow": 2 * pool_size, "pool_use_lifo": True}
        if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
            if schema is not None:
                raise ConfigurationError(
                    "schema applies to PostgreSQL only; SQLite keeps one schema per file",
                    field="schema",
                )
            return cls(_sqlite_engine(parsed, options, pooled))
        if parsed.drivername in ("postgresql", "postgresql+psycopg"):
            if schema is not None and not _SCHEMA_RE.fullmatch(schema):
                raise ConfigurationError(
                    f"schema {schema!r} is not a plain identifier (letters, digits, _)",
                    field="schema",
                )
            try:
                importlib.import_module("psycopg")
            except ImportError as e:
                raise ConfigurationError(
                    f"PostgreSQL storage needs the psycopg driver: {_PIP_POSTGRES}",
                    field="database_url",
                ) from e
            parsed, threshold = _prepare_threshold(parsed)
            options["connect_args"] = {"prepare_threshold": threshold}
            return cls(_postgres_engine(parsed, schema, {**options, **pooled}), schema=schema)
        raise ConfigurationError(
            f"unsupported storage URL scheme {parsed.drivername!r}; use sqlite:///path.db,"
            " sqlite:// or postgresql+psycopg://user@host/db",
            field="database_url",
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests; the service never needs it)."""
        return self._engine

    @property
    def checkpointer(self) -> WalCheckpointer | None:
        """The WAL checkpointer of a SQLite file storage (None otherwise)."""
        return self._checkpointer

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema this storage lives in (None: the default)."""
        return self._schema

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new transaction over every repository; use it as a context manager."""
        return SqlUnitOfWork(self)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision and create the system accounts.

        Idempotent, and safe to run from several processes at once: on
        PostgreSQL an advisory lock serialises concurrent migrators, on SQLite
        the write lock does. Creates the PostgreSQL schema if it is missing.
        """
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["schema"] = self._schema
        config.attributes["version_table"] = VERSION_TABLE
        try:
            with self._gate(), self._engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    lock_key = zlib.crc32(f"bharatsend-core migrate {self._schema}".encode())
                    connection.execute(
                        select(func.pg_advisory_xact_lock(bindparam("key"))), {"key": lock_key}
                    )
                    if self._schema is not None:
                        connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                ledger = SqlLedgerRepository(Session(connection), self._statements)
                for account in (TOPUPS_ACCOUNT, REVENUE_ACCOUNT):
                    ledger.ensure_account(account, None)
        except DBAPIError as e:
            reraise(e)

    def close(self) -> None:
        """Close every pooled connection; units of work still open keep theirs until they end.

        Also stops the PostgreSQL dispatch listener or the SQLite doorbell watcher.
        """
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if self._doorbell is not None:
            self._doorbell.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine.dispose()

    def wait_for_dispatch(self, timeout: float) -> bool:
        """Block until a unit of work that enqueued dispatch rows commits, or ``timeout`` passes.

        True when woken, including by a wake-up since this thread's previous
        wait returned. On PostgreSQL the first call starts a listener thread
        (``LISTEN``), so commits in other processes wake us too; if it cannot
        connect, waits fall back to this process's wake-ups and the timeout.
        On a SQLite file it starts watching the doorbell file instead.
        """
        if self._channel is not None:
            self._ensure_listener()
        elif self._doorbell is not None:
            self._doorbell.watch()
        return self._signal.wait(timeout)

    def wake_dispatch(self) -> None:
        """Wake every waiter in this process now."""
        self._signal.notify()

    def _ensure_listener(self) -> None:
        with self._listener_lock:
            if self._listener is not None or self._channel is None:
                return
            url = self._engine.url.set(drivername="postgresql")
            self._listener = _PgListener(
                url.render_as_string(hide_password=False), self._channel, self._signal, self._token
            )
            listener = self._listener
        listener.start()

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"SqlStorage({url!r}, schema={self._schema!r})"

    def _gate(self) -> AbstractContextManager[None]:
        return self._turns or nullcontext()


def dispatch_channel(schema: str | None) -> str:
    """The NOTIFY channel of a schema: storages on other schemas never wake each other."""
    if schema is None:
        return DISPATCH_CHANNEL
    suffix = re.sub(r"[^a-z0-9_]", "_", schema.lower())
    return f"{DISPATCH_CHANNEL}_{suffix}"[:63]  # PostgreSQL identifiers stop at 63 bytes


class _PgListener:
    """A daemon thread on its own autocommit connection: ``LISTEN``, and wake the signal.

    Reconnects after failures (logged, with a pause); waiters never depend on
    it for correctness, only for latency: they time out and poll anyway.
    """

    #: How long one ``notifies`` call blocks before the thread checks for stop.
    _TICK: Final = 0.5
    #: Pause after a failed connection before trying again.
    _RETRY: Final = 5.0
    #: How long the first wait waits for the listener to be ready (or to fail).
    _READY: Final = 10.0

    def __init__(self, url: str, channel: str, signal: DispatchSignal, token: str) -> None:
        self._url = url
        self._token = token
        self._channel = channel
        self._signal = signal
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._connected_before = False
        self._thread = threading.Thread(
            target=self._run, name=f"bharatsend-listen-{channel}", daemon=True
        )

    def start(self) -> None:
        """Start the thread once; block until it listens (or its first attempt failed)."""
        if not self._thread.is_alive() and not self._stop.is_set():
            with suppress(RuntimeError):  # already started by another waiter
                self._thread.start()
        self._ready.wait(self._READY)

    def stop(self) -> None:
        """Ask the thread to finish and wait briefly for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._TICK * 4)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as e:  # never crash the worker over wake-ups
                _LOG.warning(
                    "dispatch listener on %s failed (%s); waiting by polling until it reconnects",
                    self._channel,
                    type(e).__name__,
                )
            finally:
                self._ready.set()
            self._stop.wait(self._RETRY)

    def _listen(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {self._channel}")
            self._ready.set()
            if self._connected_before:
                # Work committed while we were reconnecting would otherwise wait a poll.
                self._signal.notify()
            self._connected_before = True
            while not self._stop.is_set():
                for notification in connection.notifies(timeout=self._TICK):
                    if notification.payload != self._token:
                        self._signal.notify()


class _WriterGate:
    """One unit of work at a time per SQLite file in this process, first come first served;
    nesting in a thread is let through (the inner one then waits on SQLite's own lock,
    as before).

    Every SQLite transaction here starts with ``BEGIN IMMEDIATE``, so units of
    work run one at a time anyway. Queueing them here hands the lock over the
    moment it is free, and in arrival order, so a request thread's ``send()``
    is not starved by a worker that commits back to back; in SQLite's busy
    handler a waiter sleeps 1, 2, 5, 10... ms between tries and whoever tries
    at the right moment wins. Other processes still meet the busy timeout.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy = False
        self._waiters: deque[threading.Lock] = deque()
        self._depth = threading.local()

    def __enter__(self) -> None:
        depth: int = getattr(self._depth, "n", 0)
        if depth == 0:
            self._acquire()
        self._depth.n = depth + 1

    def __exit__(self, *exc_info: object) -> None:
        self._depth.n -= 1
        if self._depth.n == 0:
            self._release()

    def _acquire(self) -> None:
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder handing over; the gate stays busy

    def _release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._busy = False


_WRITER_GATES: dict[str, _WriterGate] = {}
_WRITER_GATES_LOCK = threading.Lock()


def _writer_gate(database: str) -> _WriterGate:
    """The gate of one database file, shared by every storage on it in this process."""
    key = str(Path(database).resolve())
    with _WRITER_GATES_LOCK:
        gate = _WRITER_GATES.get(key)
        if gate is None:
            gate = _WRITER_GATES[key] = _WriterGate()
        return gate


class _SingleConnectionGate:
    """Lets one unit of work at a time use an in-memory SQLite database's only connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def __enter__(self) -> None:
        if self._holder == threading.get_ident():
            raise ConfigurationError(
                "an in-memory SQLite database (sqlite://) has a single connection: finish the"
                " open unit of work before starting another, or use a file URL"
            )
        self._lock.acquire()
        self._holder = threading.get_ident()

    def __exit__(self, *exc_info: object) -> None:
        self._holder = None
        self._lock.release()


def _sqlite_engine(url: URL, options: dict[str, Any], pooled: dict[str, Any]) -> Engine:
    memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        # One connection *is* the in-memory database; a file gets a pool.
        poolclass=StaticPool if memory else None,
        connect_args={"check_same_thread": False},
        **options,
        **({} if memory else pooled),
    )

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction
        # begins (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Set before journal_mode: switching to WAL may itself wait for a lock.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            # Readers never block the writer and vice versa; NORMAL is durable
            # across application crashes in WAL mode, and only a power cut can
            # lose the last commits.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            # The storage's checkpointer thread does this (checkpoint.py).
            cursor.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_PAGES}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    def on_begin(connection: Connection) -> None:
        # Take the write lock now. A deferred BEGIN would start as a reader
        # and fail with "database is locked" (no busy wait is possible) when
        # it later tries to write while another writer went first. Sent on
        # the driver connection: SQLAlchemy's execute path costs more than
        # the statement; its errors are wrapped the way SQLAlchemy would.
        try:
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except sqlite3.Error as e:
            raise DBAPIError.instance(
                "BEGIN IMMEDIATE", None, e, sqlite3.Error, dialect=connection.dialect
            ) from e

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def _prepare_threshold(url: URL) -> tuple[URL, int | None]:
    """The URL without ``prepare_threshold``, and psycopg's setting from it (5 if absent).

    SQLAlchemy would hand the query's text to psycopg as it is, and psycopg
    compares the threshold with a count.
    """
    raw = url.query.get("prepare_threshold")
    if raw is None:
        return url, 5
    text = raw if isinstance(raw, str) else (raw[-1] if raw else "")
    stripped = url.difference_update_query(["prepare_threshold"])
    if text.strip().lower() in ("none", "off"):
        return stripped, None
    if re.fullmatch(r"[0-9]{1,7}", text.strip()):
        return stripped, int(text)
    raise ConfigurationError(
        f"prepare_threshold must be a count of runs or none, got {text!r}", field="database_url"
    )


def _postgres_engine(url: URL, schema: str | None, options: dict[str, Any]) -> Engine:
    engine = create_engine(
        url.set(drivername="postgresql+psycopg"),
        # Explicit: the guarded ledger UPDATE and SKIP LOCKED claims are
        # designed for READ COMMITTED's re-check of the newest row version.
        isolation_level="READ COMMITTED",
        **options,
    )
    if schema is not None:

        def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            # Every pooled connection, before SQLAlchemy's own first queries.
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f'SET search_path TO "{schema}"')
            dbapi_connection.autocommit = autocommit

        event.listen(engine, "connect", on_connect, insert=True)
    return engine


# =========================================================================== unit of work


class SqlUnitOfWork:
    """One database transaction over every repository (see the module docstring).

    ``commit()`` makes the work durable; the block's end rolls back anything
    not committed. After ``commit()`` the unit of work may go on: the next
    statement begins a new transaction.
    """

    tenants: TenantRepository
    keys: ApiKeyRepository
    dlt: DltRepository
    messages: MessageRepository
    ledger: LedgerRepository
    dispatch: DispatchRepository
    routes: RouteRepository
    receipts: ReceiptRepository
    webhooks: WebhookRepository

    def __init__(self, storage: SqlStorage) -> None:
        """Prepare; nothing is checked out until ``with``."""
        self._storage = storage
        self._connection: Connection | None = None
        self._db: Session | None = None
        self._gate = storage._gate()
        # Dispatch rows became claimable in the open transaction: wake waiters at commit.
        self._new_work = False
        self._pending: list[Callable[[], None]] = []
        self._committed: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        """Check out a connection; ``StorageUnavailable`` if the database cannot be reached."""
        self._gate.__enter__()
        try:
            connection = self._storage.engine.connect()
        except DBAPIError as e:
            self._gate.__exit__(None, None, None)
            reraise(e)
        except BaseException:
            self._gate.__exit__(None, None, None)
            raise
        self._connection = connection
        db = Session(connection)
        statements = self._storage._statements
        self.tenants = SqlTenantRepository(db, statements)
        self.keys = SqlApiKeyRepository(db, statements)
        self.dlt = SqlDltRepository(db, statements)
        self.messages = SqlMessageRepository(db, statements)
        self.ledger = SqlLedgerRepository(db, statements)
        self.dispatch = SqlDispatchRepository(db, statements, self._work_queued)
        self.routes = SqlRouteRepository(db, statements)
        self.receipts = SqlReceiptRepository(db, statements)
        self.webhooks = SqlWebhookRepository(db, statements)
        self.heartbeats = SqlHeartbeatRepository(db, statements)
        self._db = db
        return self

    def _work_queued(self) -> None:
        """Called by the dispatch repository after it queued or released rows.

        On PostgreSQL the ``NOTIFY`` joins the transaction (once per
        transaction): the server delivers it at commit and drops it on rollback.
        """
        if self._new_work:
            return
        self._new_work = True
        channel = self._storage._channel
        notify = self._storage._statements.notify
        if channel is not None and notify is not None and self._db is not None:
            payload = {"channel": channel, "payload": self._storage._token}
            self._db.scalar(notify, payload)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and return the connection to the pool.

        On PostgreSQL a unit that only read ends with ``COMMIT`` instead: the
        same for the server, but psycopg forgets every prepared statement of
        the connection on a rollback, and the worker's idle reads would make
        every statement parse and plan again.
        """
        connection, self._connection = self._connection, None
        only_read = (
            exc_type is None
            and self._storage._commit_reads
            and self._db is not None
            and not self._db.wrote
            and not self._new_work
        )
        self._new_work = False
        self._db = None
        self._pending.clear()
        committed, self._committed = self._committed, []
        try:
            if connection is not None:
                # A connection that died mid-transaction already lost the
                # transaction on the server; its rollback error must not hide
                # the error that brought us here.
                with suppress(DBAPIError):
                    if only_read and connection.in_transaction():
                        connection.commit()
                    else:
                        connection.rollback()
                connection.close()
        finally:
            self._gate.__exit__(None, None, None)
        run_callbacks(committed)

    def commit(self) -> None:
        """Make the transaction's writes durable and visible; ``StorageUnavailable`` on failure."""
        try:
            self._active().commit()
        except DBAPIError as e:
            reraise(e)
        self._committed.extend(self._pending)
        self._pending.clear()
        checkpointer = self._storage._checkpointer
        if checkpointer is not None:
            checkpointer.committed()
        if self._new_work:
            self._new_work = False
            self._storage._signal.notify()
            if self._storage._doorbell is not None:
                self._storage._doorbell.ring()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the commit, once the connection is back in the pool."""
        self._pending.append(callback)

    def rollback(self) -> None:
        """Discard the transaction's writes."""
        self._new_work = False
        self._pending.clear()
        try:
            self._active().rollback()
        except DBAPIError as e:
            reraise(e)

    def _active(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._connection


# =========================================================================== statements


def _binds(table: Table, *columns: str) -> dict[str, BindParameter[Any]]:
    """``column = :column`` for each column (every column of ``table`` if none are named)."""
    names = columns or tuple(c.key for c in table.c)
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def _by(table: Table, *columns: str) -> ColumnElement[bool]:
    """``table.a = :b_a AND ...``: WHERE binds get a ``b_`` prefix so UPDATE can SET the column."""
    return and_(*(table.c[name] == bindparam(f"b_{name}") for name in columns))


def _pg_array(column: Column[Any]) -> tuple[str, str]:
    """The array type a column's values travel in, and the cast back for each element."""
    type_ = column.type
    if isinstance(type_, UtcDateTime):
        return "timestamptz[]", ""
    if isinstance(type_, JSON):
        return "text[]", "::json"
    if isinstance(type_, Boolean):
        return "boolean[]", ""
    if isinstance(type_, BigInteger):
        return "bigint[]", ""
    if isinstance(type_, Integer):
        return "integer[]", ""
    return "text[]", ""


class _BulkBuilder:
    """PostgreSQL batch statements over ``unnest``: one statement per batch, not per row.

    Each names, in order, the row keys its arrays are built from: a column's
    name, or ``b_<column>`` for a key in the WHERE clause (as the prepared
    statements do). Rows keep their order (``WITH ORDINALITY``), so serial
    columns number them as ``executemany`` would.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._q = dialect.identifier_preparer.quote

    @staticmethod
    def _column(key: str) -> str:
        """The column a row key feeds: ``b_x`` (a WHERE key) and ``new_x`` (a SET value) feed x."""
        return key.removeprefix("b_").removeprefix("new_")

    def _unnest(
        self, table: Table, keys: Sequence[str], alias: str = "u"
    ) -> tuple[str, list[str], str]:
        """(``unnest(...) AS u(...)``, each key's expression on ``alias``, the quoted key list)."""
        q = self._q
        arrays, exprs = [], []
        for i, key in enumerate(keys):
            array, cast = _pg_array(table.c[self._column(key)])
            arrays.append(f"%(p{i})b::{array}")
            exprs.append(f"{alias}.{q(key)}{cast}")
        names = ", ".join(q(k) for k in keys)
        return f"unnest({', '.join(arrays)}) WITH ORDINALITY AS u({names}, _ord)", exprs, names

    def _matched(self, table: Table, source: str, where: Sequence[str]) -> tuple[str, str]:
        """(``source``'s rows as ``s``, each paired with its target's key; the match of ``t``).

        Each row finds its target through a LATERAL probe of the key's index
        (OFFSET 0 keeps it from being flattened), and the target is joined on
        the key the probe returned. Joined straight to the unnested rows, the
        planner hashes the whole target table whenever it has no statistics
        (before the first ANALYZE, as ``each_of`` explains): 10 ms of hashing
        per batch of 500 at 20,000 messages, growing with the table, against
        3.5 ms for the probes.
        """
        q = self._q
        name = q(table.name)
        found = ", ".join(f"x.{q(w)} AS {q('_key_' + w)}" for w in where)
        probe = " AND ".join(f"x.{q(w)} = u.{q('b_' + w)}" for w in where)
        rows = (
            f"(SELECT u.*, p.* FROM {source} CROSS JOIN LATERAL"  # noqa: S608 - our identifiers
            f" (SELECT {found} FROM {name} AS x WHERE {probe} OFFSET 0) AS p) AS s"
        )
        match = " AND ".join(f"t.{q(w)} = s.{q('_key_' + w)}" for w in where)
        return rows, match

    def _bulk(self, table: Table, keys: Sequence[str], sql: str) -> Bulk:
        encoders = [encoder_for(table.c[self._column(k)].type, self._dialect) for k in keys]
        return Bulk(sql, keys, encoders)

    def insert(self, table: Table, keys: Sequence[str], tail: str = "") -> Bulk:
        """``INSERT ... SELECT`` the rows, in order; ``tail`` adds an ON CONFLICT clause."""
        source, exprs, names = self._unnest(table, keys)
        # Identifiers come from our own schema, quoted; every value is bound.
        sql = (
            f"INSERT INTO {self._q(table.name)} ({names}) SELECT {', '.join(exprs)}"  # noqa: S608
            f" FROM {source} ORDER BY u._ord{tail}"
        )
        return self._bulk(table, keys, sql)

    def update(
        self,
        table: Table,
        values: Sequence[str],
        where: Sequence[str],
        *,
        nulls: Sequence[str] = (),
    ) -> Bulk:
        """``UPDATE ... FROM`` the rows: set ``values``, matched on ``b_<where>`` keys.

        A value key names its column (``x``, or ``new_x`` as the prepared
        statement binds it); ``nulls`` are columns set to NULL.
        """
        q = self._q
        keys = [*values, *(f"b_{w}" for w in where)]
        source, exprs, _names = self._unnest(table, keys, alias="s")
        sets = [f"{q(self._column(v))} = {e}" for v, e in zip(values, exprs, strict=False)]
        sets += [f"{q(n)} = NULL" for n in nulls]
        rows, match = self._matched(table, source, where)
        sql = f"UPDATE {q(table.name)} AS t SET {', '.join(sets)} FROM {rows} WHERE {match}"  # noqa: S608
        return self._bulk(table, keys, sql)

    def delete(self, table: Table, where: Sequence[str]) -> Bulk:
        """``DELETE ... USING`` the rows, matched on ``b_<where>`` keys."""
        q = self._q
        keys = [f"b_{w}" for w in where]
        source, _exprs, _names = self._unnest(table, keys)
        rows, match = self._matched(table, source, where)
        sql = f"DELETE FROM {q(table.name)} AS t USING {rows} WHERE {match}"  # noqa: S608
        return self._bulk(table, keys, sql)


class _Statements:
    """Every fixed statement, compiled once per storage for its dialect (see ``prepared.py``)."""

    def __init__(self, dialect: Dialect) -> None:
        #: True when one transaction reads one snapshot (SQLite); PostgreSQL's
        #: READ COMMITTED gives each statement its own (see _assemble_ids).
        self.one_snapshot = dialect.name == "sqlite"
        prepare = partial(Prepared, dialect=dialect)
        make_insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert

        def insert_or_skip(table: Table, *, exclude: str = "") -> Prepared:
            """INSERT ... ON CONFLICT DO NOTHING: the row count says whether the row went in."""
            names = [c.key for c in table.c if c.key != exclude]
            statement = make_insert(table).values(_binds(table, *names))
            return prepare(statement.on_conflict_do_nothing())

        def plain_insert(table: Table) -> Prepared:
            return prepare(insert(table).values(_binds(table)))

        def one_of(column: ColumnElement[Any], name: str = "b_ids") -> ColumnElement[bool]:
            """``column IN <the list bound to name>`` as one SQL text whatever the list's length.

            An expanding IN list is new SQL for every length, so it cannot be
            prepared: PostgreSQL takes the list as one array (``= ANY``),
            SQLite as one JSON array read by ``json_each``. Both use the
            column's index.
            """
            if dialect.name == "postgresql":
                return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
            values = func.json_each(bindparam(name, type_=JSON)).table_valued("value")
            return column.in_(select(values.c.value))

        def each_of(
            query: Select[Any],
            column: ColumnElement[Any],
            name: str = "b_ids",
            order: Sequence[str] = (),
        ) -> Prepared:
            """``query`` over the rows whose ``column`` is in the list bound to ``name``.

            PostgreSQL probes ``column``'s index once per distinct element
            (a LATERAL subquery that OFFSET 0 keeps the planner from
            flattening). With ``= ANY`` it prices the list from the column's
            statistics, and before a table's first ANALYZE (a new deployment,
            autovacuum off) guesses a large share of the table and scans all
            of it: 4-20 ms per batch instead of a fraction of one
            (benchmarks/README.md, seventh session). ``order`` names result
            columns to sort by.
            """
            if dialect.name != "postgresql":
                filtered = query.where(one_of(column, name))
                return prepare(filtered.order_by(*(filtered.selected_columns[o] for o in order)))
            values = func.unnest(bindparam(name, type_=postgresql.ARRAY(column.type)))
            element = values.table_valued("value").render_derived(name="elements")
            wanted = select(element.c.value).distinct().subquery("wanted")
            probe = query.where(column == wanted.c.value).offset(0).lateral("probe")
            return prepare(
                select(*probe.c)
                .select_from(wanted.join(probe, true()))
                .order_by(*(probe.c[o] for o in order))
            )

        # tenants
        self.tenant_insert = insert_or_skip(tenants)
        self.tenant_get = prepare(select(tenants).where(_by(tenants, "id")))
        self.tenant_update = prepare(
            update(tenants)
            .where(_by(tenants, "id"))
            .values(_binds(tenants, "name", "status", "billing_point", "rates"))
        )
        self.tenant_bump = prepare(
            update(tenants)
            .where(_by(tenants, "id"))
            .values(dlt_version=tenants.c.dlt_version + 1)
            .returning(tenants.c.dlt_version)
        )
        self.tenant_list = prepare(select(tenants).order_by(tenants.c.created_at, tenants.c.id))

        # API keys
        self.key_insert = insert_or_skip(api_keys)
        self.key_get = prepare(select(api_keys).where(_by(api_keys, "id")))
        self.key_list = prepare(
            select(api_keys)
            .where(_by(api_keys, "tenant_id"))
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        self.key_update = prepare(
            update(api_keys)
            .where(_by(api_keys, "id", "tenant_id"))
            .values(_binds(api_keys, "revoked_at", "expires_at", "last_used_at", "name"))
        )

        # DLT
        self.entity_insert = insert_or_skip(dlt_entities)
        self.entity_get = prepare(
            select(dlt_entities).where(_by(dlt_entities, "tenant_id", "pe_id"))
        )
        self.entity_list = prepare(select(dlt_entities).where(_by(dlt_entities, "tenant_id")))
        self.header_insert = insert_or_skip(dlt_headers)
        self.header_update = prepare(
            update(dlt_headers)
            .where(_by(dlt_headers, "tenant_id", "sender_id"))
            .values(_binds(dlt_headers, "entity_id", "category", "active"))
        )
        self.header_get = prepare(
            select(dlt_headers).where(_by(dlt_headers, "tenant_id", "sender_id"))
        )
        self.header_list = prepare(select(dlt_headers).where(_by(dlt_headers, "tenant_id")))
        self.template_insert = insert_or_skip(dlt_templates)
        self.template_update = prepare(
            update(dlt_templates)
            .where(_by(dlt_templates, "tenant_id", "template_id"))
            .values(
                {
                    **_binds(dlt_templates, *_TEMPLATE_FIELDS, "updated_at"),
                    "version": dlt_templates.c.version + 1,
                }
            )
            .returning(dlt_templates.c.version)
        )
        self.template_get = prepare(
            select(dlt_templates).where(_by(dlt_templates, "tenant_id", "template_id"))
        )
        self.template_list = prepare(select(dlt_templates).where(_by(dlt_templates, "tenant_id")))
        self.version_insert = plain_insert(dlt_template_versions)
        self.version_list = prepare(
            select(dlt_template_versions)
            .where(_by(dlt_template_versions, "tenant_id", "template_id"))
            .order_by(dlt_template_versions.c.version)
        )
        self.whitelist_insert = insert_or_skip(dlt_whitelist)
        self.whitelist_delete = prepare(
            delete(dlt_whitelist).where(_by(dlt_whitelist, "tenant_id", "kind", "value"))
        )
        self.whitelist_list = prepare(
            select(dlt_whitelist.c.value).where(_by(dlt_whitelist, "tenant_id", "kind"))
        )

        # messages
        self.message_insert = insert_or_skip(messages)
        self.part_insert = plain_insert(message_parts)
        self.event_insert = plain_insert(message_events)
        self.message_get = prepare(select(messages).where(_by(messages, "id", "tenant_id")))
        self.message_by_client_id = prepare(
            select(messages).where(_by(messages, "tenant_id", "client_message_id"))
        )
        # A batch's idempotency lookup, once per batch.
        self.client_ids_of_tenant = each_of(
            select(messages.c.id, messages.c.client_message_id).where(
                messages.c.tenant_id == bindparam("b_tenant_id")
            ),
            messages.c.client_message_id,
            "b_client_ids",
        )
        self.client_ids_taken = prepare(
            select(messages.c.id, messages.c.tenant_id, messages.c.client_message_id).where(
                one_of(messages.c.client_message_id, "b_client_ids")
            )
        )
        self.parts_of = prepare(
            select(message_parts)
            .where(_by(message_parts, "message_id"))
            .order_by(message_parts.c.idx)
        )
        # Details come back as JSON text: most repeat, and _entry_from decodes each text once.
        e = message_events.c
        detail = e.detail.cast(Text).label("detail")
        events = select(e.message_id, e.sequence, e.at, e.kind, e.status, detail)
        self.events_of = prepare(
            events.where(_by(message_events, "message_id")).order_by(message_events.c.sequence)
        )
        self.message_update = prepare(
            update(messages)
            .where(_by(messages, "id", "tenant_id"))
            .values(_binds(messages, *_MESSAGE_STATE))
        )
        self.events_stored = prepare(
            select(func.count().label("stored"))
            .select_from(message_events)
            .where(_by(message_events, "message_id"))
        )
        upsert = make_insert(message_parts).values(_binds(message_parts))
        self.part_upsert = prepare(
            upsert.on_conflict_do_update(
                index_elements=[message_parts.c.message_id, message_parts.c.idx],
                set_={name: upsert.excluded[name] for name in _PART_STATE},
            )
        )
        # Batches by id (dispatch loads, receipt matching).
        self.messages_by_ids = each_of(select(messages), messages.c.id)
        # The receipt-timeout sweep walks ix_messages_sent_updated_at.
        self.messages_awaiting = (
            select(messages)
            .where(messages.c.status == "sent", messages.c.updated_at < bindparam("b_before"))
            .order_by(messages.c.updated_at, messages.c.id)
            .limit(bindparam("b_limit"))
        )
        self.parts_of_many = each_of(
            select(message_parts), message_parts.c.message_id, order=("message_id", "idx")
        )
        self.events_of_many = each_of(
            events, message_events.c.message_id, order=("message_id", "sequence")
        )
        self.events_stored_many = each_of(
            select(message_events.c.message_id, func.count().label("stored")).group_by(
                message_events.c.message_id
            ),
            message_events.c.message_id,
        )
        self.parts_by_carrier = each_of(
            select(
                message_parts.c.message_id, message_parts.c.idx, message_parts.c.carrier_message_id
            ).where(message_parts.c.route == bindparam("b_route")),
            message_parts.c.carrier_message_id,
            "b_carrier_ids",
        )
        self.summaries = prepare(
            select(messages.c.id, messages.c.status, messages.c.price_paise, messages.c.sandbox)
            .where(_by(messages, "tenant_id"))
            .order_by(messages.c.created_at, messages.c.id)
        )
        # The per-number limit, on the accept path: a range of
        # ix_messages_tenant_id_phone_created_at, grouped by category so the
        # category set needs no IN list (the caller keeps the ones it counts).
        m = messages.c
        recent = (m.category, func.count().label("n"), func.min(m.created_at).label("oldest"))
        self.count_recent = prepare(
            select(*recent)
            .where(_by(messages, "tenant_id", "phone"), m.created_at >= bindparam("b_since"))
            .group_by(m.category)
        )
        # The same for a batch's numbers: on PostgreSQL one index range per
        # number (each_of); with ``phone = ANY`` the planner may instead walk
        # every recent message of the tenant and filter, which grows with the
        # window.
        self.count_recent_many = each_of(
            select(m.phone, *recent)
            .where(m.tenant_id == bindparam("b_tenant_id"), m.created_at >= bindparam("b_since"))
            .group_by(m.phone, m.category),
            m.phone,
            "b_phones",
        )

        # ledger
        a = ledger_accounts.c
        self.account_insert = insert_or_skip(ledger_accounts)
        self.account_get = prepare(select(ledger_accounts).where(_by(ledger_accounts, "id")))
        self.account_all = prepare(select(ledger_accounts).order_by(a.id))
        change = update(ledger_accounts).values(
            {
                name: a[name] + bindparam(key, type_=a[name].type)
                for name, key in _DELTA_KEYS.items()
            }
        )
        self.account_change = prepare(change.where(_by(ledger_accounts, "id")))
        self.account_spend = prepare(
            change.where(
                _by(ledger_accounts, "id"),
                a.credits_posted - a.debits_posted - a.debits_pending >= bindparam("b_need"),
            )
        )
        t = ledger_transfers.c
        self.transfer_insert = insert_or_skip(ledger_transfers, exclude="seq")
        self.transfer_get = prepare(select(ledger_transfers).where(_by(ledger_transfers, "id")))
        self.transfers_by_ids = each_of(select(ledger_transfers), ledger_transfers.c.id)
        by_pending = select(ledger_transfers).where(_by(ledger_transfers, "pending_id"))
        self.transfer_by_pending = prepare(by_pending)
        self.transfer_settlement = prepare(
            by_pending.where(
                or_(t.kind == TransferKind.POST.value, t.kind == TransferKind.VOID.value)
            )
        )
        self.transfer_delete = prepare(delete(ledger_transfers).where(_by(ledger_transfers, "id")))

        # routes
        self.route_insert = insert_or_skip(routes)
        self.route_get = prepare(select(routes).where(_by(routes, "name")))
        self.route_list = prepare(select(routes))
        self.route_update = prepare(
            update(routes).where(_by(routes, "name")).values(_binds(routes, "config", "enabled"))
        )

        # heartbeats
        hb = worker_heartbeats.c
        self.heartbeat_insert = insert_or_skip(worker_heartbeats)
        self.heartbeat_update = prepare(
            update(worker_heartbeats)
            .where(_by(worker_heartbeats, "owner"))
            .values(_binds(worker_heartbeats, "kind", "started_at", "seen_at"))
        )
        self.heartbeat_list = prepare(
            select(worker_heartbeats).order_by(hb.seen_at.desc(), hb.owner.desc())
        )
        self.heartbeat_delete = prepare(
            delete(worker_heartbeats).where(_by(worker_heartbeats, "owner"))
        )
        self.heartbeat_prune = prepare(
            delete(worker_heartbeats).where(hb.seen_at < bindparam("b_before"))
        )

        # receipts
        r = receipts.c
        self.receipt_insert = insert_or_skip(receipts)
        # A batch of receipts in one statement that says which were new.
        receipt_keys = [c.key for c in receipts.c]
        stored_keys = " RETURNING route, carrier_message_id, outcome"
        self.receipt_insert_many: Bulk | JsonBulk
        if dialect.name == "postgresql":
            self.receipt_insert_many = _BulkBuilder(dialect).insert(
                receipts, receipt_keys, " ON CONFLICT DO NOTHING" + stored_keys
            )
        else:
            quote = dialect.identifier_preparer.quote
            values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(receipt_keys)))
            columns = ", ".join(quote(k) for k in receipt_keys)
            # SQLite needs the WHERE before ON CONFLICT when an INSERT takes a SELECT.
            self.receipt_insert_many = JsonBulk(
                f"INSERT INTO {quote(receipts.name)} ({columns})"  # noqa: S608
                f" SELECT {values} FROM json_each(:p0) WHERE true"
                " ON CONFLICT DO NOTHING" + stored_keys,
                receipt_keys,
                [encoder_for(receipts.c[k].type, dialect) for k in receipt_keys],
            )
        self.receipt_resolve = prepare(
            update(receipts)
            .where(_by(receipts, "route", "carrier_message_id", "outcome"))
            .values(_binds(receipts, "state", "tenant_id", "message_id", "part_index"))
        )
        self.receipt_expire = prepare(
            update(receipts)
            .where(
                r.state == "parked",
                r.received_at < bindparam("b_before", type_=UtcDateTime()),
            )
            .values(state="unknown")
        )
        self.receipts_parked = each_of(
            select(receipts).where(r.route == bindparam("b_route"), r.state == "parked"),
            r.carrier_message_id,
            "b_carrier_ids",
            order=("received_at", "carrier_message_id", "outcome"),
        )

        # dispatch
        q = dispatch_queue.c
        self.dispatch_insert = insert_or_skip(dispatch_queue)
        claimable = (
            select(q.message_id)
            .where(
                q.due_at <= bindparam("b_now"),
                or_(q.owner.is_(None), q.lease_expires_at <= bindparam("b_now")),
            )
            .order_by(q.priority.desc(), q.due_at, q.message_id)
            .limit(bindparam("b_limit", type_=Integer()))
        )
        lease = {
            "owner": bindparam("new_owner", type_=String()),
            "lease_expires_at": bindparam("new_lease_expires_at", type_=UtcDateTime()),
        }
        returning = (q.message_id, q.tenant_id, q.due_at, q.priority, q.lease_expires_at)
        if dialect.name == "postgresql":
            # Lock the candidates, skipping rows another claimer holds locked,
            # then lease them in the same statement. A locking CTE runs once,
            # unlike a LIMIT subquery the planner could re-evaluate.
            candidates = claimable.with_for_update(skip_locked=True).cte("candidates")
            claim = update(dispatch_queue).where(q.message_id == candidates.c.message_id)
        else:
            # SQLite: this transaction already holds the only write lock.
            claim = update(dispatch_queue).where(q.message_id.in_(claimable))
        self.dispatch_claim = prepare(claim.values(lease).returning(*returning))
        held = _by(dispatch_queue, "message_id", "owner")
        self.dispatch_ack = prepare(delete(dispatch_queue).where(held))
        self.dispatch_release = prepare(
            update(dispatch_queue)
            .where(held)
            .values(
                owner=None,
                lease_expires_at=None,
                due_at=bindparam("new_due_at", type_=UtcDateTime()),
            )
        )
        self.dispatch_extend = prepare(
            update(dispatch_queue)
            .where(held)
            .values({"lease_expires_at": lease["lease_expires_at"]})
        )
        # A held row comes back when its lease runs out, if that is after it is due.
        free_at = case(
            (q.owner.is_(None), q.due_at),
            (q.lease_expires_at > q.due_at, q.lease_expires_at),
            else_=q.due_at,
        )
        self.dispatch_next_due = prepare(select(func.min(free_at).label("next_due")))
        self.notify: Prepared | None = None
        if dialect.name == "postgresql":
            self.notify = prepare(
                select(
                    func.pg_notify(
                        bindparam("channel", type_=String()), bindparam("payload", type_=String())
                    ).label("sent")
                )
            )
        self.dispatch_depth = prepare(
            select(func.count().label("due"))
            .select_from(dispatch_queue)
            .where(q.due_at <= bindparam("b_now"))
        )

        # webhooks
        self.endpoint_insert = insert_or_skip(webhook_endpoints)
        self.endpoint_get = prepare(
            select(webhook_endpoints).where(_by(webhook_endpoints, "id", "tenant_id"))
        )
        self.endpoint_list = prepare(
            select(webhook_endpoints)
            .where(_by(webhook_endpoints, "tenant_id"))
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        )
        self.endpoint_update = prepare(
            update(webhook_endpoints)
            .where(_by(webhook_endpoints, "id", "tenant_id"))
            .values(_binds(webhook_endpoints, *_ENDPOINT_STATE))
        )
        o = webhook_outbox.c
        self.outbox_insert = insert_or_skip(webhook_outbox)
        self.outbox_get = prepare(
            select(*_OUTBOX_COLUMNS).where(_by(webhook_outbox, "event_id", "endpoint_id"))
        )
        outbox_now = bindparam("b_now", type_=UtcDateTime())
        due = (
            select(o.event_id, o.endpoint_id)
            .where(
                o.state == "pending",
                o.next_attempt_at <= outbox_now,
                or_(o.owner.is_(None), o.lease_expires_at <= outbox_now),
            )
            .order_by(o.next_attempt_at, o.event_id, o.endpoint_id)
            .limit(bindparam("b_limit", type_=Integer()))
        )
        outbox_lease = {
            "owner": bindparam("new_owner", type_=String()),
            "lease_expires_at": bindparam("new_lease_expires_at", type_=UtcDateTime()),
        }
        if dialect.name == "postgresql":
            # As dispatch: lock the candidates skipping rows another claimer
            # holds locked, then lease them in the same statement.
            picked = due.with_for_update(skip_locked=True).cte("outbox_candidates")
            outbox_claim = update(webhook_outbox).where(
                o.event_id == picked.c.event_id, o.endpoint_id == picked.c.endpoint_id
            )
        else:
            # SQLite: this transaction already holds the only write lock.
            outbox_claim = update(webhook_outbox).where(tuple_(o.event_id, o.endpoint_id).in_(due))
        self.outbox_claim = prepare(outbox_claim.values(outbox_lease).returning(*_OUTBOX_COLUMNS))
        self.outbox_finish = prepare(
            update(webhook_outbox)
            .where(_by(webhook_outbox, "event_id", "endpoint_id", "owner"))
            .values(
                {
                    **_binds(webhook_outbox, *_OUTBOX_STATE),
                    "owner": None,
                    "lease_expires_at": None,
                }
            )
        )
        self.outbox_replay = prepare(
            update(webhook_outbox)
            .where(_by(webhook_outbox, "event_id", "endpoint_id"))
            .values(
                state="pending",
                next_attempt_at=bindparam("new_next_attempt_at", type_=UtcDateTime()),
                finished_at=None,
                owner=None,
                lease_expires_at=None,
            )
        )
        self.attempt_insert = insert_or_skip(webhook_attempts)
        self.attempt_list = prepare(
            select(webhook_attempts)
            .where(_by(webhook_attempts, "event_id", "endpoint_id"))
            .order_by(webhook_attempts.c.number)
        )

        if dialect.name == "postgresql":
            self._bulk_writes(dialect)

    def _bulk_writes(self, dialect: Dialect) -> None:
        """Give the batch writes of the hot paths their one-statement form (``Bulk``)."""
        b = _BulkBuilder(dialect)
        q = dialect.identifier_preparer.quote
        skip = " ON CONFLICT DO NOTHING"

        def keys(table: Table, *exclude: str) -> list[str]:
            return [c.key for c in table.c if c.key not in exclude]

        part_state = ", ".join(f"{q(n)} = EXCLUDED.{q(n)}" for n in _PART_STATE)
        self.message_insert.bulk = b.insert(messages, keys(messages), skip)
        self.part_insert.bulk = b.insert(message_parts, keys(message_parts))
        self.event_insert.bulk = b.insert(message_events, keys(message_events))
        self.part_upsert.bulk = b.insert(
            message_parts,
            keys(message_parts),
            f" ON CONFLICT ({q('message_id')}, {q('idx')}) DO UPDATE SET {part_state}",
        )
        self.message_update.bulk = b.update(messages, _MESSAGE_STATE, ("id", "tenant_id"))
        self.transfer_insert.bulk = b.insert(ledger_transfers, keys(ledger_transfers, "seq"), skip)
        self.dispatch_insert.bulk = b.insert(dispatch_queue, keys(dispatch_queue), skip)
        self.dispatch_ack.bulk = b.delete(dispatch_queue, ("message_id", "owner"))
        held = ("message_id", "owner")
        self.dispatch_extend.bulk = b.update(dispatch_queue, ("new_lease_expires_at",), held)
        self.dispatch_release.bulk = b.update(
            dispatch_queue, ("new_due_at",), held, nulls=("owner", "lease_expires_at")
        )
        self.outbox_insert.bulk = b.insert(webhook_outbox, keys(webhook_outbox), skip)


class _Repository:
    """What every repository holds: the unit of work's session and the prepared statements."""

    __slots__ = ("_db", "_s")

    def __init__(self, db: Session, statements: _Statements) -> None:
        self._db = db
        self._s = statements


# =========================================================================== tenants


def _tenant_row(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "status": tenant.status.value,
        "billing_point": tenant.billing_point.value,
        "rates": tenant.rates.to_dict(),
        "dlt_version": tenant.dlt_version,
        "created_at": tenant.created_at,
    }


def _tenant_from(row: Any) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        status=row.status,
        created_at=row.created_at,
        billing_point=row.billing_point,
        rates=RateCard.from_dict(row.rates),
        dlt_version=row.dlt_version,
    )


class SqlTenantRepository(_Repository):
    """Tenants, one row each; the DLT version is a counter bumped in place."""

    __slots__ = ()

    def add(self, tenant: Tenant) -> None:
        """Insert; ``AlreadyExists`` if the id is taken."""
        if not self._db.write(self._s.tenant_insert, _tenant_row(tenant)):
            raise AlreadyExists(f"tenant {tenant.id} already exists", field="tenant_id")

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        row = self._db.one(self._s.tenant_get, {"b_id": tenant_id})
        return None if row is None else _tenant_from(row)

    def update(self, tenant: Tenant) -> None:
        """Replace name, status, billing point, rates; ``TenantNotFound`` if missing."""
        row = _tenant_row(tenant)
        row["b_id"] = tenant.id
        if not self._db.write(self._s.tenant_update, row):
            raise TenantNotFound(f"no tenant {tenant.id}", field="tenant_id")

    def bump_dlt_version(self, tenant_id: str) -> int:
        """Increment and return the tenant's DLT registry version; ``TenantNotFound`` if missing."""
        version = self._db.scalar(self._s.tenant_bump, {"b_id": tenant_id})
        if version is None:
            raise TenantNotFound(f"no tenant {tenant_id}", field="tenant_id")
        return int(version)

    def list(self) -> Sequence[Tenant]:
        """Every tenant, oldest first."""
        return [_tenant_from(row) for row in self._db.all(self._s.tenant_list)]


# =========================================================================== API keys


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "mode": key.mode.value,
        "secret_hash": key.secret_hash,
        "scopes": sorted(scope.value for scope in key.scopes),
        "name": key.name,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def _key_from(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        mode=row.mode,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes),
        created_at=row.created_at,
        name=row.name,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class SqlApiKeyRepository(_Repository):
    """API keys: the id is the primary key, so verification is one index lookup."""

    __slots__ = ()

    def add(self, key: ApiKey) -> None:
        """Insert; ``AlreadyExists`` if the key id is taken."""
        if not self._db.write(self._s.key_insert, _key_row(key)):
            raise AlreadyExists(f"API key {key.id} already exists", field="key_id")

    def get(self, key_id: str) -> ApiKey | None:
        """One indexed lookup by the public key id, across tenants."""
        row = self._db.one(self._s.key_get, {"b_id": key_id})
        return None if row is None else _key_from(row)

    def list(self, tenant_id: str) -> Sequence[ApiKey]:
        """The tenant's keys, oldest first."""
        return [_key_from(r) for r in self._db.all(self._s.key_list, {"b_tenant_id": tenant_id})]

    def update(self, key: ApiKey) -> None:
        """Replace revoked_at, expires_at, last_used_at, name; ``ApiKeyNotFound`` if missing.

        Scoped by tenant: another tenant's key with this id counts as missing.
        """
        row = _key_row(key)
        row["b_id"] = key.id
        row["b_tenant_id"] = key.tenant_id
        if not self._db.write(self._s.key_update, row):
            raise ApiKeyNotFound(f"no API key {key.id} for this tenant", field="key_id")


# =========================================================================== DLT


def _template_row(tenant_id: str, template: Template) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "template_id": template.template_id,
        "entity_id": template.entity_id,
        "category": template.category.value,
        "body": template.body,
        "content_type": template.content_type.value,
        "headers": sorted(template.headers),
        "active": template.active,
        "name": template.name,
    }


def _template_from(row: Any) -> Template:
    return Template(
        template_id=row.template_id,
        entity_id=row.entity_id,
        category=row.category,
        body=row.body,
        content_type=row.content_type,
        headers=frozenset(row.headers),
        active=row.active,
        name=row.name,
    )


def _header_row(tenant_id: str, header: Header) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "sender_id": header.sender_id,
        "entity_id": header.entity_id,
        "category": header.category.value,
        "active": header.active,
    }


def _header_from(row: Any) -> Header:
    return Header(
        sender_id=row.sender_id, entity_id=row.entity_id, category=row.category, active=row.active
    )


class SqlDltRepository(_Repository):
    """One tenant's DLT registry: entities, headers, versioned templates, whitelists.

    Lists are sorted in Python, by code point: PostgreSQL would order by the
    database's collation (``abc`` before ``ABC`` under most locales), and
    every backend must give the same order.
    """

    __slots__ = ()

    def add_entity(self, tenant_id: str, entity: Entity) -> None:
        """Insert; ``AlreadyExists`` if the tenant already has this PE ID."""
        row = {"tenant_id": tenant_id, "pe_id": entity.pe_id, "name": entity.name}
        if not self._db.write(self._s.entity_insert, row):
            raise AlreadyExists(f"entity {entity.pe_id} is already registered", field="entity_id")

    def get_entity(self, tenant_id: str, pe_id: str) -> Entity | None:
        """The entity, or None."""
        row = self._db.one(self._s.entity_get, {"b_tenant_id": tenant_id, "b_pe_id": pe_id})
        return None if row is None else Entity(row.pe_id, row.name)

    def list_entities(self, tenant_id: str) -> Sequence[Entity]:
        """Every entity of the tenant, by PE ID."""
        rows = self._db.all(self._s.entity_list, {"b_tenant_id": tenant_id})
        return sorted((Entity(r.pe_id, r.name) for r in rows), key=lambda e: e.pe_id)

    def add_header(self, tenant_id: str, header: Header) -> None:
        """Insert; ``AlreadyExists`` if the tenant already has this sender ID."""
        if not self._db.write(self._s.header_insert, _header_row(tenant_id, header)):
            raise AlreadyExists(f"header {header.sender_id} is already registered", field="header")

    def update_header(self, tenant_id: str, header: Header) -> None:
        """Replace; ``DltRecordNotFound`` if missing."""
        row = _header_row(tenant_id, header)
        row["b_tenant_id"] = tenant_id
        row["b_sender_id"] = header.sender_id
        if not self._db.write(self._s.header_update, row):
            raise DltRecordNotFound(f"no header {header.sender_id}", field="header")

    def get_header(self, tenant_id: str, sender_id: str) -> Header | None:
        """The header (case-sensitive), or None."""
        params = {"b_tenant_id": tenant_id, "b_sender_id": sender_id}
        row = self._db.one(self._s.header_get, params)
        return None if row is None else _header_from(row)

    def list_headers(self, tenant_id: str) -> Sequence[Header]:
        """Every header of the tenant, by sender ID."""
        rows = self._db.all(self._s.header_list, {"b_tenant_id": tenant_id})
        return sorted((_header_from(r) for r in rows), key=lambda h: h.sender_id)

    def add_template(self, tenant_id: str, template: Template, at: datetime) -> None:
        """Insert as version 1; ``AlreadyExists`` if the tenant already has this template ID."""
        row = _template_row(tenant_id, template)
        if not self._db.write(self._s.template_insert, {**row, "version": 1, "updated_at": at}):
            raise AlreadyExists(
                f"template {template.template_id} is already registered", field="dlt_template_id"
            )
        self._db.write(self._s.version_insert, {**row, "version": 1, "changed_at": at})

    def update_template(self, tenant_id: str, template: Template, at: datetime) -> int:
        """Replace and append a history version; return its number. ``DltRecordNotFound``.

        The version is bumped by the UPDATE itself: concurrent updates of one
        template queue on its row lock and get consecutive numbers.
        """
        row = _template_row(tenant_id, template)
        params = {**row, "b_tenant_id": tenant_id, "b_template_id": template.template_id}
        version = self._db.scalar(self._s.template_update, {**params, "updated_at": at})
        if version is None:
            raise DltRecordNotFound(f"no template {template.template_id}", field="dlt_template_id")
        self._db.write(self._s.version_insert, {**row, "version": version, "changed_at": at})
        return int(version)

    def get_template(self, tenant_id: str, template_id: str) -> Template | None:
        """The current version, or None."""
        params = {"b_tenant_id": tenant_id, "b_template_id": template_id}
        row = self._db.one(self._s.template_get, params)
        return None if row is None else _template_from(row)

    def list_templates(self, tenant_id: str) -> Sequence[Template]:
        """Every template of the tenant (active or not), by template ID."""
        rows = self._db.all(self._s.template_list, {"b_tenant_id": tenant_id})
        return sorted((_template_from(r) for r in rows), key=lambda t: t.template_id)

    def template_history(self, tenant_id: str, template_id: str) -> Sequence[TemplateVersion]:
        """Every version, oldest first (empty if unknown)."""
        params = {"b_tenant_id": tenant_id, "b_template_id": template_id}
        return [
            TemplateVersion(version=r.version, template=_template_from(r), changed_at=r.changed_at)
            for r in self._db.all(self._s.version_list, params)
        ]

    def add_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Add an entry; False if it was already there."""
        row = {"tenant_id": tenant_id, "kind": kind, "value": value}
        return bool(self._db.write(self._s.whitelist_insert, row))

    def remove_whitelist(self, tenant_id: str, kind: WhitelistKind, value: str) -> bool:
        """Remove an entry; False if it was not there."""
        params = {"b_tenant_id": tenant_id, "b_kind": kind, "b_value": value}
        return bool(self._db.write(self._s.whitelist_delete, params))

    def list_whitelist(self, tenant_id: str, kind: WhitelistKind) -> Sequence[str]:
        """The entries, sorted."""
        params = {"b_tenant_id": tenant_id, "b_kind": kind}
        return sorted(row.value for row in self._db.all(self._s.whitelist_list, params))


# =========================================================================== messages


def _message_state(message: Message) -> dict[str, Any]:
    """Every column but identity and fingerprint (an insert)."""
    error = message.error
    return {
        "phone": message.phone,
        "content": message.content,
        "template_id": message.template_id,
        "header": message.header,
        "entity_id": message.entity_id,
        "category": message.category,
        "encoding": message.encoding,
        "segments": message.segments,
        "status": message.status.value,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "expires_at": message.expires_at,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
        "route": message.route,
        "possible_duplicate": message.possible_duplicate,
        "error_code": None if error is None else error.code,
        "error_reason": None if error is None else error.reason.value,
        "error_carrier_code": None if error is None else error.carrier_code,
        "sandbox": message.sandbox,
        "priority": message.priority,
        "price_paise": message.price_paise,
        # Most messages carry none: skip the defensive deep copy then.
        "metadata": message.metadata.to_dict() if message.metadata else {},
    }


def _message_transition(message: Message) -> dict[str, Any]:
    """The values of ``_MESSAGE_STATE`` (what ``update`` writes)."""
    error = message.error
    return {
        "status": message.status.value,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "updated_at": message.updated_at,
        "route": message.route,
        "possible_duplicate": message.possible_duplicate,
        "error_code": None if error is None else error.code,
        "error_reason": None if error is None else error.reason.value,
        "error_carrier_code": None if error is None else error.carrier_code,
    }


def _part_row(message_id: str, part: Part) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "idx": part.index,
        "status": part.status.value,
        "carrier_message_id": part.carrier_message_id,
        "submitted_at": part.submitted_at,
        "final_at": part.final_at,
        "error_code": part.error_code,
        "outcome_unknown": part.outcome_unknown,
        "route": part.route,
    }


def _event_row(message_id: str, entry: TimelineEntry) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sequence": entry.sequence,
        "at": entry.at,
        "kind": entry.kind,
        "status": entry.status.value,
        "detail": entry.detail,  # pairs serialise as [key, value] lists
    }


# Rows the adapter wrote itself are rebuilt without re-running the domain's
# validators (``values.builder``); only the enums are looked up.
_PART: Final = builder(Part)
_ENTRY: Final = builder(TimelineEntry)
_MESSAGE: Final = builder(Message)
_TRANSFER: Final = builder(Transfer)
_PART_STATUS: Final = {s.value: s for s in PartStatus}
_STATUS: Final = {s.value: s for s in Status}


def _part_from(row: Any) -> Part:
    return _PART(
        index=row.idx,
        status=_PART_STATUS[row.status],
        carrier_message_id=row.carrier_message_id,
        submitted_at=row.submitted_at,
        final_at=row.final_at,
        error_code=row.error_code,
        outcome_unknown=row.outcome_unknown,
        route=row.route,
    )


#: Timeline details by their JSON text. Most repeat exactly (a route's ``claimed``
#: and ``sent`` entries), and the decoded value is an immutable tuple, so one
#: decoded copy serves them all; cleared whole when full.
_DETAILS: dict[str, tuple[tuple[str, Any], ...]] = {}
_DETAILS_MAX: Final = 4096


def _detail_from(text: str) -> tuple[tuple[str, Any], ...]:
    detail = _DETAILS.get(text)
    if detail is None:
        detail = tuple((key, value) for key, value in json.loads(text))
        if len(_DETAILS) >= _DETAILS_MAX:
            _DETAILS.clear()
        _DETAILS[text] = detail
    return detail


def _entry_from(row: Any) -> TimelineEntry:
    return _ENTRY(
        sequence=row.sequence,
        at=row.at,
        kind=row.kind,
        status=_STATUS[row.status],
        detail=_detail_from(row.detail),
    )


def _message_from(row: Any, parts: Iterable[Any], events: Iterable[Any]) -> Message:
    error = (
        None
        if row.error_code is None
        else MessageError(row.error_code, row.error_reason, row.error_carrier_code)
    )
    return _MESSAGE(
        id=row.id,
        tenant_id=row.tenant_id,
        client_message_id=row.client_message_id,
        phone=row.phone,
        content=row.content,
        template_id=row.template_id,
        header=row.header,
        entity_id=row.entity_id,
        category=row.category,
        encoding=row.encoding,
        segments=row.segments,
        parts=tuple(_part_from(p) for p in parts),
        status=_STATUS[row.status],
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        route=row.route,
        possible_duplicate=row.possible_duplicate,
        error=error,
        sandbox=row.sandbox,
        priority=row.priority,
        price_paise=row.price_paise,
        metadata=JsonObject(row.metadata),
        timeline=tuple(_entry_from(e) for e in events),
    )


class SqlMessageRepository(_Repository):
    """Messages: one row each, plus one row per part and per timeline entry.

    A batch of N messages is three ``executemany`` calls (messages, parts,
    timeline) whatever N is. One repository lives for one unit of work and
    remembers the parts it last read or wrote per message: ``update`` skips
    the parts that are still those very objects (``apply`` keeps unchanged
    parts as they are), so a claim writes no part rows at all.
    """

    __slots__ = ("_parts_seen",)

    def __init__(self, db: Session, statements: _Statements) -> None:
        super().__init__(db, statements)
        self._parts_seen: dict[str, tuple[Part, ...]] = {}

    def _seen(self, message: Message) -> Message:
        self._parts_seen[message.id] = message.parts
        return message

    def _changed_parts(self, message: Message) -> list[dict[str, Any]]:
        seen = self._parts_seen.get(message.id, ())
        rows = [
            _part_row(message.id, p)
            for i, p in enumerate(message.parts)
            if i >= len(seen) or seen[i] is not p
        ]
        self._parts_seen[message.id] = message.parts
        return rows

    def add(self, message: Message, *, fingerprint: str | None) -> None:
        """Insert message, parts and timeline.

        ``DuplicateClientMessageId`` if the tenant already has the
        client_message_id; ``AlreadyExists`` if the message id is taken.
        """
        self.add_many(((message, fingerprint),))

    def add_many(self, items: Sequence[tuple[Message, str | None]]) -> None:
        """Insert several in three round trips; same errors as ``add``.

        The messages go first, with ``ON CONFLICT DO NOTHING``: if one was
        skipped, nothing more is written and the error names the duplicate
        (the caller then rolls back).
        """
        if not items:
            return
        rows = []
        for message, fingerprint in items:
            row = _message_state(message)
            row["id"] = message.id
            row["tenant_id"] = message.tenant_id
            row["client_message_id"] = message.client_message_id
            row["fingerprint"] = fingerprint
            rows.append(row)
        if self._db.write_many(self._s.message_insert, rows) != len(rows):
            raise self._duplicate([message for message, _ in items])
        parts = [_part_row(m.id, p) for m, _ in items for p in m.parts]
        self._db.write_many(self._s.part_insert, parts)
        events = [_event_row(m.id, e) for m, _ in items for e in m.timeline]
        if events:
            self._db.write_many(self._s.event_insert, events)

    def _duplicate(self, batch: Sequence[Message]) -> Exception:
        """Which rule a skipped insert broke (error path only)."""
        client_ids = sorted({m.client_message_id for m in batch if m.client_message_id})
        if client_ids:
            holders = {
                (r.tenant_id, r.client_message_id): r.id
                for r in self._db.all(self._s.client_ids_taken, {"b_client_ids": client_ids})
            }
            for m in batch:
                # Rows this batch inserted hold their own id; any other holder
                # had the client_message_id first.
                holder = holders.get((m.tenant_id, m.client_message_id))
                if holder is not None and holder != m.id:
                    return DuplicateClientMessageId(
                        f"tenant {m.tenant_id} already has a message with client_message_id"
                        f" {m.client_message_id!r} ({holder})"
                    )
        if len(batch) == 1:
            return AlreadyExists(f"message {batch[0].id} already exists", field="id")
        return AlreadyExists("a message id in this batch is already taken", field="id")

    def get(self, tenant_id: str, message_id: str) -> Message | None:
        """The message if it belongs to the tenant, else None (never another tenant's).

        Timeline first, row last, read again if torn: see :meth:`_assemble_ids`.
        """
        key = {"b_message_id": message_id}
        for _attempt in range(_TORN_READS):
            events = self._db.all(self._s.events_of, key)
            parts = self._db.all(self._s.parts_of, key)
            row = self._db.one(self._s.message_get, {"b_id": message_id, "b_tenant_id": tenant_id})
            if row is None:
                return None
            if self._s.one_snapshot or self._db.scalar(self._s.events_stored, key) == len(events):
                return self._seen(_message_from(row, parts, events))
        raise _torn([message_id])

    def find_by_client_id(
        self, tenant_id: str, client_message_id: str
    ) -> tuple[Message, str | None] | None:
        """The message with this client_message_id and its request fingerprint, or None."""
        params = {"b_tenant_id": tenant_id, "b_client_message_id": client_message_id}
        row = self._db.one(self._s.message_by_client_id, params)
        return None if row is None else (self._load(row), row.fingerprint)

    def find_by_client_ids(
        self, tenant_id: str, client_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, str | None]]:
        """The messages with any of these client_message_ids, by id: one query per 500 ids.

        Only hits (replays, rare) are then loaded whole.
        """
        unique = sorted(set(client_message_ids))
        found: dict[str, tuple[Message, str | None]] = {}
        for start in range(0, len(unique), 500):
            params = {"b_tenant_id": tenant_id, "b_client_ids": unique[start : start + 500]}
            for hit in self._db.all(self._s.client_ids_of_tenant, params):
                stored = self.find_by_client_id(tenant_id, hit.client_message_id)
                if stored is not None:
                    found[hit.client_message_id] = stored
        return found

    def _load(self, row: Any) -> Message:
        key = {"b_message_id": row.id}
        parts = self._db.all(self._s.parts_of, key)
        return self._seen(_message_from(row, parts, self._db.all(self._s.events_of, key)))

    def update(self, message: Message) -> None:
        """Persist a message after ``apply``: fields, parts, and timeline entries not yet stored.

        The row is updated first, which on PostgreSQL also locks it, so the
        count of stored timeline entries read next cannot move under us.
        Entries below that count are never written again (append-only).
        Identity (id, tenant, client_message_id) and the request fingerprint
        are fixed at ``add``. ``MessageNotFound`` if missing.
        """
        params = _message_transition(message)
        params["b_id"] = message.id
        params["b_tenant_id"] = message.tenant_id
        if not self._db.write(self._s.message_update, params):
            raise MessageNotFound(f"no message {message.id} for this tenant", field="message_id")
        stored = self._db.scalar(self._s.events_stored, {"b_message_id": message.id})
        new = [_event_row(message.id, e) for e in message.timeline if e.sequence >= stored]
        if new:
            self._db.write_many(self._s.event_insert, new)
        parts = self._changed_parts(message)
        if parts:
            self._db.write_many(self._s.part_upsert, parts)

    def get_many(self, ids: Sequence[tuple[str, str]]) -> Mapping[str, Message]:
        """Messages by (tenant_id, message_id): three queries per 500 ids, whatever the batch.

        Rows are fetched by id, then kept only when the tenant asked matches.
        """
        wanted = set(ids)
        if len(wanted) <= _FEW:
            # A worker woken for one OTP: three prepared lookups beat compiling IN lists.
            found: dict[str, Message] = {}
            for tenant_id, message_id in wanted:
                message = self.get(tenant_id, message_id)
                if message is not None:
                    found[message_id] = message
            return found
        loaded = self._assemble_ids(sorted({message_id for _, message_id in wanted}))
        return {i: m for i, m in loaded.items() if (m.tenant_id, i) in wanted}

    def update_many(
        self, messages: Sequence[Message], *, expected_events: Mapping[str, int] | None = None
    ) -> None:
        """``update`` for a batch: one executemany per table, one count query per 500 ids.

        A message given twice is written once, as its last version.
        ``MessageNotFound`` if any is missing (the caller rolls back).
        """
        batch = list({m.id: m for m in messages}.values())
        if not batch:
            return
        params = []
        for message in batch:
            row = _message_transition(message)
            row["b_id"] = message.id
            row["b_tenant_id"] = message.tenant_id
            params.append(row)
        # Updating first locks the rows (PostgreSQL): the counts below cannot move.
        if self._db.write_many(self._s.message_update, params) != len(params):
            raise self._missing(batch)
        stored: dict[str, int] = {}
        if len(batch) <= _FEW:
            for m in batch:
                stored[m.id] = int(self._db.scalar(self._s.events_stored, {"b_message_id": m.id}))
        else:
            for chunk in _chunks([m.id for m in batch]):
                for hit in self._db.all(self._s.events_stored_many, {"b_ids": chunk}):
                    stored[hit.message_id] = int(hit.stored)
        if expected_events:
            for message in batch:
                expected = expected_events.get(message.id)
                if expected is not None and stored.get(message.id, 0) != expected:
                    raise ConcurrentUpdate(
                        f"message {message.id} changed since it was read", field="message_id"
                    )
        new = [
            _event_row(m.id, e)
            for m in batch
            for e in m.timeline
            if e.sequence >= stored.get(m.id, 0)
        ]
        if new:
            self._db.write_many(self._s.event_insert, new)
        parts = [row for m in batch for row in self._changed_parts(m)]
        if parts:
            self._db.write_many(self._s.part_upsert, parts)

    def _missing(self, batch: Sequence[Message]) -> MessageNotFound:
        """Which message of a batch update matched no row (error path only)."""
        found = {(row.tenant_id, row.id) for row in self._rows_by_id([m.id for m in batch])}
        for message in batch:
            if (message.tenant_id, message.id) not in found:
                return MessageNotFound(
                    f"no message {message.id} for this tenant", field="message_id"
                )
        return MessageNotFound("a message of this batch is missing", field="message_id")

    def find_by_carrier_ids(
        self, route: str, carrier_message_ids: Sequence[str]
    ) -> Mapping[str, tuple[Message, int]]:
        """Parts submitted on ``route`` with these carrier ids (their partial index), then
        their messages, loaded in a batch. Across tenants: a receipt names only the carrier id.
        """
        hits: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(sorted(set(carrier_message_ids))):
            params = {"b_route": route, "b_carrier_ids": chunk}
            for row in self._db.all(self._s.parts_by_carrier, params):
                hits[row.carrier_message_id] = (row.message_id, row.idx)
        if not hits:
            return {}
        loaded = self._assemble_ids(sorted({mid for mid, _ in hits.values()}))
        return {
            carrier_id: (loaded[message_id], index)
            for carrier_id, (message_id, index) in hits.items()
            if message_id in loaded
        }

    def awaiting_receipts(self, sent_before: datetime, limit: int) -> Sequence[Message]:
        """Sent messages last changed before the instant, oldest first (one indexed range)."""
        rows = list(
            self._db.run(self._s.messages_awaiting, {"b_before": sent_before, "b_limit": limit})
        )
        # Loaded again timeline first (_assemble_ids): these are read to be written.
        loaded = self._assemble_ids([row.id for row in rows])
        return [loaded[row.id] for row in rows if row.id in loaded]

    def _rows_by_id(self, message_ids: Sequence[str]) -> list[Any]:
        rows: list[Any] = []
        for chunk in _chunks(message_ids):
            rows.extend(self._db.all(self._s.messages_by_ids, {"b_ids": chunk}))
        return rows

    def _assemble_ids(self, message_ids: Sequence[str]) -> dict[str, Message]:
        """Messages by id for a read-modify-write: timeline first, parts, rows last.

        On PostgreSQL each statement of a READ COMMITTED transaction sees the
        commits made before it started, so a message read in three statements
        can mix two versions. Every change to a message appends to its
        timeline, and its writer checks that the count of stored entries is
        still the count it read (``update_many(expected_events=...)``). Read
        timeline first, and any version newer than that timeline, in the
        parts or the row, comes from a commit the writer's check refuses. Read
        row first (as before), a newer timeline could pair with an older
        row: a ``sent`` row with a ``delivered`` timeline, a write that
        passed the check, and a delivered message stored as ``sent``.

        Read in that order a message can still be torn the other way: a row
        newer than its timeline (a ``delivered`` row whose timeline ends at
        ``sent``, which ``get_message`` would show). So on PostgreSQL the
        entries are counted once more after the row: a count that moved
        means a commit landed in between, and those messages are read again.
        """
        found: dict[str, Message] = {}
        wanted = list(message_ids)
        for _attempt in range(_TORN_READS):
            if not wanted:
                return found
            parts: dict[str, list[Any]] = {}
            events: dict[str, list[Any]] = {}
            rows: list[Any] = []
            for chunk in _chunks(wanted):
                for entry in self._db.all(self._s.events_of_many, {"b_ids": chunk}):
                    events.setdefault(entry.message_id, []).append(entry)
                for part in self._db.all(self._s.parts_of_many, {"b_ids": chunk}):
                    parts.setdefault(part.message_id, []).append(part)
                rows.extend(self._db.all(self._s.messages_by_ids, {"b_ids": chunk}))
            counts: dict[str, int] = {}
            if not self._s.one_snapshot:
                for chunk in _chunks([row.id for row in rows]):
                    for hit in self._db.all(self._s.events_stored_many, {"b_ids": chunk}):
                        counts[hit.message_id] = int(hit.stored)
            wanted = []
            for row in rows:
                timeline = events.get(row.id, ())
                if self._s.one_snapshot or counts.get(row.id, 0) == len(timeline):
                    found[row.id] = self._seen(_message_from(row, parts.get(row.id, ()), timeline))
                else:
                    wanted.append(row.id)
        if wanted:
            raise _torn(wanted)
        return found

    def _assemble(self, rows: Sequence[Any]) -> dict[str, Message]:
        """Messages from their rows, with every part and event loaded by IN lists.

        For reading only (listings) on SQLite; on PostgreSQL, and for any
        message to be written, :meth:`_assemble_ids` reads them.
        """
        if not rows:
            return {}
        if not self._s.one_snapshot:
            # Rows, parts and timeline from separate snapshots could disagree.
            loaded = self._assemble_ids([row.id for row in rows])
            return {row.id: loaded[row.id] for row in rows if row.id in loaded}
        parts: dict[str, list[Any]] = {}
        events: dict[str, list[Any]] = {}
        for chunk in _chunks([row.id for row in rows]):
            for part in self._db.all(self._s.parts_of_many, {"b_ids": chunk}):
                parts.setdefault(part.message_id, []).append(part)
            for entry in self._db.all(self._s.events_of_many, {"b_ids": chunk}):
                events.setdefault(entry.message_id, []).append(entry)
        return {
            row.id: self._seen(_message_from(row, parts.get(row.id, ()), events.get(row.id, ())))
            for row in rows
        }

    def summaries(self, tenant_id: str) -> Sequence[MessageSummary]:
        """Status and price of every message of the tenant, oldest first (reconciliation)."""
        return [
            MessageSummary(r.id, Status(r.status), r.price_paise, r.sandbox)
            for r in self._db.all(self._s.summaries, {"b_tenant_id": tenant_id})
        ]

    def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        """One query for the page's rows (``limit + 1``), then parts and events by IN lists.

        Filtered by phone it walks ix_messages_tenant_id_phone_created_at,
        otherwise ix_messages_tenant_id_created_at, backwards from the cursor.
        """
        m = messages.c
        q = query
        statement = select(messages).where(m.tenant_id == tenant_id)
        if q.status is not None:
            statement = statement.where(m.status == q.status)
        if q.phone is not None:
            statement = statement.where(m.phone == q.phone)
        if q.client_message_id is not None:
            statement = statement.where(m.client_message_id == q.client_message_id)
        if q.template_id is not None:
            statement = statement.where(m.template_id == q.template_id)
        if q.created_from is not None:
            statement = statement.where(m.created_at >= q.created_from)
        if q.created_to is not None:
            statement = statement.where(m.created_at < q.created_to)
        if q.after is not None:
            at, last_id = q.after
            statement = statement.where(
                or_(m.created_at < at, and_(m.created_at == at, m.id < last_id))
            )
        limit = max(q.limit, 0)
        statement = statement.order_by(m.created_at.desc(), m.id.desc()).limit(limit + 1)
        rows = list(self._db.run(statement))
        page = rows[:limit]
        loaded = self._assemble(page)
        return MessagePage(tuple(loaded[row.id] for row in page), len(rows) > limit)

    def count_recent(
        self, tenant_id: str, phone: str, categories: frozenset[str], since: datetime
    ) -> tuple[int, datetime | None]:
        """One prepared, indexed query (the accept path runs it for every OTP)."""
        params = {"b_tenant_id": tenant_id, "b_phone": phone, "b_since": since}
        count, oldest = 0, None
        for row in self._db.all(self._s.count_recent, params):
            if row.category in categories:
                count += int(row.n)
                oldest = row.oldest if oldest is None else min(oldest, row.oldest)
        return count, oldest

    def count_recent_many(
        self, tenant_id: str, phones: Sequence[str], categories: frozenset[str], since: datetime
    ) -> Mapping[str, tuple[int, datetime | None]]:
        """One query per 500 numbers; numbers with nothing counted are absent."""
        found: dict[str, tuple[int, datetime | None]] = {}
        for chunk in _chunks(sorted(set(phones))):
            params = {"b_tenant_id": tenant_id, "b_phones": chunk, "b_since": since}
            found.update(_tally(self._db.all(self._s.count_recent_many, params), categories))
        return found

    def report_rows(
        self,
        since: datetime,
        until: datetime,
        tenant_id: str | None = None,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 5000,
    ) -> Sequence[ReportInput]:
        """Eight narrow columns per message, one keyset page per call (no content, no joins)."""
        m = messages.c
        statement = select(
            m.id,
            m.template_id,
            m.route,
            m.phone,
            m.status,
            m.error_code,
            m.created_at,
            m.updated_at,
        ).where(m.created_at >= since, m.created_at < until)
        if tenant_id is not None:
            statement = statement.where(m.tenant_id == tenant_id)
        if after is not None:
            at, last_id = after
            statement = statement.where(
                or_(m.created_at > at, and_(m.created_at == at, m.id > last_id))
            )
        statement = statement.order_by(m.created_at, m.id).limit(max(limit, 0))
        return [
            ReportInput(
                id=r.id,
                template_id=r.template_id,
                route=r.route,
                phone=r.phone,
                status=r.status,
                error_code=r.error_code,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in self._db.run(statement)
        ]


def _tally(
    rows: Iterable[Any], categories: frozenset[str]
) -> dict[str, tuple[int, datetime | None]]:
    """Sum (count, oldest) per phone over the grouped rows whose category is counted."""
    found: dict[str, tuple[int, datetime | None]] = {}
    for row in rows:
        if row.category not in categories:
            continue
        count, oldest = found.get(row.phone, (0, None))
        first = row.oldest if oldest is None else min(oldest, row.oldest)
        found[row.phone] = (count + int(row.n), first)
    return found


#: Up to this many messages are loaded one by one with prepared statements.
_FEW: Final = 4
#: Reads of a message another transaction keeps changing before giving up (_assemble_ids).
_TORN_READS: Final = 10


def _torn(message_ids: Sequence[str]) -> ConcurrentUpdate:
    return ConcurrentUpdate(
        f"message {message_ids[0]} kept changing while it was read; try again",
        field="message_id",
    )


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    """Slices of at most ``_CHUNK`` items: IN lists stay within every driver's bind limit."""
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


# =========================================================================== routes


def route_document(config: RouteConfig) -> dict[str, Any]:
    """A route config as plain JSON (password included): sets sorted, tags and codes as keys."""
    route, connection = config.route, config.connection
    return {
        "route": {
            "name": route.name,
            "priority": route.priority,
            "weight": route.weight,
            "tps": route.tps,
            "window": route.window,
            "categories": sorted(c.value for c in route.categories),
            "operators": sorted(route.operators),
            "prefixes": list(route.prefixes),
            "enabled": route.enabled,
            "sandbox": route.sandbox,
            "retry_permanent_elsewhere": route.retry_permanent_elsewhere,
        },
        "connection": {
            "host": connection.host,
            "port": connection.port,
            "system_id": connection.system_id,
            "password": connection.password,
            "system_type": connection.system_type,
            "bind": connection.bind,
            "dlt_tlvs": dict(connection.dlt_tlvs),
            "tlv_nul_terminated": connection.tlv_nul_terminated,
            "dlt_chain": connection.dlt_chain,
            "id_mode": connection.id_mode,
            # JSON keys are text: the command_status goes in as its decimal.
            "status_overrides": {
                str(code): cls.value for code, cls in connection.status_overrides.items()
            },
            "response_timeout": connection.response_timeout,
            "enquire_interval": connection.enquire_interval,
            "resend_unknown": sorted(c.value for c in connection.resend_unknown),
        },
    }


def route_from_document(document: Mapping[str, Any]) -> RouteConfig:
    """The inverse of :func:`route_document` (the domain's converters validate again)."""
    route = dict(document["route"])
    connection = dict(document["connection"])
    route["categories"] = [Category(c) for c in route["categories"]]
    route["prefixes"] = tuple(route["prefixes"])
    connection["status_overrides"] = {
        int(code): StatusClass(cls) for code, cls in connection["status_overrides"].items()
    }
    connection["resend_unknown"] = [Category(c) for c in connection["resend_unknown"]]
    route.pop("price_paise", None)  # an early draft stored it; prices live on rate cards
    return RouteConfig(route=Route(**route), connection=CarrierConnection(**connection))


class SqlRouteRepository(_Repository):
    """Carrier routes: one JSON document per name, plus its enabled flag."""

    __slots__ = ()

    def add(self, config: RouteConfig) -> None:
        """Insert; ``AlreadyExists`` if the name is taken."""
        row = {"name": config.name, "config": route_document(config)}
        if not self._db.write(self._s.route_insert, {**row, "enabled": config.route.enabled}):
            raise AlreadyExists(f"route {config.name} already exists", field="name")

    def get(self, name: str) -> RouteConfig | None:
        """The route, or None."""
        row = self._db.one(self._s.route_get, {"b_name": name})
        return None if row is None else route_from_document(row.config)

    def list(self) -> Sequence[RouteConfig]:
        """Every route, by name (code point order, as on every backend)."""
        rows = sorted(self._db.all(self._s.route_list), key=lambda row: row.name)
        return [route_from_document(row.config) for row in rows]

    def update(self, config: RouteConfig) -> None:
        """Replace; ``RouteNotFound`` if missing."""
        params = {
            "b_name": config.name,
            "config": route_document(config),
            "enabled": config.route.enabled,
        }
        if not self._db.write(self._s.route_update, params):
            raise RouteNotFound(f"no route {config.name}", field="route")


# =========================================================================== heartbeats


class SqlHeartbeatRepository(_Repository):
    """Workers' heartbeats: one row per running worker, refreshed every few seconds."""

    __slots__ = ()

    def beat(self, heartbeat: Heartbeat) -> None:
        """Refresh the row, or insert it the first time."""
        row = {
            "kind": heartbeat.kind,
            "started_at": heartbeat.started_at,
            "seen_at": heartbeat.seen_at,
        }
        if not self._db.write(self._s.heartbeat_update, {**row, "b_owner": heartbeat.owner}):
            self._db.write(self._s.heartbeat_insert, {**row, "owner": heartbeat.owner})

    def list(self) -> Sequence[Heartbeat]:
        """Every heartbeat, most recently seen first."""
        return [
            Heartbeat(
                owner=row.owner, kind=row.kind, started_at=row.started_at, seen_at=row.seen_at
            )
            for row in self._db.all(self._s.heartbeat_list)
        ]

    def remove(self, owner: str) -> None:
        """Forget a worker that stopped cleanly."""
        self._db.write(self._s.heartbeat_delete, {"b_owner": owner})

    def prune(self, before: datetime) -> int:
        """Forget workers not seen since ``before``."""
        return self._db.write(self._s.heartbeat_prune, {"b_before": before})


# =========================================================================== receipts


def _receipt_key(receipt: StoredReceipt) -> tuple[str, str, str]:
    """The inbox's primary key of a receipt."""
    return (receipt.route, receipt.carrier_message_id, receipt.outcome.value)


def _receipt_row(receipt: StoredReceipt) -> dict[str, Any]:
    return {
        "route": receipt.route,
        "carrier_message_id": receipt.carrier_message_id,
        "outcome": receipt.outcome.value,
        "stat": receipt.stat,
        "error_code": receipt.error_code,
        "received_at": receipt.received_at,
        "done_at": receipt.done_at,
        "state": receipt.state,
        "tenant_id": receipt.tenant_id,
        "message_id": receipt.message_id,
        "part_index": receipt.part_index,
    }


def _receipt_from(row: Any) -> StoredReceipt:
    return StoredReceipt(
        route=row.route,
        carrier_message_id=row.carrier_message_id,
        outcome=ReceiptOutcome(row.outcome),
        stat=row.stat,
        error_code=row.error_code,
        received_at=row.received_at,
        state=row.state,
        done_at=row.done_at,
        tenant_id=row.tenant_id,
        message_id=row.message_id,
        part_index=row.part_index,
    )


class SqlReceiptRepository(_Repository):
    """The receipt inbox; its primary key (route, carrier id, outcome) is the dedup key."""

    __slots__ = ()

    def add(self, receipt: StoredReceipt) -> bool:
        """Store a receipt; False (nothing written) when its key exists (``ON CONFLICT``)."""
        return bool(self._db.write(self._s.receipt_insert, _receipt_row(receipt)))

    def add_many(self, receipts: Sequence[StoredReceipt]) -> Sequence[bool]:
        """One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` for the batch.

        What it returns are the keys it stored; within the batch the first
        receipt with a key is the one stored. The rows go in in key order (a
        stable sort): two batches inserting the same keys at once then wait
        for each other in one order, never in a deadlock.
        """
        if len(receipts) <= 1:
            return [self.add(r) for r in receipts]
        rows = [_receipt_row(r) for r in sorted(receipts, key=_receipt_key)]
        stored = {tuple(row) for row in self._db.bulk_rows(self._s.receipt_insert_many, rows)}
        flags = []
        for receipt in receipts:
            key = _receipt_key(receipt)
            flags.append(key in stored)
            stored.discard(key)
        return flags

    def parked(self, route: str, carrier_message_ids: Sequence[str]) -> Sequence[StoredReceipt]:
        """Parked receipts of ``route`` for these carrier ids, oldest first."""
        found: list[StoredReceipt] = []
        for chunk in _chunks(sorted(set(carrier_message_ids))):
            params = {"b_route": route, "b_carrier_ids": chunk}
            found.extend(_receipt_from(r) for r in self._db.all(self._s.receipts_parked, params))
        return sorted(found, key=lambda r: (r.received_at, r.carrier_message_id, r.outcome))

    def resolve(
        self,
        receipt: StoredReceipt,
        *,
        state: ReceiptState,
        tenant_id: str | None = None,
        message_id: str | None = None,
        part_index: int | None = None,
    ) -> None:
        """Move a stored receipt (found by route, carrier id, outcome) to ``state``."""
        params = {
            "b_route": receipt.route,
            "b_carrier_message_id": receipt.carrier_message_id,
            "b_outcome": receipt.outcome.value,
            "state": state,
            "tenant_id": tenant_id,
            "message_id": message_id,
            "part_index": part_index,
        }
        self._db.write(self._s.receipt_resolve, params)

    def expire_parked(self, received_before: datetime) -> int:
        """Mark parked receipts received before the instant ``unknown``; how many."""
        return int(self._db.write(self._s.receipt_expire, {"b_before": received_before}))

    def list(
        self,
        *,
        state: ReceiptState | None = None,
        message_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[StoredReceipt]:
        """Receipts, newest first (then by carrier id), filtered by state and/or message."""
        r = receipts.c
        query = select(receipts).order_by(
            r.received_at.desc(), r.carrier_message_id, r.outcome, r.route
        )
        if state is not None:
            query = query.where(r.state == state)
        if message_id is not None:
            query = query.where(r.message_id == message_id)
        return [_receipt_from(row) for row in self._db.run(query.limit(max(limit, 0)))]


# =========================================================================== ledger


def _transfer_row(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "kind": transfer.kind.value,
        "debit_account": transfer.debit_account,
        "credit_account": transfer.credit_account,
        "amount": transfer.amount,
        "tenant_id": transfer.tenant_id,
        "created_at": transfer.created_at,
        "pending_id": transfer.pending_id,
        "message_id": transfer.message_id,
        "reference": transfer.reference,
    }


_TRANSFER_KINDS: Final = {k.value: k for k in TransferKind}


def _transfer_from(row: Any) -> Transfer:
    return _TRANSFER(
        id=row.id,
        kind=_TRANSFER_KINDS[row.kind],
        debit_account=row.debit_account,
        credit_account=row.credit_account,
        amount=row.amount,
        tenant_id=row.tenant_id,
        created_at=row.created_at,
        pending_id=row.pending_id,
        message_id=row.message_id,
        reference=row.reference,
    )


def _balance_from(row: Any) -> AccountBalance:
    return AccountBalance(
        account_id=row.id,
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
    )


#: Accounts whose totals are derived from transfers instead of kept on their row.
_DERIVED_ACCOUNTS: Final = frozenset({TOPUPS_ACCOUNT, REVENUE_ACCOUNT})


def _lock_order(account_id: str) -> tuple[bool, str]:
    """Tenant accounts first, then system accounts, each by id: one global lock order."""
    return (not is_tenant_account(account_id), account_id)


class SqlLedgerRepository(_Repository):
    """Accounts with running totals, and immutable transfers that change them.

    ``record`` inserts the transfer first (``ON CONFLICT DO NOTHING``: a
    replay changes nothing), then applies its effects, computed by
    :func:`bharatsend_core.domain.ledger.effects`, as one UPDATE per account.
    A refused transfer (overdraw, unknown account, bad settlement) is undone
    inside the transaction before the error is raised, so the unit of work
    stays consistent and usable.
    """

    __slots__ = ()

    def ensure_account(self, account_id: str, tenant_id: str | None) -> None:
        """Create the account with zero totals if it does not exist."""
        row = {"id": account_id, "tenant_id": tenant_id, **dict.fromkeys(_DELTA_KEYS, 0)}
        self._db.write(self._s.account_insert, row)

    def record(self, transfer: Transfer) -> Transfer:
        """Apply a transfer atomically with its balance effects; return what is stored.

        Idempotent: an equal replay returns the stored transfer. Raises
        ``TransferConflict`` (different fields under the same id, a settlement
        that does not fit, a reservation already settled, an unknown account)
        or ``InsufficientCredits`` (a tenant account would overdraw).
        """
        if not self._db.write(self._s.transfer_insert, _transfer_row(transfer)):
            return self._replayed(transfer)
        try:
            settles = None if transfer.pending_id is None else self.get(transfer.pending_id)
            self._apply(effects(transfer, settles))
        except BharatSendError:
            self._db.write(self._s.transfer_delete, {"b_id": transfer.id})
            raise
        return transfer

    def reserve_many(self, transfers: Sequence[Transfer]) -> None:
        """Insert the reservations in one executemany, then one guarded UPDATE per account.

        A refused batch (overdraw) is undone inside the transaction, like a
        refused ``record``; the caller rolls the unit of work back anyway.
        """
        if not transfers:
            return
        for transfer in transfers:
            if transfer.kind is not TransferKind.RESERVE:
                raise TransferConflict(f"{transfer.id} is not a reservation", field="kind")
        rows = [_transfer_row(t) for t in transfers]
        if self._db.write_many(self._s.transfer_insert, rows) != len(rows):
            raise TransferConflict("a transfer id of this batch already exists", field="id")
        try:
            self._apply([change for t in transfers for change in effects(t)])
        except BharatSendError:
            self._db.write_many(self._s.transfer_delete, [{"b_id": t.id} for t in transfers])
            raise

    def _replayed(self, transfer: Transfer) -> Transfer:
        """The insert was skipped: an equal replay, a conflicting one, or a second settlement."""
        stored = self.get(transfer.id)
        if stored is not None:
            if same_transfer(stored, transfer):
                return stored
            raise TransferConflict(
                f"transfer {transfer.id} was already recorded with different fields;"
                " a replay must repeat the original exactly",
                field="id",
            )
        # Not the id: uq_ledger_transfers_pending_id refused a second settlement.
        holder = self._db.one(self._s.transfer_by_pending, {"b_pending_id": transfer.pending_id})
        by = "" if holder is None else f" by {holder.kind} {holder.id}"
        raise TransferConflict(
            f"{transfer.pending_id} is already settled{by}; a {transfer.kind.value} cannot"
            " settle it again",
            field="pending_id",
        )

    def _apply(self, changes: Sequence[Effect]) -> None:
        """One UPDATE per account, in lock order; undo the ones done if a later one is refused.

        The system accounts are skipped: every reservation credits
        ``system:revenue``, so keeping its row current would make every accept
        of every tenant queue on one row lock. Their totals are derived from
        their transfers when read (:meth:`balance`); nothing guards them.
        """
        deltas: dict[str, dict[str, int]] = {}
        for change in changes:
            if change.account_id in _DERIVED_ACCOUNTS:
                continue
            per_field = deltas.setdefault(change.account_id, dict.fromkeys(_DELTA_KEYS.values(), 0))
            per_field[_DELTA_KEYS[change.field]] += change.delta
        done: list[str] = []
        try:
            for account_id in sorted(deltas, key=_lock_order):
                mine = [c for c in changes if c.account_id == account_id]
                self._change(account_id, deltas[account_id], mine)
                done.append(account_id)
        except BharatSendError:
            for account_id in done:
                undo = {key: -value for key, value in deltas[account_id].items()}
                self._db.write(self._s.account_change, {"b_id": account_id, **undo})
            raise

    def _change(self, account_id: str, delta: Mapping[str, int], mine: Sequence[Effect]) -> None:
        params: dict[str, Any] = {"b_id": account_id, **delta}
        # How far the available balance (credits_posted - debits_posted -
        # debits_pending) drops: only a drop can overdraw.
        need = delta["d_debits_posted"] + delta["d_debits_pending"] - delta["d_credits_posted"]
        if need <= 0 or not is_tenant_account(account_id):
            if not self._db.write(self._s.account_change, params):
                raise self._unknown(account_id)
            return
        params["b_need"] = need
        for _ in range(_SPEND_ATTEMPTS):
            # The database evaluates the guard on the newest committed row,
            # after any concurrent writer of this account finished: two
            # transactions can never both spend the same paise.
            if self._db.write(self._s.account_spend, params):
                return
            balance = self._stored_balance(account_id)
            if balance is None:
                raise self._unknown(account_id)
            # Raises InsufficientCredits worded by the domain; returns if a
            # top-up committed meanwhile and the debit now fits: try again.
            apply_effects({account_id: balance}, mine)
        raise StorageUnavailable(
            f"the balance of {account_id} kept changing while it was being debited;"
            " nothing was recorded, retry the operation"
        )

    @staticmethod
    def _unknown(account_id: str) -> TransferConflict:
        return TransferConflict(
            f"ledger account {account_id} does not exist; create it with ensure_account first",
            field="account_id",
        )

    def _stored_balance(self, account_id: str) -> AccountBalance | None:
        row = self._db.one(self._s.account_get, {"b_id": account_id})
        return None if row is None else _balance_from(row)

    def get(self, transfer_id: str) -> Transfer | None:
        """The transfer, or None."""
        row = self._db.one(self._s.transfer_get, {"b_id": transfer_id})
        return None if row is None else _transfer_from(row)

    def get_many(self, transfer_ids: Sequence[str]) -> Mapping[str, Transfer]:
        """The transfers by id: one query per 500 ids."""
        found: dict[str, Transfer] = {}
        for chunk in _chunks(sorted(set(transfer_ids))):
            for row in self._db.all(self._s.transfers_by_ids, {"b_ids": chunk}):
                found[row.id] = _transfer_from(row)
        return found

    def settle_many(
        self, transfers: Sequence[Transfer], *, known: Mapping[str, Transfer] | None = None
    ) -> None:
        """Read what they settle (unless ``known``) in one query, insert all, then one UPDATE
        per account.

        The unique index on ``pending_id`` refuses a second settlement at the
        insert, even against a concurrent transaction.
        """
        if not transfers:
            return
        for t in transfers:
            if t.kind is TransferKind.RESERVE or t.pending_id is None:
                raise TransferConflict(f"{t.id} does not settle anything", field="kind")
        known = known or {}
        wanted = [t.pending_id for t in transfers if t.pending_id and t.pending_id not in known]
        settled = {**known, **self.get_many(wanted)} if wanted else known
        changes: list[Effect] = []
        for t in transfers:
            target = settled.get(t.pending_id or "")
            if target is None:
                raise TransferConflict(
                    f"{t.id} settles {t.pending_id}, which does not exist", field="pending_id"
                )
            changes.extend(effects(t, target))  # validates kind, accounts and amount
        rows = [_transfer_row(t) for t in transfers]
        if self._db.write_many(self._s.transfer_insert, rows) != len(rows):
            raise TransferConflict(
                "a transfer of this batch exists already, or settles something already settled",
                field="pending_id",
            )
        self._apply(changes)

    def settlement_of(self, reservation_id: str) -> Transfer | None:
        """The post or void that settled a reservation, or None while it is pending."""
        row = self._db.one(self._s.transfer_settlement, {"b_pending_id": reservation_id})
        return None if row is None else _transfer_from(row)

    def balance(self, account_id: str) -> AccountBalance:
        """The account's totals (all zero for an unknown account)."""
        if account_id in _DERIVED_ACCOUNTS:
            return self._derived(account_id)
        return self._stored_balance(account_id) or AccountBalance(account_id)

    def balances(self) -> Sequence[AccountBalance]:
        """Every account's totals, by account id."""
        return [
            self._derived(row.id) if row.id in _DERIVED_ACCOUNTS else _balance_from(row)
            for row in self._db.all(self._s.account_all)
        ]

    def _derived(self, account_id: str) -> AccountBalance:
        """A system account's totals, rebuilt from the transfers that touch it (cold path)."""
        touching = (t for _, t in self.transfers(account_id=account_id))
        return recompute_balances(touching).get(account_id) or AccountBalance(account_id)

    def transfers(
        self,
        *,
        account_id: str | None = None,
        tenant_id: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Sequence[tuple[int, Transfer]]:
        """Transfers in the order they were recorded, each with its sequence number (a cursor)."""
        t = ledger_transfers.c
        query = select(ledger_transfers).order_by(t.seq)
        if account_id is not None:
            query = query.where(or_(t.debit_account == account_id, t.credit_account == account_id))
        if tenant_id is not None:
            query = query.where(t.tenant_id == tenant_id)
        if after is not None:
            query = query.where(t.seq > after)
        if limit is not None:
            query = query.limit(limit)
        return [(int(row.seq), _transfer_from(row)) for row in self._db.run(query)]


# =========================================================================== dispatch


def _claim_order(claim: DispatchClaim) -> tuple[int, datetime, str]:
    return (-claim.priority, claim.due_at, claim.message_id)


class SqlDispatchRepository(_Repository):
    """The dispatch queue: one row per message, leased to one worker at a time.

    Queuing or releasing rows tells the unit of work (``on_work``), which
    wakes dispatch waiters once it commits.
    """

    __slots__ = ("_on_work",)

    def __init__(
        self, db: Session, statements: _Statements, on_work: Callable[[], None] = lambda: None
    ) -> None:
        """Wrap the session; ``on_work`` is called after rows became claimable."""
        super().__init__(db, statements)
        self._on_work = on_work

    def enqueue(
        self,
        message_id: str,
        tenant_id: str,
        due_at: datetime,
        priority: int,
        *,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """Add a row; ``AlreadyExists`` if the message is already queued.

        Held (``owner`` and ``lease_expires_at``): added leased, and no wake-up.
        """
        self.enqueue_many(
            ((message_id, tenant_id, due_at, priority),),
            owner=owner,
            lease_expires_at=lease_expires_at,
        )

    def enqueue_many(
        self,
        rows: Iterable[tuple[str, str, datetime, int]],
        *,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """Add several rows in one round trip; ``AlreadyExists`` if one is already queued."""
        held = owner is not None and lease_expires_at is not None
        values = [
            {
                "message_id": message_id,
                "tenant_id": tenant_id,
                "due_at": due_at,
                "priority": priority,
                "owner": owner if held else None,
                "lease_expires_at": lease_expires_at if held else None,
            }
            for message_id, tenant_id, due_at, priority in rows
        ]
        if values and self._db.write_many(self._s.dispatch_insert, values) != len(values):
            if len(values) == 1:
                message_id = values[0]["message_id"]
                raise AlreadyExists(f"message {message_id} is already queued", field="message_id")
            raise AlreadyExists("a message of this batch is already queued", field="message_id")
        if values and not held:
            self._on_work()

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[DispatchClaim]:
        """Lease up to ``limit`` due rows nobody holds (or whose lease ran out).

        Highest priority first, then earliest due. One statement picks and
        leases (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
        """
        if limit <= 0:
            return []
        params = {
            "b_now": now,
            "b_limit": limit,
            "new_owner": owner,
            "new_lease_expires_at": now + lease,
        }
        claims = [
            DispatchClaim(
                r.message_id, r.tenant_id, owner, r.lease_expires_at, r.due_at, r.priority
            )
            for r in self._db.all(self._s.dispatch_claim, params)
        ]
        # RETURNING promises no order.
        return sorted(claims, key=_claim_order)

    def ack(self, message_id: str, owner: str) -> bool:
        """Remove a row the owner holds; False if it does not hold it (lease lost)."""
        params = {"b_message_id": message_id, "b_owner": owner}
        return bool(self._db.write(self._s.dispatch_ack, params))

    def release(self, message_id: str, owner: str, due_at: datetime) -> bool:
        """Give a row back, due again at ``due_at``; False if the owner does not hold it."""
        return self.release_many(((message_id, due_at),), owner) == 1

    def extend(self, message_id: str, owner: str, until: datetime) -> bool:
        """Extend a held lease; False if the owner does not hold it."""
        params = {"b_message_id": message_id, "b_owner": owner, "new_lease_expires_at": until}
        return bool(self._db.write(self._s.dispatch_extend, params))

    def extend_many(self, message_ids: Sequence[str], owner: str, until: datetime) -> int:
        """``extend`` several held leases in one round trip; how many the owner still held."""
        params = [
            {"b_message_id": message_id, "b_owner": owner, "new_lease_expires_at": until}
            for message_id in message_ids
        ]
        return int(self._db.write_many(self._s.dispatch_extend, params)) if params else 0

    def depth(self, now: datetime) -> int:
        """Rows due at ``now`` (held or not): how far behind dispatch is."""
        return int(self._db.scalar(self._s.dispatch_depth, {"b_now": now}))

    def ack_many(self, message_ids: Sequence[str], owner: str) -> int:
        """``ack`` several rows in one round trip; how many the owner still held."""
        params = [{"b_message_id": message_id, "b_owner": owner} for message_id in message_ids]
        return int(self._db.write_many(self._s.dispatch_ack, params)) if params else 0

    def release_many(self, rows: Sequence[tuple[str, datetime]], owner: str) -> int:
        """``release`` several (message_id, due_at) rows in one round trip; how many were held."""
        params = [
            {"b_message_id": message_id, "b_owner": owner, "new_due_at": due_at}
            for message_id, due_at in rows
        ]
        if not params:
            return 0
        released = int(self._db.write_many(self._s.dispatch_release, params))
        if released:
            self._on_work()
        return released

    def next_due(self) -> datetime | None:
        """When the next row becomes claimable: its due time, or its lease's end if later."""
        due: datetime | None = self._db.scalar(self._s.dispatch_next_due)
        return due


# =========================================================================== webhooks


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _endpoint_row(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "secrets": [
            {
                "secret": s.secret,
                "created_at": _instant(s.created_at),
                "retires_at": _instant(s.retires_at),
            }
            for s in endpoint.secrets
        ],
        "created_at": endpoint.created_at,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
    }


def _endpoint_from(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        events=tuple(row.events),
        secrets=tuple(
            EndpointSecret(
                secret=s["secret"],
                created_at=datetime.fromisoformat(s["created_at"]),
                retires_at=(
                    None if s["retires_at"] is None else datetime.fromisoformat(s["retires_at"])
                ),
            )
            for s in row.secrets
        ),
        created_at=row.created_at,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
    )


def _outbox_row(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "endpoint_id": entry.endpoint_id,
        "tenant_id": entry.tenant_id,
        "event_type": entry.event_type,
        "payload": dict(entry.payload),
        "created_at": entry.created_at,
        "state": entry.state,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "owner": None,
        "lease_expires_at": None,
        "last_status": entry.last_status,
        "last_error": entry.last_error,
        "finished_at": entry.finished_at,
    }


def _outbox_from(row: Any) -> OutboxEntry:
    return OutboxEntry(
        event_id=row.event_id,
        endpoint_id=row.endpoint_id,
        tenant_id=row.tenant_id,
        event_type=row.event_type,
        payload=row.payload,
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        finished_at=row.finished_at,
    )


def _claim_key(entry: OutboxEntry) -> tuple[datetime | None, str, str]:
    return (entry.next_attempt_at, entry.event_id, entry.endpoint_id)


class SqlWebhookRepository(_Repository):
    """Webhook endpoints, the outbox (leased like dispatch rows) and the attempt log."""

    __slots__ = ()

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Insert; ``AlreadyExists`` if the id is taken."""
        if not self._db.write(self._s.endpoint_insert, _endpoint_row(endpoint)):
            raise AlreadyExists(f"webhook endpoint {endpoint.id} already exists", field="id")

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """The tenant's endpoint, or None (never another tenant's)."""
        params = {"b_id": endpoint_id, "b_tenant_id": tenant_id}
        row = self._db.one(self._s.endpoint_get, params)
        return None if row is None else _endpoint_from(row)

    def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        """The tenant's endpoints (enabled or not), oldest first."""
        rows = self._db.all(self._s.endpoint_list, {"b_tenant_id": tenant_id})
        return [_endpoint_from(row) for row in rows]

    def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Replace; ``WebhookEndpointNotFound`` if missing."""
        row = _endpoint_row(endpoint)
        params = {name: row[name] for name in _ENDPOINT_STATE}
        params.update(b_id=endpoint.id, b_tenant_id=endpoint.tenant_id)
        if not self._db.write(self._s.endpoint_update, params):
            raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint.id}", field="id")

    def enqueue(self, entries: Sequence[OutboxEntry]) -> int:
        """Insert entries, skipping pairs already there (``ON CONFLICT``); how many were new."""
        rows = [_outbox_row(entry) for entry in entries]
        return int(self._db.write_many(self._s.outbox_insert, rows)) if rows else 0

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[OutboxEntry]:
        """Lease up to ``limit`` pending entries due at ``now``, earliest due first.

        One statement picks and leases (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
        """
        if limit <= 0:
            return []
        params = {
            "b_now": now,
            "b_limit": limit,
            "new_owner": owner,
            "new_lease_expires_at": now + lease,
        }
        claimed = [_outbox_from(row) for row in self._db.all(self._s.outbox_claim, params)]
        # RETURNING promises no order.
        return sorted(claimed, key=_claim_key)

    def finish(self, entry: OutboxEntry, attempt: DeliveryAttempt, owner: str) -> bool:
        """Store the entry's new state and release the lease, then log the attempt.

        The guarded UPDATE (``owner = :owner``) is the ownership check: False,
        and nothing written, when ``owner`` no longer holds the entry.
        """
        row = _outbox_row(entry)
        params = {name: row[name] for name in _OUTBOX_STATE}
        params.update(b_event_id=entry.event_id, b_endpoint_id=entry.endpoint_id, b_owner=owner)
        if not self._db.write(self._s.outbox_finish, params):
            return False
        logged = {
            "event_id": entry.event_id,
            "endpoint_id": entry.endpoint_id,
            "number": attempt.number,
            "at": attempt.at,
            "status": attempt.status,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
            "response_snippet": attempt.response_snippet,
        }
        self._db.write(self._s.attempt_insert, logged)
        return True

    def get(self, event_id: str, endpoint_id: str) -> OutboxEntry | None:
        """The entry, or None."""
        params = {"b_event_id": event_id, "b_endpoint_id": endpoint_id}
        row = self._db.one(self._s.outbox_get, params)
        return None if row is None else _outbox_from(row)

    def list(
        self,
        tenant_id: str,
        *,
        state: OutboxState | None = None,
        endpoint_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxEntry]:
        """The tenant's entries, newest first (then by event and endpoint), filtered."""
        o = webhook_outbox.c
        query = (
            select(*_OUTBOX_COLUMNS)
            .where(o.tenant_id == tenant_id)
            .order_by(o.created_at.desc(), o.event_id, o.endpoint_id)
        )
        if state is not None:
            query = query.where(o.state == state)
        if endpoint_id is not None:
            query = query.where(o.endpoint_id == endpoint_id)
        return [_outbox_from(row) for row in self._db.run(query.limit(max(limit, 0)))]

    def attempts(self, event_id: str, endpoint_id: str) -> Sequence[DeliveryAttempt]:
        """Every attempt at one entry, oldest first."""
        params = {"b_event_id": event_id, "b_endpoint_id": endpoint_id}
        return [
            DeliveryAttempt(
                event_id=row.event_id,
                endpoint_id=row.endpoint_id,
                number=row.number,
                at=row.at,
                status=row.status,
                latency_ms=row.latency_ms,
                error=row.error,
                response_snippet=row.response_snippet,
            )
            for row in self._db.all(self._s.attempt_list, params)
        ]

    def replay(self, event_id: str, endpoint_id: str, now: datetime) -> bool:
        """Make an entry pending again, due at ``now`` (lease cleared); False if unknown."""
        params = {
            "b_event_id": event_id,
            "b_endpoint_id": endpoint_id,
            "new_next_attempt_at": now,
        }
        return bool(self._db.write(self._s.outbox_replay, params))
