"""The worker: carriers, the receipt inbox and the dispatch loop, supervised.

One :class:`Worker` per process (``bharatsend worker`` or
``BharatSend.run_worker()``). It starts a carrier per enabled route, feeds
their receipts to a :class:`~bharatsend_core.service.receipts.ReceiptInbox`,
and runs the :class:`~bharatsend_core.service.dispatch.Dispatcher` loop
(claim and submit) and its recorder (what the carriers answered, in
batches) on two threads that a supervisor restarts with backoff if they ever
raise. New work
wakes the loop at once (the storage's dispatch signal: in-process for
SQLite, ``LISTEN/NOTIFY`` on PostgreSQL); retries due later wake it at their
time; a slow poll covers writes from other processes on SQLite. Route
changes in the database are picked up every ``reload_interval`` seconds.

While it runs, the worker takes messages accepted in its own process straight
from the accept transaction (``EventHub.set_hand_off``,
``Dispatcher.claim_at_accept``): they are committed claimed and submitted right
after the commit, with no claim transaction in between.

``stop()`` (SIGTERM/SIGINT in :meth:`Worker.run`) stops claiming, waits for
in-flight submits, records them, gives back every lease, unbinds and lets
the inbox store what it received: nothing is lost, nothing is left claimed.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from types import FrameType

from attrs import frozen

from bharatsend_core.domain.errors import BharatSendError
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.ports.carrier import Carrier, CarrierHealth
from bharatsend_core.ports.storage import Heartbeat, UnitOfWork
from bharatsend_core.service.context import Context
from bharatsend_core.service.dispatch import Dispatcher, DispatchOptions, DispatchStats
from bharatsend_core.service.receipts import ReceiptInbox
from bharatsend_core.service.webhook_delivery import WebhookDeliverer

__all__ = ["CarrierFactory", "Worker", "WorkerHealth", "process_owner", "tune_gc"]

_log = logging.getLogger(__name__)

#: A worker silent this long is forgotten (it died without removing its heartbeat).
_HEARTBEAT_FORGET = timedelta(days=1)

#: Builds the carrier for a route (the facade passes the SMPP adapter).
CarrierFactory = Callable[[RouteConfig], Carrier]


#: Allocations between young-generation collections in a worker process (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Tune the cyclic garbage collector for a process that is mostly a worker.

    Every message the worker handles allocates a few hundred short-lived
    objects (rows, domain values, PDUs), and CPython's default thresholds
    then collect the young generation every 700 allocations and walk the
    whole heap, SQLAlchemy's and phonenumbers' metadata included, every few
    seconds. Freezing what exists at startup takes those objects out of
    every later collection, and a higher young threshold makes collections
    rarer; garbage without cycles is freed at once by reference counting
    either way. :meth:`Worker.run` calls this (``bharatsend worker``,
    ``BharatSend.run_worker()``); an application that embeds a worker with
    :meth:`Worker.start` keeps its own settings.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(max(_young, GC_YOUNG_THRESHOLD), middle, old)


def process_owner(tag: str) -> str:
    """A lease owner name unique to this process: ``host:pid:tag`` (shown in health checks)."""
    return f"{socket.gethostname()}:{os.getpid()}:{tag}"


@frozen
class WorkerHealth:
    """What a health endpoint reports for one worker."""

    owner: str
    running: bool
    routes: tuple[CarrierHealth, ...]
    in_flight: int
    receipt_backlog: int
    loop_restarts: int
    carrier_restarts: int
    stats: DispatchStats


class Worker:
    """A supervised dispatch worker; see the module docstring."""

    def __init__(
        self,
        ctx: Context,
        carrier_factory: CarrierFactory,
        *,
        owner: str | None = None,
        options: DispatchOptions | None = None,
        extra_routes: Sequence[RouteConfig] = (),
        poll_interval: float = 0.5,
        reload_interval: float = 10.0,
        park_window: timedelta = timedelta(hours=6),
        receipt_wait: timedelta = timedelta(hours=72),
        bind_wait: float = 2.0,
        on_stop: Callable[[], None] | None = None,
        webhooks: WebhookDeliverer | None = None,
        heartbeat_interval: float = 5.0,
        hand_off: bool = True,
        receipt_threads: int = 1,
    ) -> None:
        self._ctx = ctx
        self._factory = carrier_factory
        self.owner = owner or process_owner(f"{id(self):x}")
        self._extra = tuple(extra_routes)
        self.poll_interval = poll_interval
        self.reload_interval = reload_interval
        self.bind_wait = bind_wait
        self.heartbeat_interval = heartbeat_interval
        self._started_at: datetime | None = None
        self.inbox = ReceiptInbox(
            ctx, park_window=park_window, receipt_wait=receipt_wait, threads=receipt_threads
        )
        # Set when this process committed webhook rows, so they go out at once
        # instead of at the next poll (rows from other processes wait for it).
        self._webhook_kick = threading.Event()
        #: Set when new dispatch work was signalled (the loop then claims).
        self._work = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        #: Take OTPs accepted in this process straight from the accept transaction.
        self.hand_off = hand_off
        self._remove_hand_off: Callable[[], None] | None = None
        self._carriers: dict[str, Carrier] = {}
        self._configs: dict[str, RouteConfig] = {}
        self.dispatcher = Dispatcher(ctx, {}, (), owner=self.owner, options=options)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self.loop_restarts = 0
        #: Carriers restarted because they stopped on their own.
        self.carrier_restarts = 0
        self._next_reload = 0.0
        self._on_stop = on_stop
        #: Delivers the webhook outbox on its own thread (None: this worker does not).
        self.webhooks = webhooks

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Worker:
        """Start carriers, the inbox and the loop; returns once routes had ``bind_wait`` to bind."""
        if self._started:
            raise RuntimeError("the worker was already started")
        self._started = True
        self.inbox.start()
        self._reload()
        deadline = self._ctx.clock.monotonic() + self.bind_wait
        while self._ctx.clock.monotonic() < deadline and not all(
            c.ready for c in self._carriers.values()
        ):
            self._stopping.wait(0.01)
        self._started_at = self._ctx.clock.now()
        self._beat()
        if self.hand_off:
            self._remove_hand_off = self._ctx.hub.set_hand_off(self.dispatcher.claim_at_accept)
        loops: list[tuple[Callable[[], None], str]] = [
            (partial(self._supervise, self._loop, "dispatch loop"), "dispatch-loop"),
            (partial(self._supervise, self._record_loop, "recorder"), "dispatch-record"),
            (self._wake, "dispatch-wake"),
            (self._heartbeats, "heartbeat"),
        ]
        if self.webhooks is not None:
            self._unsubscribe = self._ctx.hub.on_webhooks_queued(self._webhook_kick.set)
            loops.append((self._deliver_webhooks, "webhook-loop"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def run(self, *, install_signals: bool = True, gc_tuning: bool = True) -> None:
        """Start, block until SIGTERM/SIGINT (or :meth:`stop`), then shut down cleanly.

        The worker then owns the process, so by default the garbage collector
        is tuned for it (:func:`tune_gc`).
        """
        if gc_tuning:
            tune_gc()
        if install_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, _frame: FrameType | None) -> None:
                _log.info("worker %s: signal %d, draining", self.owner, signum)
                self._stopping.set()
                self.dispatcher.kick.set()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        if not self._started:
            self.start()
        self._stopping.wait()
        self.stop()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Drain in-flight submits, record them, give back leases, unbind; idempotent."""
        self._stopping.set()
        if self._remove_hand_off is not None:
            self._remove_hand_off()
            self._remove_hand_off = None
        self.dispatcher.taking_hand_offs = False
        self.dispatcher.kick.set()
        self.dispatcher.outcomes.set()
        self._webhook_kick.set()
        self._ctx.storage.wake_dispatch()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.dispatcher.drain(drain_timeout)
        stoppers = [
            threading.Thread(target=c.stop, args=(drain_timeout,), daemon=True)
            for c in self._carriers.values()
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self.dispatcher.drain(1.0)  # the outcomes stopping resolved (unknown / not sent)
        try:
            self.dispatcher.release_all()
        except BharatSendError as e:
            _log.warning("worker %s: releasing leases failed (%s); they expire", self.owner, e.code)
        self.inbox.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.webhooks is not None:
            self.webhooks.close()
        try:
            self._ctx.write(lambda uow: uow.heartbeats.remove(self.owner))
        except BharatSendError as e:
            _log.warning("worker %s: removing the heartbeat failed (%s)", self.owner, e.code)
        if self._on_stop is not None:
            self._on_stop()

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._started and not self._stopping.is_set()

    def health(self) -> WorkerHealth:
        """Routes, backlog and counters."""
        return WorkerHealth(
            owner=self.owner,
            running=self.running,
            routes=tuple(c.health() for c in self._carriers.values()),
            in_flight=self.dispatcher.in_flight,
            receipt_backlog=self.inbox.backlog,
            loop_restarts=self.loop_restarts,
            carrier_restarts=self.carrier_restarts,
            stats=self.dispatcher.stats,
        )

    def carrier(self, route: str) -> Carrier | None:
        """The running carrier of a route (tests and health checks)."""
        return self._carriers.get(route)

    # ------------------------------------------------------------------ threads

    def _supervise(self, loop: Callable[[], None], what: str) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                loop()
                return
            except Exception:
                self.loop_restarts += 1
                _log.exception("worker %s: %s failed; restarting", self.owner, what)
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    def _loop(self) -> None:
        dispatcher = self.dispatcher
        clock = self._ctx.clock
        poll_at = 0.0
        while not self._stopping.is_set():
            if clock.monotonic() >= self._next_reload:
                self._reload()
            dispatcher.kick.clear()
            # Claim when new work was signalled, the last claim came back full,
            # or the poll is due (retries coming due, writes from other
            # processes on SQLite); never on a wake-up for nothing else: an
            # empty claim would hold the write lock for nothing while a
            # request thread may be waiting to accept.
            signalled = self._work.is_set()
            if signalled:
                # Cleared only when seen: a signal after this is kept for the next turn.
                self._work.clear()
            claim = signalled or dispatcher.backlog or clock.monotonic() >= poll_at
            try:
                dispatcher.step(claim=claim, record=False)
            except BharatSendError as e:
                # The database is down: wait a little and try again (leases protect us).
                _log.warning("worker %s: dispatch step failed: %s", self.owner, e.code)
                if claim:
                    poll_at = 0.0  # the claim did not happen: the next turn makes it
                self._stopping.wait(self.poll_interval)
                continue
            if dispatcher.backlog and dispatcher.has_room:
                continue  # a full batch: more is waiting, claim again at once
            if claim:
                poll_at = clock.monotonic() + self._idle_wait()
            # Sleep until a hand-off, new work, freed room or the poll wakes us.
            dispatcher.kick.wait(max(0.0, poll_at - clock.monotonic()))

    def _record_loop(self) -> None:
        """Record outcomes on their own thread: on PostgreSQL its statements' round
        trips overlap the loop's claims and submits instead of queueing behind them.
        """
        dispatcher = self.dispatcher
        while not self._stopping.is_set():
            wait = dispatcher.record_wait()
            if wait is None or wait > 0.0:
                dispatcher.outcomes.wait(self.poll_interval if wait is None else wait)
                dispatcher.outcomes.clear()
                continue
            # Failures are counted and retried inside; what is left stays in flight
            # and is due again after the linger: pause so a failing database is
            # not asked fifty times a second.
            failures = dispatcher.stats.record_failures
            dispatcher.record_completed()
            if dispatcher.stats.record_failures > failures:
                self._stopping.wait(self.poll_interval)

    def _idle_wait(self) -> float:
        """Until the next retry is due, at most ``poll_interval``."""
        try:
            due = self._ctx.read(lambda uow: uow.dispatch.next_due())
        except BharatSendError:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        wait = (due - self._ctx.clock.now()).total_seconds()
        return min(self.poll_interval, max(0.0, wait))

    def _deliver_webhooks(self) -> None:
        """Deliver due outbox rows until stopped; a failing round is logged and retried."""
        deliverer = self.webhooks
        assert deliverer is not None
        while not self._stopping.is_set():
            try:
                handled = deliverer.run_once()
            except Exception:
                _log.exception("worker %s: webhook delivery failed; retrying", self.owner)
                handled = 0
            if not handled:
                self._webhook_kick.wait(self.poll_interval)
                self._webhook_kick.clear()

    def _beat(self) -> None:
        """Record that this worker is alive (and forget workers silent for a day)."""
        assert self._started_at is not None
        now = self._ctx.clock.now()
        beat = Heartbeat(self.owner, "worker", self._started_at, now)

        def run(uow: UnitOfWork) -> None:
            uow.heartbeats.beat(beat)
            uow.heartbeats.prune(now - _HEARTBEAT_FORGET)

        try:
            self._ctx.write(run)
        except BharatSendError as e:
            _log.warning("worker %s: heartbeat not recorded: %s", self.owner, e.code)

    def _heartbeats(self) -> None:
        while not self._stopping.wait(self.heartbeat_interval):
            self._beat()

    def _wake(self) -> None:
        storage = self._ctx.storage
        while not self._stopping.is_set():
            try:
                if storage.wait_for_dispatch(1.0):
                    self._work.set()
                    self.dispatcher.kick.set()
            except Exception:  # pragma: no cover - the signal is an optimisation
                _log.exception("worker %s: dispatch wake-up failed", self.owner)
                self._stopping.wait(self.poll_interval)

    # ------------------------------------------------------------------ routes

    def _reload(self) -> None:
        """Start carriers for new or changed routes (and dead ones), stop disabled or removed."""
        self._next_reload = self._ctx.clock.monotonic() + self.reload_interval
        try:
            stored = self._ctx.read(_list_routes)
        except BharatSendError as e:
            _log.warning("worker %s: reading routes failed: %s", self.owner, e.code)
            return
        wanted = {r.name: r for r in (*stored, *self._extra) if r.route.enabled}
        for name in list(self._carriers):
            carrier = self._carriers[name]
            if wanted.get(name) != self._configs.get(name):
                _log.info("worker %s: route %s removed or changed; stopping it", self.owner, name)
            elif carrier.health().state == "stopped":
                # Its I/O thread died (a bug, never a network fault: those reconnect).
                self.carrier_restarts += 1
                _log.error("worker %s: route %s stopped unexpectedly; restarting", self.owner, name)
            else:
                continue
            del self._carriers[name]
            self._configs.pop(name, None)
            # Unbinding waits for in-flight submits: never on the dispatch thread.
            threading.Thread(
                target=carrier.stop, args=(5.0,), name=f"stop-{name}", daemon=True
            ).start()
        for name, config in wanted.items():
            if name not in self._carriers:
                carrier = self._factory(config)
                carrier.start(self.inbox.sink)
                self._carriers[name] = carrier
                self._configs[name] = config
        self.dispatcher.set_routes(list(self._configs.values()), self._carriers)


def _list_routes(uow: UnitOfWork) -> Sequence[RouteConfig]:
    return uow.routes.list()
