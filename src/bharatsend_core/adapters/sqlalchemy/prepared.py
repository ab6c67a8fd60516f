"""Statements compiled once, then run straight on the driver's cursor: the hot path's executor.

SQLAlchemy Core builds and compiles every statement (dialect-correct SQL,
bind casts on PostgreSQL, RETURNING on both). Running one through
``Connection.execute`` then costs 12-20 µs of execution-context machinery,
while SQLite needs about 1 µs for an indexed insert, and the accept path runs
ten statements per message. So :class:`Prepared` keeps the compiled SQL and
:class:`Session` runs it on the DBAPI cursor of the unit of work's connection,
inside the transaction SQLAlchemy began. What that bypasses is redone here,
once:

- **types**: only three of the schema's types need converting
  (:class:`Codecs`): ``UtcDateTime``, ``JSON`` and, on SQLite, ``Boolean``;
- **errors**: the driver's exception is wrapped the way SQLAlchemy wraps it
  (disconnects invalidate the connection), then :func:`errors.translate` maps
  it, so callers see the same errors whichever path ran;
- **logging**: with ``echo`` the SQL text is logged, never the parameters.

Dynamic statements (filters chosen at call time) still go through
:meth:`Session.run`, SQLAlchemy's normal path.
"""

from __future__ import annotations

import abc
import json
import logging
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import ARRAY, JSON, Boolean, Connection, CursorResult, Dialect, Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import ClauseElement, Select
from sqlalchemy.types import TypeEngine

from bharatsend_core.adapters.sqlalchemy.errors import reraise, translate
from bharatsend_core.adapters.sqlalchemy.tables import UtcDateTime

__all__ = [
    "Bulk",
    "Codecs",
    "JsonBulk",
    "Prepared",
    "Session",
    "codecs_for",
    "encoder_for",
    "json_dumps",
    "json_in",
]

Convert = Callable[[Any], Any]

#: Compact JSON: smaller rows, and the same text every time for the same value.
#: One encoder for every call (``json.dumps`` with options builds one per call).
json_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# The string escaper that encoder uses (the C one when built, as in CPython).
_json_str: Final = json.encoder.encode_basestring


def json_in(value: Any) -> str:
    """``json_dumps(value)``, with a fast path for timeline details.

    Every message writes three or more timeline entries, each with a detail
    of ``(key, str | int | None)`` pairs; the encoder object costs about 1.7 µs
    a call to set up, joining the escaped pairs about half that. Anything
    else (and a detail of another shape) goes to ``json_dumps``; the text is
    the same either way.
    """
    if type(value) is not tuple:
        return json_dumps(value)
    items = []
    for pair in value:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str:
            return json_dumps(value)
        item = pair[1]
        kind = type(item)
        if kind is str:
            text = _json_str(item)
        elif kind is int:
            text = int.__repr__(item)
        elif item is None:
            text = "null"
        else:
            return json_dumps(value)
        items.append(f"[{_json_str(pair[0])},{text}]")
    return f"[{','.join(items)}]"


# The logger ``create_engine(echo=True)`` turns on.
_ECHO_LOG: Final = logging.getLogger("sqlalchemy.engine.Engine")


class Codecs(NamedTuple):
    """How one dialect's driver wants the schema's special types in, and hands them out."""

    time_in: Convert
    time_out: Convert
    json_in: Convert
    json_out: Convert | None
    bool_out: Convert | None


def _naive(value: datetime) -> ValueError:
    return ValueError(f"naive datetime {value!r} given to storage; pass an aware UTC datetime")


class _SqliteTimes:
    """Aware datetimes as the fixed-width UTC text SQLAlchemy's SQLite DATETIME stores.

    ``YYYY-MM-DD HH:MM:SS.ffffff`` sorts and compares in SQL as the instants
    do. One service call stamps the same ``now`` object on a message's
    creation, update, first timeline entry and dispatch row, so remembering
    the last two instants saves most conversions (two: a message row
    alternates ``now`` with its ``expires_at``). Each memo slot is one tuple,
    replaced whole (an atomic store, safe across threads); holding the object
    keeps its identity from being reused.
    """

    __slots__ = ("_last", "_previous")

    def __init__(self) -> None:
        self._last: tuple[datetime | None, str] = (None, "")
        self._previous: tuple[datetime | None, str] = (None, "")

    def encode(self, value: datetime) -> str:
        last = self._last
        if last[0] is value:
            return last[1]
        previous = self._previous
        if previous[0] is value:
            return previous[1]
        utc = value
        if value.tzinfo is not UTC:
            offset = value.utcoffset()
            if offset is None:
                raise _naive(value)
            utc = value - offset
        # Formatting the fields is about twice as fast as isoformat() of an
        # aware value, which formats the offset only for it to be cut off.
        text = "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the fast spelling
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
        )
        self._previous = last
        self._last = (value, text)
        return text


class _SqliteTimesOut:
    """The stored text back to aware UTC datetimes, remembering the last one.

    A message accepted by one call has the same instant in its ``created_at``,
    ``updated_at`` and first timeline entry (and a batch accepted together
    shares it), so consecutive values repeat; a string compare is a tenth of
    the parse. Same one-tuple memo as :class:`_SqliteTimes`.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[str, datetime | None] = ("", None)

    def decode(self, value: str) -> datetime:
        last = self._last
        if last[0] == value and last[1] is not None:
            return last[1]
        # Parsing the offset is six times cheaper than replace(tzinfo=UTC)
        # after parsing, and "+00:00" parses to the UTC singleton itself.
        parsed = datetime.fromisoformat(value + "+00:00")
        self._last = (value, parsed)
        return parsed


_sqlite_time_out: Final = _SqliteTimesOut().decode


def _pg_time_in(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise _naive(value)
    return value


def _pg_time_out(value: datetime) -> datetime:
    # psycopg hands timestamptz back in the session's zone.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


_SQLITE: Final = Codecs(_SqliteTimes().encode, _sqlite_time_out, json_in, json.loads, bool)
# psycopg parses json columns and returns real booleans itself.
_POSTGRES: Final = Codecs(_pg_time_in, _pg_time_out, json_in, None, None)


def codecs_for(dialect: Dialect) -> Codecs:
    """The codecs of a supported dialect (SQLite or PostgreSQL)."""
    return _POSTGRES if dialect.name == "postgresql" else _SQLITE


def _encoder(type_: TypeEngine[Any], codecs: Codecs) -> Convert | None:
    if isinstance(type_, UtcDateTime):
        return codecs.time_in
    if isinstance(type_, JSON):
        return codecs.json_in
    return None


def encoder_for(type_: TypeEngine[Any], dialect: Dialect) -> Convert | None:
    """How a value of a schema type goes to this dialect's driver (None: as it is)."""
    return _encoder(type_, codecs_for(dialect))


def _decoder(type_: TypeEngine[Any], codecs: Codecs) -> Convert | None:
    if isinstance(type_, UtcDateTime):
        return codecs.time_out
    if isinstance(type_, JSON):
        return codecs.json_out
    if isinstance(type_, Boolean):
        return codecs.bool_out
    return None


class _Batch(abc.ABC):
    """A statement that takes a whole batch of rows at once; subclasses pack the rows.

    ``keys`` name, in order, the row keys the values come from; ``encoders``
    convert non-None values (aware datetimes, JSON) first.
    """

    __slots__ = ("_columns", "sql")

    def __init__(self, sql: str, keys: Sequence[str], encoders: Sequence[Convert | None]) -> None:
        """Keep the SQL and how to take each value from a row."""
        self.sql = sql
        self._columns = tuple(zip(keys, encoders, strict=True))

    def _column(
        self, rows: Sequence[Mapping[str, Any]], key: str, encode: Convert | None
    ) -> list[Any]:
        if encode is None:
            return [row[key] for row in rows]
        return [None if (v := row[key]) is None else encode(v) for row in rows]

    @abc.abstractmethod
    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The driver's parameters for ``rows``."""


class Bulk(_Batch):
    """A batch statement for PostgreSQL that takes one array per parameter (``unnest``).

    ``executemany`` on psycopg sends one query per row (pipelined, but each
    row is still a separate statement for the server); a statement over
    ``unnest(%(p0)s::text[], ...)`` writes the whole batch in one. The SQL
    text does not depend on the batch size, so the server plans it once.
    """

    __slots__ = ()

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The arrays for ``rows``, by parameter name ``p0``, ``p1``, ..."""
        return {
            f"p{i}": self._column(rows, key, encode)
            for i, (key, encode) in enumerate(self._columns)
        }


class JsonBulk(_Batch):
    """A batch statement for SQLite that takes the rows as one JSON array (``json_each``).

    The SQL reads row ``i``'s value ``k`` with ``json_extract(value, '$[k]')``;
    the single parameter is ``p0``.
    """

    __slots__ = ()

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The rows as one JSON text, by parameter name ``p0``."""
        columns = [self._column(rows, key, encode) for key, encode in self._columns]
        return {"p0": json_dumps([list(row) for row in zip(*columns, strict=True)])}


class Prepared:
    """One statement compiled for one dialect, with its parameter order and type conversions.

    Built once per storage. Parameters are passed by name (a mapping), as
    with SQLAlchemy; literal values inside the statement (``+ 1``, SQLite's
    ``OFFSET``) are filled in from the compiled defaults. Result rows are
    named tuples with the selected (or RETURNING) column names.
    """

    __slots__ = (
        "_decoders",
        "_defaults",
        "_encoders",
        "_get",
        "_keys",
        "_row",
        "bulk",
        "sql",
        "statement",
        "writes",
    )

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        """Compile ``statement``; refuse what cannot run pre-compiled (expanding IN lists)."""
        codecs = codecs_for(dialect)
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(f"a prepared statement cannot expand parameters: {compiled.string}")
        self.statement = statement
        self.sql = compiled.string
        #: Whether running it may change rows (any INSERT, UPDATE or DELETE in its
        #: text, a CTE's or ``FOR UPDATE`` included: a false "yes" only costs a rollback).
        self.writes = bool(_DML.search(self.sql))
        #: The same write for a whole batch in one statement (PostgreSQL), if built.
        self.bulk: Bulk | None = None
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        if dialect.name == "postgresql":
            # Id lists in binary: psycopg's text array format quotes every
            # element with regular expressions, which cost more than the query.
            for name, bind in binds.items():
                if isinstance(bind.type, ARRAY):
                    self.sql = self.sql.replace(f"%({name})s", f"%({name})b")
        names = list(compiled.positiontup or ()) if compiled.positional else list(binds)
        # Positional drivers take a sequence in SQL order; named ones a dict.
        self._keys = None if compiled.positional else tuple(names)
        # Literals inside the statement (``+ 1``, SQLite's ``OFFSET -1``).
        self._defaults = {n: binds[n].effective_value for n in names if not binds[n].required}
        getter = itemgetter(*names) if names else None
        self._get: Callable[[Mapping[str, Any]], Sequence[Any]] | None = (
            (lambda params: (getter(params),)) if len(names) == 1 else getter  # type: ignore[misc]
        )
        encoders = ((i, _encoder(binds[name].type, codecs)) for i, name in enumerate(names))
        self._encoders = tuple((i, fn) for i, fn in encoders if fn is not None)
        columns = _result_columns(statement)
        fields = [column.key for column in columns]
        row_type: Any = namedtuple("Row", fields)  # type: ignore[misc]
        self._row: Callable[[Iterable[Any]], Any] = row_type._make
        decoders = ((i, _decoder(column.type, codecs)) for i, column in enumerate(columns))
        self._decoders = tuple((i, fn) for i, fn in decoders if fn is not None)

    def params(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for ``given`` (by name), converted."""
        if self._get is None:
            return ()
        if self._defaults:
            given = {**self._defaults, **given}
        values: Sequence[Any] = self._get(given)
        if self._encoders:
            values = list(values)
            for i, encode in self._encoders:
                value = values[i]
                if value is not None:
                    values[i] = encode(value)
        return values if self._keys is None else dict(zip(self._keys, values, strict=True))

    def rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        """Driver rows as named tuples of domain-ready Python values."""
        make = self._row
        if not self._decoders:
            return [make(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for i, decode in self._decoders:
                value = values[i]
                if value is not None:
                    values[i] = decode(value)
            out.append(make(values))
        return out


_DML = re.compile(r"\b(?:INSERT|UPDATE|DELETE)\b")


def _result_columns(statement: ClauseElement) -> list[Any]:
    if isinstance(statement, Select):
        return list(statement.selected_columns)
    if isinstance(statement, UpdateBase):
        return list(statement.exported_columns)
    return []


class Session:
    """A unit of work's connection: runs prepared statements on its cursor, translating errors.

    The first statement begins the transaction through SQLAlchemy (so the
    storage's ``begin`` hook emits SQLite's ``BEGIN IMMEDIATE``), and
    ``commit()`` on the SQLAlchemy connection ends it. ``wrote`` tells whether
    any statement run may have changed rows.
    """

    __slots__ = ("_dbapi", "_dialect", "_echo", "_error", "connection", "wrote")

    def __init__(self, connection: Connection) -> None:
        """Wrap a checked-out connection."""
        self.connection = connection
        self.wrote = False
        self._dbapi: Any = connection.connection.dbapi_connection
        self._dialect = connection.dialect
        self._error: type[Exception] = connection.dialect.loaded_dbapi.Error
        self._echo = bool(connection.engine.echo)

    def all(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement returns."""
        cursor = self._execute(prepared, params or {})
        try:
            return prepared.rows(cursor.fetchall())
        finally:
            cursor.close()

    def one(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any | None:
        """The first row, or None."""
        rows = self.all(prepared, params)
        return rows[0] if rows else None

    def scalar(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.one(prepared, params)
        return None if row is None else row[0]

    def write(self, prepared: Prepared, params: Mapping[str, Any]) -> int:
        """Run a DML statement; the number of rows it changed."""
        cursor = self._execute(prepared, params)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def write_many(self, prepared: Prepared, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run a DML statement once per row in one driver call; the rows changed in total."""
        bulk = prepared.bulk if len(rows) > 1 else None
        sql = prepared.sql if bulk is None else bulk.sql
        if self._echo:
            _ECHO_LOG.info("%s [prepared, %d rows]", sql, len(rows))
        self.wrote = True
        try:
            cursor = self._cursor()
            if bulk is None:
                cursor.executemany(sql, [prepared.params(row) for row in rows])
            else:
                cursor.execute(sql, bulk.params(rows))
        except self._error as e:
            failure = self._failure(e, sql)
            raise failure from failure.__cause__
        count: int = cursor.rowcount
        cursor.close()
        return count

    def bulk_rows(self, bulk: Bulk | JsonBulk, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Run a batch statement with RETURNING over ``rows``; the raw rows it returned."""
        if self._echo:
            _ECHO_LOG.info("%s [bulk, %d rows]", bulk.sql, len(rows))
        self.wrote = True
        try:
            cursor = self._cursor()
            cursor.execute(bulk.sql, bulk.params(rows))
            returned: list[Any] = cursor.fetchall()
        except self._error as e:
            failure = self._failure(e, bulk.sql)
            raise failure from failure.__cause__
        cursor.close()
        return returned

    def run(
        self,
        statement: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        """Run a statement built at call time through SQLAlchemy (cold paths)."""
        if not isinstance(statement, Select):
            self.wrote = True
        try:
            return self.connection.execute(statement, params)
        except DBAPIError as e:
            reraise(e)

    def _cursor(self) -> Any:
        if not self.connection.in_transaction():
            try:
                self.connection.begin()
            except DBAPIError as e:
                reraise(e)
        return self._dbapi.cursor()

    def _execute(self, prepared: Prepared, params: Mapping[str, Any]) -> Any:
        if self._echo:
            _ECHO_LOG.info("%s [prepared]", prepared.sql)
        if prepared.writes:
            self.wrote = True
        try:
            cursor = self._cursor()
            cursor.execute(prepared.sql, prepared.params(params))
        except self._error as e:
            failure = self._failure(e, prepared.sql)
            raise failure from failure.__cause__
        return cursor

    def _failure(self, error: Exception, sql: str) -> BaseException:
        """SQLAlchemy's wrapping of a driver error, mapped to the port's error when one fits.

        The result's ``__cause__`` is set: the mapped error is caused by the
        wrapped one, which is caused by the driver's.
        """
        invalidated = self._dialect.is_disconnect(cast(Any, error), self._dbapi, None)
        if invalidated:
            # As SQLAlchemy does: the pool must never hand this connection out again.
            self.connection.invalidate(error)
        wrapped = DBAPIError.instance(
            sql,
            None,
            error,
            self._error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=self._dialect,
        )
        assert isinstance(wrapped, DBAPIError)
        wrapped.__cause__ = error
        mapped = translate(wrapped)
        if mapped is None:
            return wrapped
        mapped.__cause__ = wrapped
        return mapped
