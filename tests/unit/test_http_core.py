"""The HTTP plumbing on its own: token buckets, the key cache, JSON rendering, routing."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain.errors import PayloadTooLarge
from bharatsend_core.http.core import (
    KeyRateLimiter,
    Operation,
    PrincipalCache,
    Reply,
    bounded_body,
    content_length,
    json_response,
)


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Ticker()
    limiter = KeyRateLimiter(rate=2.0, burst=3, monotonic=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == 0.5  # one token needs half a second at 2/s
    assert limiter.take("other") == 0.0  # buckets are per key
    clock.now = 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("k") > 0


@given(st.lists(st.floats(min_value=0, max_value=5), max_size=60))
def test_a_bucket_never_admits_more_than_burst_plus_rate_times_elapsed(gaps: list[float]) -> None:
    clock = Ticker()
    limiter = KeyRateLimiter(rate=4.0, burst=5, monotonic=clock)
    admitted = 0
    for gap in gaps:
        clock.now += gap
        if limiter.take("k") == 0.0:
            admitted += 1
    assert admitted <= 5 + 4.0 * clock.now + 1e-9


def test_a_zero_rate_turns_the_limiter_off_and_idle_keys_are_evicted() -> None:
    assert KeyRateLimiter(rate=0, burst=1).take("k") == 0.0
    limiter = KeyRateLimiter(rate=1.0, burst=1, monotonic=Ticker(), max_keys=2)
    for key in ("a", "b", "c"):
        limiter.take(key)
    assert limiter.take("a") == 0.0  # "a" was evicted: a fresh, full bucket


def test_the_key_cache_expires_and_clears() -> None:
    clock = Ticker()
    cache = PrincipalCache(1.0, monotonic=clock)
    assert cache.get("bs_live_x_y") is None
    cache.put("bs_live_x_y", "principal")
    assert cache.get("bs_live_x_y") == "principal"
    clock.now = 1.0
    assert cache.get("bs_live_x_y") is None
    cache.put("bs_live_x_y", "principal")
    cache.clear()
    assert cache.get("bs_live_x_y") is None
    off = PrincipalCache(0)
    off.put("k", "p")
    assert off.get("k") is None


def test_a_lone_surrogate_is_escaped_not_a_crash() -> None:
    response = json_response(422, {"error": {"message": "bad \ud800 input"}})
    assert response.status == 422
    assert json.loads(response.body) == {"error": {"message": "bad \ud800 input"}}
    assert json_response(200, {"name": "नमस्ते"}).body == '{"name":"नमस्ते"}'.encode()


def test_path_parameters_are_matched_whole_segments() -> None:
    op = Operation("GET", "/v1/sms/{id}", "getSms", "", "sms", lambda _call: Reply(None))
    assert op.path_params == ("id",)
    assert op.pattern.match("/v1/sms/msg_1").groupdict() == {"id": "msg_1"}
    assert op.pattern.match("/v1/sms/a/b") is None
    assert op.pattern.match("/v1/sms/") is None


def test_a_body_is_never_read_past_the_limit() -> None:
    assert [content_length(v) for v in (None, "", "12", "x", "-1", 7)] == [None, None, 12, None,
                                                                            None, 7]  # fmt: skip
    assert bounded_body(10, 3, io.BytesIO(b"abcdef").read) == b"abc"  # the declared length only
    assert bounded_body(10, None, None) == b""  # undeclared and not self-ending: no body
    assert bounded_body(10, None, io.BytesIO(b"chunked").read) == b"chunked"
    assert bounded_body(10, 0, io.BytesIO(b"ignored").read) == b""
    untouched = io.BytesIO(b"x" * 50)
    with pytest.raises(PayloadTooLarge) as declared:
        bounded_body(10, 50, untouched.read)
    assert untouched.tell() == 0  # refused before reading
    assert declared.value.detail["limit_bytes"] == 10
    stream = io.BytesIO(b"x" * 50)
    with pytest.raises(PayloadTooLarge):
        bounded_body(10, None, stream.read)
    assert stream.tell() == 11  # at most limit + 1 bytes held
