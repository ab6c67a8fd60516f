"""The prepared executor: its codecs' fast paths give what the plain ones give, and it
knows which statements may write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from bharatsend_core.adapters.sqlalchemy.prepared import Prepared, Session, json_dumps, json_in
from bharatsend_core.adapters.sqlalchemy.prepared import _SqliteTimes as SqliteTimes
from bharatsend_core.adapters.sqlalchemy.prepared import _SqliteTimesOut as SqliteTimesOut

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


# --------------------------------------------------------------------------- writes


_T = sa.Table(
    "things",
    sa.MetaData(),
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("updated_at", sa.String),
    sa.Column("deleted", sa.Boolean),
)
_SELECT = sa.select(_T.c.id, _T.c.updated_at).where(_T.c.deleted.is_(False))
_INSERT = _T.insert()
_UPDATE = _T.update().where(_T.c.id == sa.bindparam("b_id")).values(updated_at="x")
_DELETE = _T.delete().where(_T.c.id == sa.bindparam("b_id"))
_CTE = sa.select(_T.update().values(deleted=True).returning(_T.c.id).cte("gone").c.id)


def test_a_statement_knows_whether_it_may_change_rows() -> None:
    # A read-only unit of work ends with COMMIT on PostgreSQL (the storage keeps
    # psycopg's prepared statements); anything that may write must roll back.
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        assert Prepared(_SELECT, dialect).writes is False  # "updated_at", "deleted" are no DML
        assert Prepared(_INSERT, dialect).writes is True
        assert Prepared(_UPDATE, dialect).writes is True
        assert Prepared(_DELETE, dialect).writes is True
        assert Prepared(_CTE, dialect).writes is True  # a SELECT over a writing CTE
    # Locking reads count as writes on PostgreSQL: a needless rollback costs nothing more.
    assert Prepared(_SELECT.with_for_update(), postgresql.psycopg.dialect()).writes is True


def test_a_session_notes_any_statement_that_may_write() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE TABLE things (id TEXT, updated_at TEXT, deleted INT)"))
        dialect = connection.dialect
        row = {"id": "a", "updated_at": "t", "deleted": 0}
        reads = Session(connection)
        reads.all(Prepared(_SELECT, dialect))
        reads.run(sa.select(_T.c.id))  # a cold read through SQLAlchemy
        assert reads.wrote is False
        one = Session(connection)
        one.write(Prepared(_INSERT, dialect), row)
        many = Session(connection)
        many.write_many(Prepared(_INSERT, dialect), [row, row])
        cold = Session(connection)
        cold.run(_DELETE, {"b_id": "a"})
        assert (one.wrote, many.wrote, cold.wrote) == (True, True, True)
