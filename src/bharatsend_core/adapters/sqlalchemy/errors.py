"""Database exceptions translated to the errors the storage port documents.

The rule (STYLE rule 5): callers catch *our* errors, never SQLAlchemy's, and
the original stays attached as ``__cause__`` for the operator. Three groups:

- the connection or the server failed (``OperationalError``,
  ``InterfaceError``, anything SQLAlchemy flagged as a disconnect; on SQLite
  also "database is locked" after the busy timeout; on PostgreSQL also
  serialization failures and deadlocks): ``StorageUnavailable``. Nothing was
  committed, and the use case may be retried as a whole;
- the schema is missing: ``ConfigurationError`` telling the operator to
  migrate, since retrying cannot help;
- a unique constraint refused a row that the repository did not expect to
  collide: ``AlreadyExists``. The documented collisions (ids, client message
  ids, ledger replays) are handled where they happen with
  ``INSERT ... ON CONFLICT DO NOTHING``, so they never poison a PostgreSQL
  transaction and each gets its precise error there.

Anything else (a bug: bad SQL, a value the column cannot hold) is left as it
is. Messages never quote SQL parameters: they may hold message content.
"""

from __future__ import annotations

from typing import Final, NoReturn

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from bharatsend_core.domain.errors import (
    AlreadyExists,
    BharatSendError,
    ConfigurationError,
    StorageUnavailable,
)

__all__ = ["is_unique_violation", "reraise", "translate"]

# SQLSTATE codes (PostgreSQL appendix A).
_PG_UNIQUE_VIOLATION: Final = "23505"
_PG_UNDEFINED_TABLE: Final = "42P01"
# sqlite3 extended result codes (sqlite.org/rescode.html).
_SQLITE_CONSTRAINT_PRIMARYKEY: Final = 1555
_SQLITE_CONSTRAINT_UNIQUE: Final = 2067

_MIGRATE_HINT: Final = (
    "the database has no bharatsend-core schema (or an old one); run"
    " BharatSend.migrate() or `bharatsend db upgrade` first"
)


def _reason(error: DBAPIError) -> str:
    """The driver's own first line: says what failed without the statement or its values."""
    text = str(error.orig).strip().splitlines()
    first = text[0] if text else type(error.orig).__name__
    return first[:200]


def _sqlstate(error: DBAPIError) -> str | None:
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether the database refused a row because a unique constraint already holds its key."""
    if _sqlstate(error) == _PG_UNIQUE_VIOLATION:
        return True
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code in (_SQLITE_CONSTRAINT_PRIMARYKEY, _SQLITE_CONSTRAINT_UNIQUE)


def _missing_schema(error: DBAPIError) -> bool:
    if _sqlstate(error) == _PG_UNDEFINED_TABLE:
        return True
    return isinstance(error, OperationalError) and "no such table" in str(error.orig)


def translate(error: DBAPIError) -> BharatSendError | None:
    """The port error for ``error``, or None to let the original propagate (a bug)."""
    if _missing_schema(error):
        return ConfigurationError(_MIGRATE_HINT)
    if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
        return StorageUnavailable(
            f"the database did not complete the transaction ({_reason(error)});"
            " nothing was committed, retry the operation"
        )
    if isinstance(error, IntegrityError) and is_unique_violation(error):
        return AlreadyExists(f"a record with this identity already exists ({_reason(error)})")
    return None


def reraise(error: DBAPIError) -> NoReturn:
    """Raise the port error for ``error`` from it, or ``error`` itself if none fits."""
    mapped = translate(error)
    if mapped is None:
        raise error
    raise mapped from error
