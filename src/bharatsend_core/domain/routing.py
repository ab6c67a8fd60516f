"""Routing: which carrier routes a message may take, in which order, and when to stop.

A :class:`Route` is one carrier connection with its filters (DLT category,
operator hint, E.164 prefix), its priority and weight, and its submit-rate cap.
:func:`choose_routes` turns the configured routes into the ordered failover list
for one message; :func:`after_failure` says what to do when a submit fails on a
route, after :func:`classify_status` has sorted the SMPP ``command_status``.

Route health and rate are immutable values too, in the style of the message
state machine (STYLE.md rules 7 and 9): a :class:`Breaker` opens after repeated
failures and lets one probe through after a cooldown; a :class:`TokenBucket`
caps submits per second and can be slowed on ``ESME_RTHROTTLED``. Every method
returns a new value, and time is always a parameter (monotonic seconds as
floats): nothing here reads a clock or draws a random number, so a worker owns
the clock and the dice and tests need no sleeping (STYLE.md rule 5).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal

from attrs import evolve, field, frozen

from bharatsend_core.domain.dlt.registry import Category
from bharatsend_core.domain.errors import InvalidArgument

__all__ = [
    "DEFAULT_DLT_TLVS",
    "DEFAULT_RESEND_UNKNOWN",
    "DEFAULT_STATUS_CLASSES",
    "BindMode",
    "Breaker",
    "BreakerState",
    "Connection",
    "FailureAction",
    "Route",
    "RouteConfig",
    "StatusClass",
    "TokenBucket",
    "after_failure",
    "choose_routes",
    "classify_status",
]

_NAME_RE: Final = re.compile(r"[a-z0-9_-]{1,64}")
_PREFIX_RE: Final = re.compile(r"\+[0-9]{1,15}")

#: Largest SMPP command_status (an unsigned 32-bit integer, SMPP 3.4 §3.2).
_MAX_COMMAND_STATUS: Final = 0xFFFFFFFF


# --------------------------------------------------------------------------- helpers


def _number(value: object) -> float | None:
    # bool is an int subclass; True as a rate or a weight is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _finite_positive(value: object, name: str) -> float:
    number = _number(value)
    if number is None or number <= 0:
        raise InvalidArgument(f"{name} must be a finite number above 0, got {value!r}", field=name)
    return number


def _int_in(value: object, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer from {low} to {high}", field=name)
    return value


def _finite(value: object, name: str) -> float:
    number = _number(value)
    if number is None:
        raise InvalidArgument(f"{name} must be a finite number of seconds", field=name)
    return number


def _to_cooldown(value: object) -> float:
    return _finite_positive(value, "cooldown")


def _to_window_seconds(value: object) -> float:
    return _finite_positive(value, "window")


def _to_rate(value: object) -> float:
    return _finite_positive(value, "rate")


def _to_nominal_rate(value: object) -> float:
    return _finite_positive(value, "nominal_rate")


def _to_burst(value: object) -> float:
    return _finite_positive(value, "burst")


def _to_tokens(value: object) -> float:
    return _finite(value, "tokens")


def _to_updated(value: object) -> float:
    return _finite(value, "updated")


# --------------------------------------------------------------------------- Route


def _check_name(instance: Route, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidArgument(
            "a route name is 1 to 64 characters of a-z, 0-9, '_' and '-'", field="name"
        )


def _check_priority(instance: Route, attribute: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument("priority must be an integer (lower tries first)", field="priority")


def _check_weight(instance: Route, attribute: object, value: int) -> None:
    _int_in(value, "weight", 1, 1000)


def _check_window(instance: Route, attribute: object, value: int) -> None:
    # SMPP 3.4 recommends no more than 10 outstanding operations (SMPP.md §1.6).
    _int_in(value, "window", 1, 100)


def _to_tps(value: object) -> float | None:
    if value is None:
        return None
    return _finite_positive(value, "tps")


def _to_categories(value: Iterable[Category | str]) -> frozenset[Category]:
    if isinstance(value, str):
        raise InvalidArgument("categories is a collection of categories", field="categories")
    try:
        return frozenset(Category(c) for c in value)
    except ValueError as e:
        raise InvalidArgument(
            f"categories must be DLT categories ({', '.join(Category)})", field="categories"
        ) from e


def _to_operators(value: Iterable[str]) -> frozenset[str]:
    # Operator hints come from the number series (phonenumbers' carrier names,
    # e.g. "Airtel", "Reliance Jio"); compare them case-insensitively.
    if isinstance(value, str):
        raise InvalidArgument("operators is a collection of operator names", field="operators")
    out = set()
    for op in value:
        if not isinstance(op, str) or not op.strip():
            raise InvalidArgument("an operator name is non-empty text", field="operators")
        out.add(op.strip().casefold())
    return frozenset(out)


def _to_prefixes(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidArgument("prefixes is a collection of E.164 prefixes", field="prefixes")
    out = tuple(value)
    for prefix in out:
        if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
            raise InvalidArgument(
                f"a prefix is '+' and 1-15 digits (like '+9198'), got {prefix!r}",
                field="prefixes",
            )
    return out


def _check_flag(instance: Route, attribute: Any, value: bool) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{attribute.name} must be True or False", field=attribute.name)


@frozen
class Route:
    """One carrier connection messages can be submitted through, and what it serves.

    Empty filters mean "everything", so a catch-all route needs no
    configuration. A route restricted to operators serves only messages whose
    operator hint is known and listed: the hint is from the number series and
    numbers port (MNP), so such routes are a preference, and a catch-all route
    at a later priority should back them up.
    """

    #: Stable identifier; breakers and metrics are keyed by it.
    name: str = field(validator=_check_name)
    #: Lower priorities are tried first; higher ones are the failover.
    priority: int = field(default=0, validator=_check_priority)
    #: Share of first choices among routes of the same priority (1-1000).
    weight: int = field(default=100, validator=_check_weight)
    #: Cap on submits per second on this connection, or None for no cap.
    tps: float | None = field(default=None, converter=_to_tps)
    #: Most submits outstanding without a response (SMPP window, SMPP.md §1.6).
    window: int = field(default=10, validator=_check_window)
    #: DLT categories served; empty serves all.
    categories: frozenset[Category] = field(factory=frozenset, converter=_to_categories)
    #: Operator hints served (stored case-folded); empty serves all.
    operators: frozenset[str] = field(factory=frozenset, converter=_to_operators)
    #: E.164 prefixes served, like "+9198"; empty serves all.
    prefixes: tuple[str, ...] = field(default=(), converter=_to_prefixes)
    #: A disabled route is never chosen (kept configured, e.g. during maintenance).
    enabled: bool = field(default=True, validator=_check_flag)
    #: The sandbox carrier: only sandbox messages go here, and they go nowhere else.
    sandbox: bool = field(default=False, validator=_check_flag)
    #: A permanent error here may be retried on another route (carriers that
    #: reject what others accept, e.g. a stricter DLT scrubber).
    retry_permanent_elsewhere: bool = field(default=False, validator=_check_flag)

    def serves(self, *, category: Category, phone_e164: str, operator: str | None) -> bool:
        """True when the route's filters accept this message (health and sandbox aside)."""
        if self.categories and category not in self.categories:
            return False
        if self.operators and (
            operator is None or operator.strip().casefold() not in self.operators
        ):
            return False
        return not self.prefixes or phone_e164.startswith(self.prefixes)


# --------------------------------------------------------------------------- status


class StatusClass(enum.StrEnum):
    """What an SMPP submit error means for the message and the route."""

    #: Try again (elsewhere now, or here later).
    TRANSIENT = "transient"
    #: The message will not go through as it is; retrying the same route is pointless.
    PERMANENT = "permanent"
    #: Transient, and the carrier asks us to slow down on this route.
    THROTTLED = "throttled"
    #: The bind or the account is broken: rebind, or alert an operator.
    SESSION = "session"


#: Default classes of the command_status codes SMPP.md §1.5 names as non-permanent.
#: Kannel's temporary set (RSYSERR, RMSGQFUL, RTHROTTLED, RX_T_APPN) plus RINVSCHED,
#: which Jasmin retries; RMSGQFUL means the SMSC queue is full, so we slow down.
DEFAULT_STATUS_CLASSES: Final[Mapping[int, StatusClass]] = MappingProxyType(
    {
        0x08: StatusClass.TRANSIENT,  # ESME_RSYSERR
        0x14: StatusClass.THROTTLED,  # ESME_RMSGQFUL
        0x58: StatusClass.THROTTLED,  # ESME_RTHROTTLED
        0x61: StatusClass.TRANSIENT,  # ESME_RINVSCHED
        0x64: StatusClass.TRANSIENT,  # ESME_RX_T_APPN
        0x04: StatusClass.SESSION,  # ESME_RINVBNDSTS
        0x0D: StatusClass.SESSION,  # ESME_RBINDFAIL
        0x0E: StatusClass.SESSION,  # ESME_RINVPASWD
        0x0F: StatusClass.SESSION,  # ESME_RINVSYSID
    }
)

_NO_OVERRIDES: Final[Mapping[int, StatusClass]] = MappingProxyType({})


def classify_status(
    command_status: int, *, overrides: Mapping[int, StatusClass] = _NO_OVERRIDES
) -> StatusClass:
    """Sort a failed submit's ``command_status`` into a :class:`StatusClass`.

    Unknown and vendor codes are permanent (SMPP.md §1.5: retrying a code we do
    not understand risks duplicates and wasted credits); ``overrides`` adapts
    a carrier's own codes, e.g. ``{0x40B: StatusClass.SESSION}`` for "insufficient
    credits". ``0`` (ESME_ROK) is a success, not a failure, and is refused.
    """
    if (
        not isinstance(command_status, int)
        or isinstance(command_status, bool)
        or not 0 < command_status <= _MAX_COMMAND_STATUS
    ):
        raise InvalidArgument(
            "command_status must be a failed SMPP status, 1 to 0xFFFFFFFF (0 is success)",
            field="command_status",
        )
    if command_status in overrides:
        return StatusClass(overrides[command_status])
    return DEFAULT_STATUS_CLASSES.get(command_status, StatusClass.PERMANENT)


# --------------------------------------------------------------------------- breaker

#: What :meth:`Breaker.state` reports.
BreakerState = Literal["closed", "open", "half_open"]


def _check_failures_to_open(instance: Breaker, attribute: object, value: int) -> None:
    _int_in(value, "failures_to_open", 1, 1_000_000)


@frozen
class Breaker:
    """A route's circuit breaker, as an immutable value: one per route name.

    Closed, it allows every attempt and counts failures; ``failures_to_open``
    failures within ``window`` seconds, with no success between them, open it.
    Open, it allows nothing for ``cooldown`` seconds, then turns half-open and
    allows one probe (mark it with :meth:`record_attempt`): the probe's success
    closes the breaker, its failure re-opens it with a fresh cooldown. A probe
    whose outcome is never recorded (its worker died) expires after another
    cooldown, so a lost probe cannot keep a route shut forever.

    Record only failures that say something about the route (transient,
    throttled, session); a permanent error is about the message.
    """

    failures_to_open: int = field(default=5, validator=_check_failures_to_open)
    cooldown: float = field(default=30.0, converter=_to_cooldown)
    window: float = field(default=60.0, converter=_to_window_seconds)
    #: Monotonic times of the current run of failures (closed state only).
    failures: tuple[float, ...] = ()
    #: When the breaker last opened, or None while closed.
    opened_at: float | None = None
    #: When the half-open probe was handed out, or None if none is out.
    probe_at: float | None = None

    def state(self, now: float) -> BreakerState:
        """``"closed"``, ``"open"`` (cooling down) or ``"half_open"`` (cooldown over)."""
        if self.opened_at is None:
            return "closed"
        if now < self.opened_at + self.cooldown:
            return "open"
        return "half_open"

    def allows(self, now: float) -> bool:
        """May a submit go to this route now?"""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open":
            return False
        return self.probe_at is None or now >= self.probe_at + self.cooldown

    def record_attempt(self, now: float) -> Breaker:
        """Note that a submit is going out now; in half-open this takes the one probe."""
        if self.state(now) == "half_open" and self.allows(now):
            return evolve(self, probe_at=now)
        return self

    def record_success(self, now: float) -> Breaker:
        """A submit succeeded: closes a half-open breaker, ends a closed one's failure run.

        A success arriving while open (a submit sent before the breaker opened)
        changes nothing: the cooldown runs its course and a probe decides.
        """
        state = self.state(now)
        if state == "open":
            return self
        if state == "closed" and not self.failures:
            return self
        return evolve(self, failures=(), opened_at=None, probe_at=None)

    def record_failure(self, now: float) -> Breaker:
        """A submit failed: may open a closed breaker; re-opens a half-open one."""
        state = self.state(now)
        if state == "open":
            # A late failure of a submit sent before opening: the cooldown stands.
            return self
        if state == "half_open":
            return evolve(self, failures=(), opened_at=now, probe_at=None)
        recent = (*(t for t in self.failures if now - t < self.window), now)
        if len(recent) >= self.failures_to_open:
            return evolve(self, failures=(), opened_at=now, probe_at=None)
        return evolve(self, failures=recent)


# --------------------------------------------------------------------------- token bucket


@frozen
class TokenBucket:
    """A submit-rate limiter as an immutable value: ``rate`` tokens a second, up to ``burst``.

    Over any interval ``[t0, t1]`` it grants at most ``burst + rate * (t1 - t0)``
    tokens. ``nominal_rate`` remembers the configured rate so that a bucket
    slowed on ``ESME_RTHROTTLED`` / ``ESME_RMSGQFUL`` can be restored.
    Build a full one with :meth:`full`.
    """

    rate: float = field(converter=_to_rate)
    burst: float = field(converter=_to_burst)
    tokens: float = field(converter=_to_tokens)
    #: Monotonic seconds of the last refill.
    updated: float = field(converter=_to_updated)
    nominal_rate: float = field(converter=_to_nominal_rate)

    @nominal_rate.default
    def _nominal_default(self) -> float:
        return self.rate

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.tokens <= self.burst:
            raise InvalidArgument("tokens must be from 0 to burst", field="tokens")

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        """A bucket holding ``burst`` tokens at ``now``."""
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def _level(self, now: float) -> float:
        # A clock that steps back (misuse) adds nothing rather than removing tokens.
        elapsed = max(0.0, now - self.updated)
        return min(self.burst, self.tokens + elapsed * self.rate)

    def _check_n(self, n: float) -> None:
        number = _number(n)
        if number is None or number <= 0 or number > self.burst:
            raise InvalidArgument(
                f"n must be above 0 and at most burst ({self.burst}); more could never be granted",
                field="n",
            )

    def take(self, now: float, n: float = 1) -> tuple[bool, TokenBucket]:
        """Take ``n`` tokens if available now: ``(granted, new bucket)``."""
        self._check_n(n)
        level = self._level(now)
        updated = max(self.updated, now)
        if level >= n:
            return True, evolve(self, tokens=level - n, updated=updated)
        return False, evolve(self, tokens=level, updated=updated)

    def wait_time(self, now: float, n: float = 1) -> float:
        """Seconds from ``now`` until ``take(now + wait, n)`` succeeds (0.0 if it would now)."""
        self._check_n(n)
        level = self._level(now)
        if level >= n:
            return 0.0
        # A clock behind ``updated`` (misuse) waits from ``updated``.
        wait = max(0.0, self.updated - now) + (n - level) / self.rate
        # Float rounding can leave ``now + wait`` a hair short of n tokens; step
        # ``now + wait`` up one unit in the last place at a time (a few steps at
        # most) so that "wait, then take" really grants.
        while self._level(now + wait) < n:
            wait += max(math.ulp(now + wait), math.ulp(wait))
        return wait

    def slowed(self, factor: float) -> TokenBucket:
        """The bucket at ``factor`` (0 < factor ≤ 1) of its nominal rate, after a throttle.

        Relative to the nominal rate, not the current one, so repeated throttle
        responses do not compound the route down to nothing.
        """
        number = _number(factor)
        if number is None or not 0 < number <= 1:
            raise InvalidArgument("factor must be above 0 and at most 1", field="factor")
        return evolve(self, rate=self.nominal_rate * factor)

    def restored(self) -> TokenBucket:
        """The bucket back at its nominal rate."""
        return evolve(self, rate=self.nominal_rate)


# --------------------------------------------------------------------------- choosing


def choose_routes(
    routes: Sequence[Route],
    *,
    category: Category,
    phone_e164: str,
    operator: str | None,
    sandbox: bool,
    breakers: Mapping[str, Breaker],
    now: float,
    pick: float,
) -> tuple[Route, ...]:
    """The ordered failover list of routes for one message; ``()`` when none fits.

    Eligible routes are enabled, serve the category, operator hint and number
    prefix, match the message's sandbox flag (sandbox traffic never reaches a
    real carrier, and real traffic never the sandbox) and have a breaker that
    allows a submit ``now`` (a route with no breaker entry is healthy). They are
    ordered by priority; within one priority the first is a weighted choice by
    ``pick`` (a number in [0, 1) the caller draws, so this stays deterministic),
    the rest follow by weight, heaviest first, then by name. An empty result is
    not an error here: the caller fails or retries the message.

    Raises ``InvalidArgument`` when ``pick`` is outside [0, 1) or two routes share
    a name (breakers are keyed by name, so that configuration is ambiguous).
    """
    number = _number(pick)
    if number is None or not 0 <= number < 1:
        raise InvalidArgument("pick must be a number in [0, 1)", field="pick")
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise InvalidArgument("route names must be unique", field="routes")

    tiers: dict[int, list[Route]] = {}
    for route in routes:
        if not route.enabled or route.sandbox != sandbox:
            continue
        if not route.serves(category=category, phone_e164=phone_e164, operator=operator):
            continue
        breaker = breakers.get(route.name)
        if breaker is not None and not breaker.allows(now):
            continue
        tiers.setdefault(route.priority, []).append(route)

    ordered: list[Route] = []
    for priority in sorted(tiers):
        # Sort by name first so the outcome does not depend on configuration order.
        tier = sorted(tiers[priority], key=lambda r: r.name)
        target = pick * sum(r.weight for r in tier)
        first = tier[-1]  # float safety: target < total always lands inside
        cumulative = 0
        for route in tier:
            cumulative += route.weight
            if target < cumulative:
                first = route
                break
        rest = sorted((r for r in tier if r is not first), key=lambda r: (-r.weight, r.name))
        ordered += [first, *rest]
    return tuple(ordered)


#: What to do with a message after a failed submit on a route.
FailureAction = Literal["retry_same_later", "next_route", "fail"]


def after_failure(route: Route, status: StatusClass, *, others_left: bool = True) -> FailureAction:
    """What to do after a submit on ``route`` failed with ``status``.

    Transient, throttled and session failures are the route's problem, so the
    message fails over: ``"next_route"``. The caller, holding the failover list,
    knows whether one is left; with ``others_left=False`` this says
    ``"retry_same_later"`` instead (with backoff). A permanent failure is the
    message's problem and ends it (``"fail"``), unless the route is marked
    ``retry_permanent_elsewhere`` and another route is left.
    """
    status = StatusClass(status)
    if status is StatusClass.PERMANENT:
        if route.retry_permanent_elsewhere and others_left:
            return "next_route"
        return "fail"
    return "next_route" if others_left else "retry_same_later"


# --------------------------------------------------------------------------- configuration

#: Where DLT values go on the wire unless a route says otherwise (SMPP.md §1.9).
DEFAULT_DLT_TLVS: Final[Mapping[str, int]] = MappingProxyType(
    {"pe_id": 0x1400, "template_id": 0x1401}
)
_DLT_TLV_KEYS: Final = frozenset({"pe_id", "template_id", "chain"})
_VENDOR_TAGS: Final = range(0x1400, 0x4000)

#: How a route binds: one transceiver, or a transmitter for submits plus a receiver for receipts.
BindMode = Literal["transceiver", "pair"]
#: How a route spells message ids (``domain.receipts.IdMode`` values).
_ID_MODES: Final = ("exact", "lower_no_zeros", "hex_to_decimal", "decimal_to_hex")
#: Categories whose unknown submit outcomes are resent (OTPs are worthless if lost).
DEFAULT_RESEND_UNKNOWN: Final[frozenset[Category]] = frozenset(
    {Category.TRANSACTIONAL, Category.SERVICE_IMPLICIT, Category.GOVERNMENT}
)


def _to_dlt_tlvs(value: Mapping[str, int]) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidArgument("dlt_tlvs must map pe_id/template_id/chain to tags", field="dlt_tlvs")
    tags = dict(value)
    unknown = set(tags) - _DLT_TLV_KEYS
    if unknown or not {"pe_id", "template_id"} <= set(tags):
        raise InvalidArgument(
            f"dlt_tlvs needs pe_id and template_id (and optionally chain), got {sorted(tags)}",
            field="dlt_tlvs",
        )
    for key, tag in tags.items():
        if isinstance(tag, bool) or not isinstance(tag, int) or tag not in _VENDOR_TAGS:
            raise InvalidArgument(
                f"dlt_tlvs[{key!r}] must be a vendor TLV tag 0x1400-0x3FFF, got {tag!r}",
                field="dlt_tlvs",
            )
    if len(set(tags.values())) != len(tags):
        raise InvalidArgument("dlt_tlvs tags must differ", field="dlt_tlvs")
    return MappingProxyType(tags)


def _to_overrides(value: Mapping[int, StatusClass | str]) -> Mapping[int, StatusClass]:
    out: dict[int, StatusClass] = {}
    for code, cls in dict(value).items():
        if isinstance(code, bool) or not isinstance(code, int) or not 0 < code <= 0xFFFFFFFF:
            raise InvalidArgument(
                f"status override {code!r} must be a failed command_status (1..0xFFFFFFFF)",
                field="status_overrides",
            )
        try:
            out[code] = StatusClass(cls)
        except ValueError:
            raise InvalidArgument(
                f"status class {cls!r} must be one of {[c.value for c in StatusClass]}",
                field="status_overrides",
            ) from None
    return MappingProxyType(out)


def _check_host(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 253 or value != value.strip():
        raise InvalidArgument("host must be a host name or address", field="host")


def _check_port(_instance: object, _attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidArgument("port must be 1-65535", field="port")


def _check_c_string(limit: int) -> Any:
    def check(_instance: object, attribute: Any, value: str) -> None:
        if not isinstance(value, str) or not value.isascii() or len(value) > limit:
            raise InvalidArgument(
                f"{attribute.name} must be ASCII of at most {limit} characters (SMPP 3.4 §4.1)",
                field=attribute.name,
            )

    return check


def _check_bind(_instance: object, _attribute: object, value: str) -> None:
    if value not in ("transceiver", "pair"):
        raise InvalidArgument("bind must be 'transceiver' or 'pair'", field="bind")


def _check_id_mode(_instance: object, _attribute: object, value: str) -> None:
    if value not in _ID_MODES:
        raise InvalidArgument(f"id_mode must be one of {list(_ID_MODES)}", field="id_mode")


def _check_seconds(_instance: object, attribute: Any, value: float) -> None:
    number = _number(value)
    if number is None or not math.isfinite(number) or not 0 < number <= 3600:
        raise InvalidArgument(f"{attribute.name} must be 0-3600 seconds", field=attribute.name)


def _check_chain(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and not (
        isinstance(value, str) and value and value.isascii() and value.isprintable()
    ):
        raise InvalidArgument("dlt_chain must be printable ASCII", field="dlt_chain")


def _to_resend(value: Iterable[Category | str]) -> frozenset[Category]:
    return _to_categories(value)


@frozen(kw_only=True)
class Connection:
    """How to reach and speak to one SMSC: the SMPP bind and the aggregator's dialect.

    Indian aggregators disagree on DLT TLV tags, NUL termination and message id
    spelling, so each is configuration (docs/operations.md lists known values).
    """

    host: str = field(validator=_check_host)
    port: int = field(validator=_check_port)
    system_id: str = field(validator=_check_c_string(15))
    password: str = field(repr=False, validator=_check_c_string(8))
    system_type: str = field(default="", validator=_check_c_string(12))
    bind: BindMode = field(default="transceiver", validator=_check_bind)
    dlt_tlvs: Mapping[str, int] = field(default=DEFAULT_DLT_TLVS, converter=_to_dlt_tlvs)
    #: Some aggregators want the DLT TLV values NUL-terminated.
    tlv_nul_terminated: bool = field(default=False, validator=_check_flag)
    #: The telemarketer chain value sent in the ``chain`` TLV when that tag is configured.
    dlt_chain: str | None = field(default=None, validator=_check_chain)
    #: How this SMSC spells message ids in responses vs receipts.
    id_mode: str = field(default="exact", validator=_check_id_mode)
    #: Per-route reclassification of command_status codes.
    status_overrides: Mapping[int, StatusClass] = field(factory=dict, converter=_to_overrides)
    response_timeout: float = field(default=5.0, validator=_check_seconds)
    enquire_interval: float = field(default=30.0, validator=_check_seconds)
    #: Categories whose unanswered submits are resent (flagged possible_duplicate)
    #: instead of being assumed delivered to the SMSC.
    resend_unknown: frozenset[Category] = field(
        default=DEFAULT_RESEND_UNKNOWN, converter=_to_resend
    )

    def __attrs_post_init__(self) -> None:
        if "chain" in self.dlt_tlvs and self.dlt_chain is None:
            raise InvalidArgument(
                "dlt_tlvs has a chain tag but no dlt_chain value to send in it", field="dlt_chain"
            )

    def public(self) -> dict[str, object]:
        """Everything but the password, for listings and logs."""
        return {
            "host": self.host,
            "port": self.port,
            "system_id": self.system_id,
            "system_type": self.system_type,
            "bind": self.bind,
            "dlt_tlvs": {k: hex(v) for k, v in self.dlt_tlvs.items()},
            "tlv_nul_terminated": self.tlv_nul_terminated,
            "dlt_chain": self.dlt_chain,
            "id_mode": self.id_mode,
            "status_overrides": {hex(k): v.value for k, v in self.status_overrides.items()},
            "response_timeout": self.response_timeout,
            "enquire_interval": self.enquire_interval,
            "resend_unknown": sorted(c.value for c in self.resend_unknown),
        }


@frozen
class RouteConfig:
    """A route as stored: what it serves (:class:`Route`) and how to reach it."""

    route: Route
    connection: Connection

    @property
    def name(self) -> str:
        """The route's name (unique)."""
        return self.route.name
