"""Dispatch: claim accepted messages, submit them on a route, record what the carrier said.

A :class:`Dispatcher` is one worker's loop. Each step it

1. records the messages whose every part has an outcome (one transaction for
   all of them): ``PartSubmitted`` / ``OutcomeUnknown`` / ``SubmitFailed``,
   failover to the next route, the ledger settlement, receipts that were
   parked waiting for these carrier ids, and the dispatch row (ack when sent
   or failed, release to the retry time when retrying);
2. claims due rows with a lease (one transaction): expired messages fail
   with ``expired_before_submit`` and their reservation is voided; a message
   another worker left in ``submitting`` (it crashed mid-submit) is resolved
   as an unknown outcome first; the rest get a route and a ``Claim`` (the
   attempt number) and are committed as ``submitting`` *before* any PDU is
   written, so a crash can never send a message the database does not know
   was being sent;
3. hands the claimed messages to their routes' carriers and returns; the
   outcomes arrive on future callbacks.

A worker runs step 1 on a thread of its own (``step(record=False)`` on the
loop, :meth:`Dispatcher.record_completed` on the recorder), in batches of
``record_batch`` or after ``record_linger``; the events keep the times the
responses arrived.

A message accepted in the worker's own process may skip step 2: the accept
transaction offers it to :meth:`Dispatcher.claim_at_accept`, stores it
claimed, and hands it over after its commit; the next step submits it.

Leases are extended while submits are in flight; a worker that dies simply
stops extending them and another worker picks the rows up. Nothing here
reads a wall clock or draws a random number except through the injected
clock and ``rng``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial

from attrs import define, field, frozen

from bharatsend_core.domain.dlt.registry import Category
from bharatsend_core.domain.errors import (
    BharatSendError,
    CarrierUnavailable,
    ConcurrentUpdate,
    InvalidArgument,
)
from bharatsend_core.domain.message import (
    Claim,
    Expire,
    Message,
    OutcomeUnknown,
    PartSubmitted,
    RetryPolicy,
    Status,
    SubmitFailed,
    schedule_retry,
)
from bharatsend_core.domain.phone import parse_phone
from bharatsend_core.domain.routing import (
    Breaker,
    Route,
    RouteConfig,
    StatusClass,
    after_failure,
    choose_routes,
)
from bharatsend_core.ports.carrier import Carrier, PartOutcome
from bharatsend_core.ports.futures import Future
from bharatsend_core.ports.futures import done as _done
from bharatsend_core.ports.storage import UnitOfWork
from bharatsend_core.service.context import Context
from bharatsend_core.service.events import Handed
from bharatsend_core.service.receipts import apply_receipts, settle_changed
from bharatsend_core.service.webhooks import record_events

__all__ = ["DispatchOptions", "DispatchStats", "Dispatcher"]

_log = logging.getLogger(__name__)

_UNRECORDED_RETRIES = 3
_DEFAULT_RETRY = RetryPolicy(max_attempts=8, base=timedelta(seconds=2), cap=timedelta(minutes=5))


@frozen(kw_only=True)
class DispatchOptions:
    """Tuning for one dispatcher; the defaults suit one worker per host."""

    #: Rows claimed per transaction.
    batch: int = 500
    #: Most messages submitted and not yet recorded at once.
    max_in_flight: int = 2000
    #: How long a claim holds a row; extended every third of it while in flight.
    lease: timedelta = timedelta(seconds=60)
    #: Backoff when the only route failed transiently.
    retry: RetryPolicy = _DEFAULT_RETRY
    #: Wait before resending a part whose submit went unanswered.
    unknown_resend_after: timedelta = timedelta(seconds=1)
    #: Wait before trying again when no route can take a message now.
    no_route_delay: timedelta = timedelta(seconds=1)
    #: The worker's recorder writes outcomes once this many are waiting ...
    record_batch: int = 200
    #: ... or the oldest has waited this long (seconds): one transaction for
    #: many outcomes, not one per response. Event times are the responses' own.
    record_linger: float = 0.02
    #: Breaker: this many failures in ``breaker_window`` seconds open a route ...
    breaker_failures: int = 5
    breaker_window: float = 60.0
    #: ... for this many seconds, then one probe is let through.
    breaker_cooldown: float = 30.0


@define
class DispatchStats:
    """Counters since the dispatcher started (for health checks and benchmarks)."""

    claimed: int = 0
    submitted: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    failovers: int = 0
    expired: int = 0
    unknown: int = 0
    record_failures: int = 0


@define
class _InFlight:
    message: Message
    route: RouteConfig
    futures: list[Future[PartOutcome]]
    tried: list[str] = field(factory=list)
    #: Set when the message could not be put on this route's wire at all.
    wire_error: str | None = None
    #: When its last part's outcome arrived (the time its events are recorded at).
    done_at: datetime | None = None


@define
class _Tally:
    """What one claim transaction counted; added to the stats after it commits."""

    claimed: int = 0
    expired: int = 0
    unknown: int = 0


@define
class _Recorded:
    """What one recording transaction did; applied to breakers and stats after it commits."""

    messages: list[Message] = field(factory=list)
    restarts: list[tuple[Message, RouteConfig, list[str]]] = field(factory=list)
    route_results: list[tuple[str, bool]] = field(factory=list)
    unknown: int = 0


def _carrier_code(outcome: PartOutcome) -> str | None:
    return None if outcome.command_status is None else f"0x{outcome.command_status:08x}"


class Dispatcher:
    """One worker's claim -> submit -> record loop over a set of carriers."""

    def __init__(
        self,
        ctx: Context,
        carriers: Mapping[str, Carrier],
        routes: Sequence[RouteConfig],
        *,
        owner: str,
        options: DispatchOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._ctx = ctx
        self._carriers = dict(carriers)
        self._routes: dict[str, RouteConfig] = {r.name: r for r in routes}
        self.owner = owner
        self.options = options or DispatchOptions()
        self._rng = rng or random.Random()  # noqa: S311 - routing weights and jitter
        self._breakers: dict[str, Breaker] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self._completed: list[str] = []
        #: Monotonic time the oldest unrecorded outcome arrived (None: none waiting).
        self._completed_since: float | None = None
        #: Messages claimed in an accept transaction and committed, to submit (under _lock).
        self._handed: list[tuple[Message, RouteConfig]] = []
        #: False stops taking messages from the accept path (the worker is stopping).
        self.taking_hand_offs = True
        #: Set when new work may be due: a hand-off, or room freed under a backlog.
        self.kick = threading.Event()
        #: Set when outcomes are waiting to be recorded (the first, and a full batch).
        self.outcomes = threading.Event()
        #: Guards the counters and the breakers, which the loop and a recorder share.
        self._shared = threading.Lock()
        self._next_extend = 0.0
        self.stats = DispatchStats()
        self._warned_no_route = False
        self.backlog = False

    # ------------------------------------------------------------------ configuration

    def set_routes(self, routes: Sequence[RouteConfig], carriers: Mapping[str, Carrier]) -> None:
        """Replace the route table (a reload); in-flight messages keep their route."""
        self._routes = {r.name: r for r in routes}
        self._carriers = dict(carriers)

    @property
    def in_flight(self) -> int:
        """Messages submitted and not yet recorded."""
        return len(self._in_flight)

    @property
    def has_room(self) -> bool:
        """True while fewer than ``max_in_flight`` messages are in flight."""
        return len(self._in_flight) < self.options.max_in_flight

    def breaker(self, route: str) -> Breaker | None:
        """The route's breaker (None until it first failed)."""
        return self._breakers.get(route)

    # ------------------------------------------------------------------ the loop

    def step(self, *, claim: bool = True, record: bool = True) -> int:
        """Submit what the accept path handed over, record what completed, then claim and submit.

        ``record=False`` leaves the outcomes to another thread calling
        :meth:`record_completed` when :meth:`record_wait` says they are due
        (the worker's recorder). Returns how many messages it handled.
        """
        handled = self.submit_handed()
        if record:
            handled += self.record_completed()
        if claim:
            room = self.options.max_in_flight - len(self._in_flight)
            if room > 0:
                handled += self.claim_and_submit(min(self.options.batch, room))
        self._extend_leases()
        return handled

    def record_wait(self) -> float | None:
        """Seconds until the waiting outcomes are due to be recorded; None when none wait."""
        with self._lock:
            since = self._completed_since
            waiting = len(self._completed)
        if since is None or not waiting:
            return None
        if waiting >= self.options.record_batch:
            return 0.0
        return max(0.0, since + self.options.record_linger - self._ctx.clock.monotonic())

    def record_completed(self) -> int:
        """Record every in-flight message whose parts all have an outcome.

        The first try works from the copies held in flight (what this worker
        committed at claim time), so recording reads nothing back; a message
        someone else changed meanwhile (a receipt for an earlier attempt's
        part) makes the write refuse with ``ConcurrentUpdate``, and the retry
        reads the batch fresh.

        Safe to call from one thread while another runs :meth:`step` with
        ``record=False``: they share only the in-flight table (single dict
        operations), the counters and breakers (under a lock) and the
        carriers (thread-safe); a failover resubmits from the recording thread.
        """
        with self._lock:
            ids = self._completed
            self._completed = []
            self._completed_since = None
        done = [self._in_flight[i] for i in dict.fromkeys(ids) if i in self._in_flight]
        if not done:
            return 0
        reload = False
        for attempt in range(_UNRECORDED_RETRIES):
            try:
                result = self._ctx.write(partial(self._record, done=done, reload=reload))
                break
            except ConcurrentUpdate:
                reload = True
            except BharatSendError as e:
                # The database blinked: read the batch again and redo it.
                reload = True
                with self._shared:
                    self.stats.record_failures += 1
                _log.warning("dispatch: recording %d outcomes failed: %s", len(done), e.code)
            if attempt == _UNRECORDED_RETRIES - 1:
                # Keep them in flight; the next step tries again, and if this
                # worker dies the leases run out and another resolves them.
                self._completed_again([f.message.id for f in done])
                return 0
        for flight in done:
            self._in_flight.pop(flight.message.id, None)
        self._count(result)
        for message, route, tried in result.restarts:
            self._submit(message, route, tried)
        if self.backlog:
            self.kick.set()  # room was freed and rows are waiting: the loop claims again
        return len(done)

    def _completed_again(self, ids: list[str]) -> None:
        with self._lock:
            self._completed.extend(ids)
            if self._completed_since is None:
                self._completed_since = self._ctx.clock.monotonic()

    def _count(self, result: _Recorded) -> None:
        for route, ok in result.route_results:
            self._route_result(route, ok)
        stats = self.stats
        with self._shared:
            stats.unknown += result.unknown
            stats.failovers += len(result.restarts)
            for m in result.messages:
                if m.status is Status.FAILED:
                    stats.failed += 1
                elif m.status is Status.RETRYING:
                    stats.retried += 1
                elif m.status is not Status.SUBMITTING:
                    stats.sent += 1

    def claim_and_submit(self, limit: int) -> int:
        """Claim up to ``limit`` due rows, mark them submitting, and submit them."""
        now = self._ctx.clock.now()
        tally = _Tally()
        starts = self._ctx.write(lambda uow: self._claim(uow, now, limit, tally))
        # Counted once committed (a failed claim counts nothing).
        with self._shared:
            self.stats.claimed += tally.claimed
            self.stats.expired += tally.expired
            self.stats.unknown += tally.unknown
        #: True when the claim came back full: more is probably due right now.
        self.backlog = tally.claimed >= limit
        for message, route in starts:
            self._submit(message, route, [route.name])
        return len(starts)

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for in-flight outcomes and record them.

        Messages the accept path handed over are submitted first: they are
        committed as ``submitting`` and leased to this worker.
        """
        self.taking_hand_offs = False
        self.submit_handed()
        deadline = self._ctx.clock.monotonic() + timeout
        while self._in_flight and self._ctx.clock.monotonic() < deadline:
            self.outcomes.wait(0.05)
            self.outcomes.clear()
            self.submit_handed()
            self.record_completed()
        self.record_completed()

    # ------------------------------------------------------------------ the accept path's hand-off

    def claim_at_accept(self, message: Message, now: datetime) -> Handed | None:
        """Claim a message inside the transaction accepting it (any thread); None declines.

        Declines when stopping, when this worker already has ``max_in_flight``
        messages, or when no ready route serves the message: it is then
        queued as usual. Nothing here writes or changes state, so a rollback
        of the accept needs no undo; the message goes out only if the accept
        commits and calls ``Handed.submit``.
        """
        if not self.taking_hand_offs or message.status is not Status.ACCEPTED:
            return None
        if now >= message.expires_at:
            return None
        with self._lock:
            if len(self._in_flight) + len(self._handed) >= self.options.max_in_flight:
                return None
        route = self._pick(message, exclude=())
        if route is None:
            return None
        claimed = message.apply(Claim(now, route.name))
        return Handed(
            claimed,
            self.owner,
            now + self.options.lease,
            partial(self._hand_over, claimed, route),
        )

    def _hand_over(self, message: Message, route: RouteConfig) -> None:
        """After the accept committed: queue the message for the loop thread and wake it."""
        with self._lock:
            self._handed.append((message, route))
        self.kick.set()

    def submit_handed(self) -> int:
        """Submit the messages the accept path claimed and committed; how many."""
        if not self._handed:
            return 0
        with self._lock:
            handed, self._handed = self._handed, []
        with self._shared:
            self.stats.claimed += len(handed)
        for message, route in handed:
            self._submit(message, route, [route.name])
        return len(handed)

    def release_all(self) -> int:
        """Give back the leases of messages never recorded (shutdown); they are due now."""
        now = self._ctx.clock.now()
        rows = [(i, now) for i in self._in_flight]
        if not rows:
            return 0
        self._in_flight.clear()
        return self._ctx.write(lambda uow: uow.dispatch.release_many(rows, self.owner))

    # ------------------------------------------------------------------ claiming

    def _claim(
        self, uow: UnitOfWork, now: datetime, limit: int, tally: _Tally
    ) -> list[tuple[Message, RouteConfig]]:
        claims = uow.dispatch.claim(self.owner, now, self.options.lease, limit)
        if not claims:
            return []
        tally.claimed = len(claims)
        stored = uow.messages.get_many([(c.tenant_id, c.message_id) for c in claims])
        updates: list[Message] = []
        settle: list[Message] = []
        acks: list[str] = []
        releases: list[tuple[str, datetime]] = []
        starts: list[tuple[Message, RouteConfig]] = []
        for claim in claims:
            message = stored.get(claim.message_id)
            if message is None or message.is_final or message.status is Status.SENT:
                acks.append(claim.message_id)  # nothing left to send
                continue
            if claim.message_id in self._in_flight:
                continue  # our own lease ran out while waiting; keep waiting
            original = message
            if message.status is Status.SUBMITTING:
                tally.unknown += 1
                message = self._recover(message, now)
            if message.status in (Status.ACCEPTED, Status.RETRYING) and now >= message.expires_at:
                message = message.apply(Expire(now))
            if message.status in (Status.SENT, Status.FAILED):
                tally.expired += message.status is Status.FAILED
                updates.append(message)
                settle.append(message)
                acks.append(message.id)
                continue
            route = self._pick(message, exclude=())
            if route is None:
                if message is not original:
                    updates.append(message)
                releases.append((message.id, now + self.options.no_route_delay))
                self._warn_no_route(message)
                continue
            self._warned_no_route = False
            message = message.apply(Claim(now, route.name))
            updates.append(message)
            starts.append((message, route))
        before = {m.id: len(stored[m.id].timeline) for m in updates}
        uow.messages.update_many(updates, expected_events=before)
        record_events(uow, [(m, before[m.id]) for m in updates], now, self._ctx.hub)
        uow.dispatch.ack_many(acks, self.owner)
        uow.dispatch.release_many(releases, self.owner)
        settle_changed(uow, settle, now)  # last, as in _record
        return starts

    def _recover(self, message: Message, now: datetime) -> Message:
        """A message left ``submitting`` by a dead worker: its pending parts' fate is unknown."""
        route = self._routes.get(message.route or "")
        resend = route is None or self._resends(route, message)
        retry_at = now if resend else None
        for index in message.pending_part_indexes:
            if message.status is not Status.SUBMITTING:
                break
            message = message.apply(OutcomeUnknown(now, index, retry_at))
        return message

    def _resends(self, route: RouteConfig, message: Message) -> bool:
        try:
            category = Category(message.category)
        except ValueError:
            return True
        return category in route.connection.resend_unknown

    def _pick(self, message: Message, exclude: Iterable[str]) -> RouteConfig | None:
        options = self._failover(message, exclude)
        return options[0] if options else None

    def _failover(self, message: Message, exclude: Iterable[str]) -> list[RouteConfig]:
        # Also called from request threads (claim_at_accept): read-only, on snapshots.
        excluded = set(exclude)
        usable: list[Route] = []
        for config in self._routes.values():
            carrier = self._carriers.get(config.name)
            if config.name in excluded or carrier is None or not carrier.ready:
                continue
            usable.append(config.route)
        if not usable:
            return []
        try:
            category = Category(message.category)
        except ValueError:
            return []
        operator = None
        if any(route.operators for route in usable):  # parse only when a filter needs it
            try:
                operator = parse_phone(message.phone).operator
            except BharatSendError:
                operator = None
        chosen = choose_routes(
            usable,
            category=category,
            phone_e164=message.phone,
            operator=operator,
            sandbox=message.sandbox,
            breakers=dict(self._breakers),
            now=self._ctx.clock.monotonic(),
            pick=self._rng.random(),
        )
        return [self._routes[r.name] for r in chosen]

    def _warn_no_route(self, message: Message) -> None:
        if not self._warned_no_route:
            self._warned_no_route = True
            _log.warning(
                "dispatch: no ready route serves %s (category %s, sandbox %s); "
                "retrying until its validity ends",
                message.id,
                message.category,
                message.sandbox,
            )

    # ------------------------------------------------------------------ submitting

    def _submit(self, message: Message, route: RouteConfig, tried: list[str]) -> None:
        carrier = self._carriers.get(route.name)
        flight = _InFlight(message, route, [], tried)
        now = self._ctx.clock.now()
        try:
            if carrier is None:
                raise CarrierUnavailable(f"route {route.name!r} has no carrier")
            flight.futures = list(carrier.submit(message, now=now))
            with self._shared:
                self._breakers[route.name] = self._breaker(route.name).record_attempt(
                    self._ctx.clock.monotonic()
                )
        except InvalidArgument as e:
            flight.wire_error = e.field or "message"
            flight.futures = [
                _done(PartOutcome(index=i, status_class=StatusClass.PERMANENT))
                for i in message.pending_part_indexes
            ]
        except CarrierUnavailable:
            flight.futures = [
                _done(PartOutcome(index=i, status_class=StatusClass.SESSION))
                for i in message.pending_part_indexes
            ]
        with self._shared:
            self.stats.submitted += 1
        self._in_flight[message.id] = flight
        self._watch(flight)

    def _watch(self, flight: _InFlight) -> None:
        remaining = [len(flight.futures)]
        lock = threading.Lock()
        message_id = flight.message.id
        clock = self._ctx.clock
        batch = self.options.record_batch

        def on_done(_future: Future[PartOutcome]) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                flight.done_at = clock.now()
                with self._lock:
                    self._completed.append(message_id)
                    waiting = len(self._completed)
                    if waiting == 1:
                        self._completed_since = clock.monotonic()
                # The recorder needs waking for the first (to time the linger)
                # and when a batch is full; the rest would wake it for nothing.
                if waiting == 1 or waiting == batch:
                    self.outcomes.set()

        if not flight.futures:
            on_done(_done(PartOutcome(index=0)))
            remaining[0] = 0
            return
        for future in flight.futures:
            future.add_done_callback(on_done)

    def _breaker(self, route: str) -> Breaker:
        breaker = self._breakers.get(route)
        if breaker is None:
            options = self.options
            breaker = Breaker(
                failures_to_open=options.breaker_failures,
                cooldown=options.breaker_cooldown,
                window=options.breaker_window,
            )
        return breaker

    def _route_result(self, route: str, ok: bool) -> None:
        now = self._ctx.clock.monotonic()
        with self._shared:
            breaker = self._breaker(route)
            before = breaker.state(now)
            breaker = breaker.record_success(now) if ok else breaker.record_failure(now)
            self._breakers[route] = breaker
        after = breaker.state(now)
        if before != after:
            _log.warning("route %s: breaker %s -> %s", route, before, after)

    # ------------------------------------------------------------------ recording

    def _record(self, uow: UnitOfWork, *, done: Sequence[_InFlight], reload: bool) -> _Recorded:
        now = self._ctx.clock.now()
        if reload:
            base = uow.messages.get_many([(f.message.tenant_id, f.message.id) for f in done])
        else:
            base = {f.message.id: f.message for f in done}
        result = _Recorded()
        current: dict[str, Message] = {}
        expected: dict[str, int] = {}
        restarted: set[str] = set()
        for flight in done:
            stored = base.get(flight.message.id)
            if (
                stored is None
                or stored.status is not Status.SUBMITTING
                or stored.attempts != flight.message.attempts
            ):
                # Another worker took it over after our lease ran out: its record wins.
                continue
            expected[stored.id] = len(stored.timeline)
            message, restart = self._outcome(stored, flight, flight.done_at or now, result)
            current[message.id] = message
            if restart is not None:
                result.restarts.append((message, restart, [*flight.tried, restart.name]))
                restarted.add(message.id)
        # Receipts that overtook these submit responses were parked; apply them now.
        parked = [
            receipt
            for route, ids in _carrier_ids(current.values()).items()
            for receipt in uow.receipts.parked(route, ids)
        ]
        if parked:
            # Settle what the submit responses did first (the post at submit
            # billing), then what the receipts did (a refund for a rejection):
            # the same ledger trail as when the receipts come later.
            settle_changed(uow, list(current.values()), now)
            apply_receipts(uow, parked, current=current, lookup=_lookup_in(current))
        messages = list(current.values())
        uow.messages.update_many(messages, expected_events=expected)
        record_events(uow, [(m, expected[m.id]) for m in messages], now, self._ctx.hub)
        acks = [m.id for m in messages if m.status not in (Status.SUBMITTING, Status.RETRYING)]
        releases = [
            (m.id, m.next_attempt_at or now)
            for m in messages
            if m.status is Status.RETRYING and m.id not in restarted
        ]
        uow.dispatch.ack_many(acks, self.owner)
        uow.dispatch.release_many(releases, self.owner)
        # Last: settling locks the tenants' accounts until the commit, and
        # every accept of those tenants waits for them.
        settle_changed(uow, messages, now)
        result.messages = messages
        return result

    def _outcome(
        self, message: Message, flight: _InFlight, now: datetime, result: _Recorded
    ) -> tuple[Message, RouteConfig | None]:
        """Apply one attempt's part outcomes; the next route when failing over."""
        route = flight.route
        outcomes = [f.result() for f in flight.futures]
        accepted = [o for o in outcomes if o.accepted]
        unknown = [o for o in outcomes if o.unknown]
        failed = [o for o in outcomes if not o.accepted and not o.unknown]
        for o in accepted:
            assert o.carrier_message_id is not None
            message = message.apply(PartSubmitted(now, o.index, o.carrier_message_id))
        if accepted:
            result.route_results.append((route.name, True))
        if unknown:
            result.unknown += len(unknown)
            result.route_results.append((route.name, False))
            resend = self._resends(route, message)
            retry_at = now + self.options.unknown_resend_after if resend else None
            for o in unknown:
                if message.status is not Status.SUBMITTING:
                    break
                message = message.apply(OutcomeUnknown(now, o.index, retry_at))
        if not failed or message.status is not Status.SUBMITTING:
            return message, None
        worst = next((o for o in failed if o.status_class is StatusClass.PERMANENT), failed[0])
        status_class = worst.status_class or StatusClass.TRANSIENT
        if status_class in (StatusClass.TRANSIENT, StatusClass.SESSION):
            # A throttle means the route is alive but wants fewer submits (the
            # session slows down); only real failures count against the breaker.
            result.route_results.append((route.name, False))
        carrier_code = _carrier_code(worst)
        if flight.wire_error is not None:
            code = "invalid_for_route"
        elif status_class is StatusClass.PERMANENT:
            code = "carrier_rejected"
        else:
            code = f"carrier_{status_class.value}"
        others = self._failover(message, exclude=flight.tried)
        action = after_failure(route.route, status_class, others_left=bool(others))
        if action == "next_route":
            message = message.apply(SubmitFailed(now, code, carrier_code, now))
            if message.status is Status.RETRYING:
                nxt = others[0]
                message = message.apply(Claim(now, nxt.name))
                return message, nxt
            return message, None
        if action == "retry_same_later":
            retry_at = schedule_retry(message, now, self.options.retry, self._rng.random())
            if retry_at is None:
                give_up = (
                    "attempts_exhausted"
                    if message.attempts >= self.options.retry.max_attempts
                    else "validity_expired"
                )
                return message.apply(SubmitFailed(now, give_up, carrier_code, None)), None
            return message.apply(SubmitFailed(now, code, carrier_code, retry_at)), None
        return message.apply(SubmitFailed(now, code, carrier_code, None)), None

    # ------------------------------------------------------------------ leases

    def _extend_leases(self) -> None:
        now_m = self._ctx.clock.monotonic()
        if not self._in_flight or now_m < self._next_extend:
            return
        self._next_extend = now_m + self.options.lease.total_seconds() / 3
        until = self._ctx.clock.now() + self.options.lease
        ids = list(self._in_flight)

        def run(uow: UnitOfWork) -> int:
            return len(ids) - uow.dispatch.extend_many(ids, self.owner, until)

        try:
            missing = self._ctx.write(run)
        except BharatSendError as e:
            _log.warning("dispatch: extending %d leases failed: %s", len(ids), e.code)
            return
        # The recorder thread deletes the rows of messages it recorded and only
        # then drops them from the in-flight table: a row missing for a message
        # whose outcome is in (or that is gone from the table) was recorded,
        # not lost. What is left over is the least number truly lost.
        settled = 0
        for message_id in ids:
            flight = self._in_flight.get(message_id)
            settled += flight is None or flight.done_at is not None
        lost = missing - settled
        if lost > 0:
            _log.warning("dispatch: %d leases were lost (another worker may resend)", lost)


def _carrier_ids(messages: Iterable[Message]) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for message in messages:
        for part in message.parts:
            if part.route is not None and part.carrier_message_id is not None:
                ids.setdefault(part.route, []).append(part.carrier_message_id)
    return ids


def _lookup_in(
    messages: Mapping[str, Message],
) -> Callable[[str, Sequence[str]], Mapping[str, tuple[Message, int]]]:
    index: dict[tuple[str, str], tuple[str, int]] = {}
    for message in messages.values():
        for part in message.parts:
            if part.route is not None and part.carrier_message_id is not None:
                index[(part.route, part.carrier_message_id)] = (message.id, part.index)

    def lookup(route: str, ids: Sequence[str]) -> Mapping[str, tuple[Message, int]]:
        found: dict[str, tuple[Message, int]] = {}
        for carrier_id in ids:
            hit = index.get((route, carrier_id))
            if hit is not None:
                found[carrier_id] = (messages[hit[0]], hit[1])
        return found

    return lookup
