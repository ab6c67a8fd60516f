"""Routing: routes, status classes, breakers, token buckets and the failover list.

Time is always a parameter here, so nothing sleeps and nothing asserts timing.
"""

from __future__ import annotations

import math
from collections import Counter

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bharatsend_core.domain import routing
from bharatsend_core.domain.dlt.registry import Category
from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.routing import (
    DEFAULT_STATUS_CLASSES,
    Breaker,
    Route,
    StatusClass,
    TokenBucket,
    after_failure,
    choose_routes,
    classify_status,
)

PHONE = "+919812345678"


def choose(
    routes: list[Route],
    *,
    category: Category = Category.TRANSACTIONAL,
    phone: str = PHONE,
    operator: str | None = "Airtel",
    sandbox: bool = False,
    breakers: dict[str, Breaker] | None = None,
    now: float = 0.0,
    pick: float = 0.0,
) -> tuple[Route, ...]:
    return choose_routes(
        routes,
        category=category,
        phone_e164=phone,
        operator=operator,
        sandbox=sandbox,
        breakers=breakers or {},
        now=now,
        pick=pick,
    )


def open_breaker(at: float = 0.0) -> Breaker:
    breaker = Breaker(failures_to_open=1)
    return breaker.record_failure(at)


# --------------------------------------------------------------------------- Route


def test_public_names_are_pinned() -> None:
    assert sorted(routing.__all__) == [
        "BindMode",
        "Breaker",
        "BreakerState",
        "Connection",
        "DEFAULT_DLT_TLVS",
        "DEFAULT_RESEND_UNKNOWN",
        "DEFAULT_STATUS_CLASSES",
        "FailureAction",
        "Route",
        "RouteConfig",
        "StatusClass",
        "TokenBucket",
        "after_failure",
        "choose_routes",
        "classify_status",
    ]


def test_a_route_with_only_a_name_serves_everything() -> None:
    route = Route("catch_all")
    assert route.enabled
    assert not route.sandbox
    assert route.window == 10
    assert route.serves(category=Category.PROMOTIONAL, phone_e164="+15550100", operator=None)


def test_route_filters_normalise_their_input() -> None:
    route = Route(
        "jio-direct",
        categories=["transactional"],
        operators=[" Reliance Jio "],
        prefixes=["+9170"],
    )
    assert route.categories == frozenset({Category.TRANSACTIONAL})
    assert route.operators == frozenset({"reliance jio"})
    assert route.prefixes == ("+9170",)


def test_routes_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Route("a").weight = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "Upper"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "has space"}, "name"),
        ({"priority": 1.5}, "priority"),
        ({"weight": 0}, "weight"),
        ({"weight": 1001}, "weight"),
        ({"weight": True}, "weight"),
        ({"tps": 0}, "tps"),
        ({"tps": math.inf}, "tps"),
        ({"window": 0}, "window"),
        ({"window": 101}, "window"),
        ({"categories": ["bulk"]}, "categories"),
        ({"categories": "transactional"}, "categories"),
        ({"operators": [""]}, "operators"),
        ({"prefixes": ["9198"]}, "prefixes"),
        ({"prefixes": "+91"}, "prefixes"),
        ({"enabled": 1}, "enabled"),
        ({"sandbox": "yes"}, "sandbox"),
    ],
)
def test_invalid_route_configuration_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": "ok"} | kwargs
    with pytest.raises(InvalidArgument) as info:
        Route(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_operator_filter_is_case_insensitive_and_excludes_unknown_operators() -> None:
    route = Route("airtel", operators=["AIRTEL"])
    kw = {"category": Category.TRANSACTIONAL, "phone_e164": PHONE}
    assert route.serves(operator="airtel", **kw)  # type: ignore[arg-type]
    assert not route.serves(operator="Vodafone Idea", **kw)  # type: ignore[arg-type]
    assert not route.serves(operator=None, **kw)  # type: ignore[arg-type]


def test_prefix_and_category_filters() -> None:
    route = Route("r", categories=[Category.SERVICE_IMPLICIT], prefixes=("+9198", "+9170"))
    assert route.serves(
        category=Category.SERVICE_IMPLICIT, phone_e164="+917012345678", operator=None
    )
    assert not route.serves(
        category=Category.SERVICE_IMPLICIT, phone_e164="+919012345678", operator=None
    )
    assert not route.serves(category=Category.PROMOTIONAL, phone_e164=PHONE, operator=None)


# --------------------------------------------------------------------------- classify_status


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x08, StatusClass.TRANSIENT),
        (0x14, StatusClass.THROTTLED),
        (0x58, StatusClass.THROTTLED),
        (0x61, StatusClass.TRANSIENT),
        (0x64, StatusClass.TRANSIENT),
        (0x04, StatusClass.SESSION),
        (0x0D, StatusClass.SESSION),
        (0x0E, StatusClass.SESSION),
        (0x0F, StatusClass.SESSION),
        (0x0B, StatusClass.PERMANENT),
        (0x01, StatusClass.PERMANENT),
        (0x45, StatusClass.PERMANENT),
        (0xC2, StatusClass.PERMANENT),
        (0x40B, StatusClass.PERMANENT),
    ],
)
def test_command_status_defaults_follow_smpp_md(code: int, expected: StatusClass) -> None:
    assert classify_status(code) is expected


@given(st.integers(1, 0xFFFFFFFF))
def test_unknown_codes_are_permanent(code: int) -> None:
    assume(code not in DEFAULT_STATUS_CLASSES)
    assert classify_status(code) is StatusClass.PERMANENT


def test_overrides_win_over_defaults() -> None:
    overrides = {0x40B: StatusClass.SESSION, 0x08: StatusClass.PERMANENT}
    assert classify_status(0x40B, overrides=overrides) is StatusClass.SESSION
    assert classify_status(0x08, overrides=overrides) is StatusClass.PERMANENT
    assert classify_status(0x58, overrides=overrides) is StatusClass.THROTTLED


@pytest.mark.parametrize("code", [0, -1, 0x1_0000_0000, True])
def test_success_and_out_of_range_codes_are_refused(code: int) -> None:
    with pytest.raises(InvalidArgument):
        classify_status(code)


# --------------------------------------------------------------------------- after_failure


@pytest.mark.parametrize(
    "status", [StatusClass.TRANSIENT, StatusClass.THROTTLED, StatusClass.SESSION]
)
def test_route_level_failures_fail_over(status: StatusClass) -> None:
    assert after_failure(Route("a"), status) == "next_route"
    assert after_failure(Route("a"), status, others_left=False) == "retry_same_later"


def test_a_permanent_failure_fails_the_message() -> None:
    assert after_failure(Route("a"), StatusClass.PERMANENT) == "fail"


def test_a_permanent_failure_may_move_on_when_the_route_says_so() -> None:
    route = Route("strict", retry_permanent_elsewhere=True)
    assert after_failure(route, StatusClass.PERMANENT) == "next_route"
    assert after_failure(route, StatusClass.PERMANENT, others_left=False) == "fail"


# --------------------------------------------------------------------------- Breaker


def test_breaker_opens_after_n_failures_within_the_window() -> None:
    breaker = Breaker(failures_to_open=3, cooldown=30.0, window=60.0)
    for t in (0.0, 10.0):
        breaker = breaker.record_failure(t)
        assert breaker.state(t) == "closed"
    breaker = breaker.record_failure(20.0)
    assert breaker.state(20.0) == "open"
    assert not breaker.allows(49.9)
    assert breaker.state(50.0) == "half_open"
    assert breaker.allows(50.0)


def test_a_success_ends_the_failure_run() -> None:
    breaker = Breaker(failures_to_open=2).record_failure(0.0).record_success(1.0)
    assert breaker.record_failure(2.0).state(2.0) == "closed"


def test_half_open_allows_one_probe_until_its_outcome_or_another_cooldown() -> None:
    breaker = open_breaker(0.0).record_attempt(30.0)
    assert breaker.state(30.0) == "half_open"
    assert not breaker.allows(31.0)
    assert breaker.allows(60.0)  # the probe's worker never reported: try again


def test_record_attempt_while_closed_changes_nothing() -> None:
    breaker = Breaker()
    assert breaker.record_attempt(5.0) == breaker


def test_a_late_outcome_while_open_keeps_the_cooldown() -> None:
    breaker = open_breaker(0.0)
    assert breaker.record_failure(10.0) == breaker
    assert breaker.record_success(10.0) == breaker


@pytest.mark.parametrize(
    "kwargs", [{"failures_to_open": 0}, {"cooldown": 0}, {"window": -1.0}, {"cooldown": math.nan}]
)
def test_invalid_breaker_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        Breaker(**kwargs)  # type: ignore[arg-type]


events = st.lists(
    st.tuples(
        st.sampled_from(["failure", "success", "attempt"]),
        st.floats(0, 50, allow_nan=False),
    ),
    max_size=40,
)
breaker_settings = st.builds(
    Breaker,
    failures_to_open=st.integers(1, 5),
    cooldown=st.floats(0.5, 40),
    window=st.floats(0.5, 100),
)


@given(breaker_settings, events, st.lists(st.floats(0, 1, exclude_max=True), max_size=10))
def test_breaker_never_allows_while_open_before_its_cooldown(
    breaker: Breaker, schedule: list[tuple[str, float]], probes: list[float]
) -> None:
    now = 0.0
    for kind, dt in schedule:
        now += dt
        breaker = getattr(breaker, f"record_{kind}")(now)
        if breaker.opened_at is not None:
            for fraction in probes:
                t = breaker.opened_at + fraction * breaker.cooldown
                if t < breaker.opened_at + breaker.cooldown:
                    assert breaker.state(t) == "open"
                    assert not breaker.allows(t)


@given(breaker_settings, st.floats(0, 1000), st.floats(0, 100))
def test_a_success_in_half_open_closes(breaker: Breaker, opened: float, extra: float) -> None:
    breaker = attrs.evolve(breaker, opened_at=opened)
    now = opened + breaker.cooldown + extra
    assume(breaker.state(now) == "half_open")
    closed = breaker.record_attempt(now).record_success(now)
    assert closed.state(now) == "closed"
    assert closed.allows(now)
    assert closed.failures == ()


@given(breaker_settings, st.floats(0, 1000), st.floats(0, 100))
def test_a_failure_in_half_open_reopens_with_a_fresh_cooldown(
    breaker: Breaker, opened: float, extra: float
) -> None:
    breaker = attrs.evolve(breaker, opened_at=opened)
    now = opened + breaker.cooldown + extra
    assume(breaker.state(now) == "half_open")
    reopened = breaker.record_attempt(now).record_failure(now)
    assert reopened.opened_at == now
    assert reopened.state(now) == "open"
    assert not reopened.allows(math.nextafter(now + reopened.cooldown, -math.inf))
    assert reopened.allows(now + reopened.cooldown)


@given(breaker_settings, st.lists(st.floats(0, 10), min_size=1, max_size=30))
def test_failures_older_than_the_window_do_not_count(breaker: Breaker, gaps: list[float]) -> None:
    assume(breaker.failures_to_open >= 2)
    now = 0.0
    for gap in gaps:
        last, now = now, now + breaker.window + gap
        while now - last < breaker.window:  # float rounding: keep it a full window later
            now = math.nextafter(now, math.inf)
        breaker = breaker.record_failure(now)
        assert breaker.state(now) == "closed"
        assert breaker.failures == (now,)


# --------------------------------------------------------------------------- TokenBucket


def test_a_full_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3.0, now=0.0)
    grants = []
    for _ in range(4):
        ok, bucket = bucket.take(0.0)
        grants.append(ok)
    assert grants == [True, True, True, False]
    assert bucket.wait_time(0.0) == pytest.approx(0.5)
    ok, bucket = bucket.take(0.5)
    assert ok


def test_slowed_reduces_from_nominal_and_restored_returns_to_it() -> None:
    bucket = TokenBucket.full(rate=10.0, burst=10.0, now=0.0)
    slow = bucket.slowed(0.5).slowed(0.5)
    assert slow.rate == 5.0  # relative to nominal: throttles do not compound
    assert slow.restored().rate == 10.0
    with pytest.raises(InvalidArgument):
        bucket.slowed(0)
    with pytest.raises(InvalidArgument):
        bucket.slowed(1.5)


@pytest.mark.parametrize("n", [0, -1, 11, math.nan])
def test_impossible_takes_are_refused(n: float) -> None:
    bucket = TokenBucket.full(rate=1.0, burst=10.0, now=0.0)
    with pytest.raises(InvalidArgument):
        bucket.take(0.0, n)
    with pytest.raises(InvalidArgument):
        bucket.wait_time(0.0, n)


def test_tokens_above_burst_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        TokenBucket(rate=1.0, burst=2.0, tokens=3.0, updated=0.0)


rates = st.floats(0.01, 1000)
bursts = st.floats(1, 100)
take_schedule = st.lists(st.tuples(st.floats(0, 5), st.floats(0.01, 1)), min_size=1, max_size=60)


@given(rates, bursts, st.floats(0, 1), take_schedule)
def test_grants_over_any_interval_stay_within_burst_plus_rate_times_length(
    rate: float, burst: float, fill: float, schedule: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, tokens=burst * fill, updated=0.0)
    now = 0.0
    granted: list[tuple[float, float]] = []
    for dt, fraction in schedule:
        now += dt
        n = max(fraction * burst, 1e-6)
        ok, bucket = bucket.take(now, n)
        assert 0 <= bucket.tokens <= bucket.burst
        if ok:
            granted.append((now, n))
    for i, (t0, _) in enumerate(granted):
        total = 0.0
        for t1, n in granted[i:]:
            total += n
            assert total <= burst + rate * (t1 - t0) + 1e-9 * (1 + total)


@given(rates, bursts, st.floats(0, 1), st.floats(-1e9, 1e9), st.floats(0.01, 1), st.floats(-10, 10))
def test_after_wait_time_a_take_succeeds(
    rate: float, burst: float, fill: float, start: float, fraction: float, later: float
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, tokens=burst * fill, updated=start)
    now = start + later
    n = fraction * burst
    wait = bucket.wait_time(now, n)
    assert wait >= 0
    ok, after = bucket.take(now + wait, n)
    assert ok
    assert 0 <= after.tokens <= after.burst


@given(rates, bursts, st.floats(0, 1e6))
def test_tokens_never_exceed_burst(rate: float, burst: float, idle: float) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, tokens=0.0, updated=0.0)
    _, bucket = bucket.take(idle, min(1.0, burst))
    assert bucket.tokens <= burst


# --------------------------------------------------------------------------- choose_routes


def test_routes_are_ordered_by_priority_then_weighted_first_then_weight_and_name() -> None:
    routes = [
        Route("backup", priority=2),
        Route("b", priority=1, weight=100),
        Route("a", priority=1, weight=100),
        Route("c", priority=1, weight=300),
    ]
    # Cumulative by name: a [0,100) b [100,200) c [200,500) of 500.
    assert [r.name for r in choose(routes, pick=0.0)] == ["a", "c", "b", "backup"]
    assert [r.name for r in choose(routes, pick=0.3)] == ["b", "c", "a", "backup"]
    assert [r.name for r in choose(routes, pick=0.99)] == ["c", "a", "b", "backup"]


def test_disabled_and_filtered_out_routes_are_skipped() -> None:
    routes = [
        Route("off", enabled=False),
        Route("promo", categories=[Category.PROMOTIONAL]),
        Route("jio", operators=["Reliance Jio"]),
        Route("us", prefixes=["+1"]),
        Route("ok"),
    ]
    assert [r.name for r in choose(routes)] == ["ok"]


def test_an_open_breaker_removes_its_route_until_half_open() -> None:
    routes = [Route("a", priority=0), Route("b", priority=1)]
    breakers = {"a": open_breaker(0.0)}
    assert [r.name for r in choose(routes, breakers=breakers, now=10.0)] == ["b"]
    assert [r.name for r in choose(routes, breakers=breakers, now=30.0)] == ["a", "b"]


def test_sandbox_messages_only_reach_the_sandbox_route() -> None:
    routes = [Route("live"), Route("sandbox", sandbox=True)]
    assert [r.name for r in choose(routes, sandbox=True)] == ["sandbox"]
    assert [r.name for r in choose(routes, sandbox=False)] == ["live"]


def test_no_eligible_route_is_an_empty_list_not_an_error() -> None:
    assert choose([Route("sandbox", sandbox=True)]) == ()
    assert choose([]) == ()


@pytest.mark.parametrize("pick", [-0.1, 1.0, math.nan, True])
def test_pick_outside_unit_interval_is_refused(pick: float) -> None:
    with pytest.raises(InvalidArgument):
        choose([Route("a")], pick=pick)


def test_duplicate_route_names_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        choose([Route("a"), Route("a", priority=2)])


OPERATORS = ["Airtel", "Reliance Jio", "Vodafone Idea"]
PREFIXES = ["+91", "+9198", "+9170", "+1"]


@st.composite
def route_sets(draw: st.DrawFn) -> list[Route]:
    names = draw(st.lists(st.from_regex(r"[a-z]{1,4}", fullmatch=True), unique=True, max_size=8))
    return [
        Route(
            name,
            priority=draw(st.integers(0, 3)),
            weight=draw(st.integers(1, 1000)),
            categories=draw(st.frozensets(st.sampled_from(Category), max_size=2)),
            operators=draw(st.frozensets(st.sampled_from(OPERATORS), max_size=2)),
            prefixes=tuple(draw(st.lists(st.sampled_from(PREFIXES), max_size=2))),
            enabled=draw(st.booleans()),
            sandbox=draw(st.booleans()),
        )
        for name in names
    ]


@st.composite
def routing_cases(draw: st.DrawFn) -> dict[str, object]:
    routes = draw(route_sets())
    breakers = {
        r.name: attrs.evolve(Breaker(), opened_at=draw(st.floats(0, 100)))
        for r in routes
        if draw(st.booleans())
    }
    return {
        "routes": draw(st.permutations(routes)),
        "category": draw(st.sampled_from(Category)),
        "phone": draw(st.sampled_from(["+919812345678", "+917012345678", "+15550100000"])),
        "operator": draw(st.one_of(st.none(), st.sampled_from([*OPERATORS, "AIRTEL"]))),
        "sandbox": draw(st.booleans()),
        "breakers": breakers,
        "now": draw(st.floats(0, 200)),
        "pick": draw(st.floats(0, 1, exclude_max=True)),
    }


def eligible(case: dict[str, object]) -> set[str]:
    routes: list[Route] = case["routes"]  # type: ignore[assignment]
    breakers: dict[str, Breaker] = case["breakers"]  # type: ignore[assignment]
    operator: str | None = case["operator"]  # type: ignore[assignment]
    return {
        r.name
        for r in routes
        if r.enabled
        and r.sandbox == case["sandbox"]
        and (not r.categories or case["category"] in r.categories)
        and (not r.operators or (operator is not None and operator.lower() in r.operators))
        and (not r.prefixes or any(str(case["phone"]).startswith(p) for p in r.prefixes))
        and (r.name not in breakers or breakers[r.name].allows(case["now"]))  # type: ignore[arg-type]
    }


@given(routing_cases())
def test_the_failover_list_is_exactly_the_eligible_routes_in_priority_order(
    case: dict[str, object],
) -> None:
    result = choose(**case)  # type: ignore[arg-type]
    names = [r.name for r in result]
    assert len(names) == len(set(names))
    assert set(names) == eligible(case)
    assert [r.priority for r in result] == sorted(r.priority for r in result)


@given(routing_cases())
def test_a_route_whose_breaker_disallows_never_appears(case: dict[str, object]) -> None:
    breakers: dict[str, Breaker] = case["breakers"]  # type: ignore[assignment]
    for route in choose(**case):  # type: ignore[arg-type]
        assert route.name not in breakers or breakers[route.name].allows(case["now"])  # type: ignore[arg-type]


@given(routing_cases())
def test_sandbox_isolation(case: dict[str, object]) -> None:
    assert all(r.sandbox == case["sandbox"] for r in choose(**case))  # type: ignore[arg-type]


@given(routing_cases())
def test_the_order_is_deterministic_for_a_pick_whatever_the_configuration_order(
    case: dict[str, object],
) -> None:
    routes: list[Route] = case["routes"]  # type: ignore[assignment]
    reversed_case = case | {"routes": list(reversed(routes))}
    assert choose(**case) == choose(**reversed_case)  # type: ignore[arg-type]


@given(st.lists(st.integers(1, 1000), min_size=1, max_size=6))
def test_first_choice_frequency_is_proportional_to_weight(weights: list[int]) -> None:
    routes = [Route(f"r{i}", priority=5, weight=w) for i, w in enumerate(weights)]
    routes.append(Route("later", priority=9, weight=1000))
    picks = 10_000
    firsts = Counter(choose(routes, pick=i / picks)[0].name for i in range(picks))
    total = sum(weights)
    assert "later" not in firsts
    for i, weight in enumerate(weights):
        # Uniformly spaced picks hit each weight's interval within one step either side.
        assert abs(firsts[f"r{i}"] - picks * weight / total) <= 2


@pytest.mark.parametrize("now", [0.0, 1000.0, 1e9, -5.0])
def test_wait_time_covers_a_shortfall_smaller_than_the_clocks_resolution(now: float) -> None:
    bucket = TokenBucket(rate=1000.0, burst=1.0, tokens=0.9999999999999, updated=now)
    wait = bucket.wait_time(now)
    assert wait > 0
    assert bucket.take(now + wait)[0]


def test_a_connection_with_a_chain_tag_needs_a_chain_value() -> None:
    from bharatsend_core.domain.errors import InvalidArgument
    from bharatsend_core.domain.routing import Connection

    tags = {"pe_id": 0x1400, "template_id": 0x1401, "chain": 0x1402}
    with pytest.raises(InvalidArgument) as caught:
        Connection(host="h", port=2775, system_id="s", password="p", dlt_tlvs=tags)
    assert caught.value.field == "dlt_chain"
    ok = Connection(host="h", port=2775, system_id="s", password="p", dlt_tlvs=tags, dlt_chain="ab")
    assert ok.public()["dlt_chain"] == "ab"
    assert "password" not in ok.public()


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"port": 0}, "port"),
        ({"system_id": "x" * 16}, "system_id"),
        ({"password": "123456789"}, "password"),
        ({"bind": "receiver"}, "bind"),
        ({"id_mode": "hex"}, "id_mode"),
        ({"dlt_tlvs": {"pe_id": 0x10}}, "dlt_tlvs"),
        ({"dlt_tlvs": {"pe_id": 0x1400, "template_id": 0x1400}}, "dlt_tlvs"),
        ({"status_overrides": {0: "transient"}}, "status_overrides"),
        ({"status_overrides": {0x45: "sometimes"}}, "status_overrides"),
        ({"response_timeout": 0}, "response_timeout"),
    ],
)
def test_connection_settings_are_validated(changes: dict[str, object], field_name: str) -> None:
    from bharatsend_core.domain.errors import InvalidArgument
    from bharatsend_core.domain.routing import Connection

    base: dict[str, object] = {"host": "h", "port": 2775, "system_id": "s", "password": "p"}
    with pytest.raises(InvalidArgument) as caught:
        Connection(**{**base, **changes})  # type: ignore[arg-type]
    assert caught.value.field == field_name
