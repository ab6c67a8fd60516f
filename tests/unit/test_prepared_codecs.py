"""The prepared executor's codecs: the fast paths give exactly what the plain ones give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.adapters.sqlalchemy.prepared import _SqliteTimes as SqliteTimes
from bharatsend_core.adapters.sqlalchemy.prepared import _SqliteTimesOut as SqliteTimesOut
from bharatsend_core.adapters.sqlalchemy.prepared import json_dumps, json_in

_SCALARS = st.text() | st.integers() | st.none() | st.booleans() | st.floats(allow_nan=False)
_DETAILS = st.lists(st.tuples(st.text(), _SCALARS)).map(tuple)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner) | st.tuples(inner, inner),
    max_leaves=10,
)


@given(_DETAILS)
def test_a_timeline_detail_encodes_as_json_dumps_does(
    detail: tuple[tuple[str, object], ...],
) -> None:
    # Booleans and floats leave the fast path; they must still come out the same.
    assert json_in(detail) == json_dumps(detail)
    assert [tuple(pair) for pair in json.loads(json_in(detail))] == list(detail)


@given(_JSON)
def test_any_other_value_encodes_as_json_dumps_does(value: object) -> None:
    assert json_in(value) == json_dumps(value)


def test_escapes_and_non_ascii_text_are_encoded_as_json_dumps_does() -> None:
    detail = (("code", 'quote " back \\ newline \n nul \x00 line-sep \u2028'), ("हिंदी", "ok"))
    assert json_in(detail) == json_dumps(detail)
    assert json_in(()) == "[]"
    assert json_in(((1, "not a str key"),)) == json_dumps(((1, "not a str key"),))


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30))
def test_sqlite_times_decode_right_whatever_repeats(offsets: list[int]) -> None:
    decode = SqliteTimesOut().decode
    base = datetime(2026, 12, 7, tzinfo=UTC)
    for offset in offsets + offsets[::-1]:
        expected = base + timedelta(microseconds=offset)
        text = expected.strftime("%Y-%m-%d %H:%M:%S.%f")
        got = decode(text)
        assert got == expected
        assert got.tzinfo is UTC


_INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


@given(st.lists(_INSTANTS, min_size=1, max_size=6), st.lists(st.integers(0, 5), max_size=40))
def test_sqlite_times_encode_right_whatever_repeats(
    instants: list[datetime], order: list[int]
) -> None:
    # The memo keys on identity: the same objects asked again, in any order.
    encode = SqliteTimes().encode
    for i in order + list(range(len(instants))):
        value = instants[i % len(instants)]
        assert encode(value) == value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
