"""What went wrong with the database, by cause: one table, the same for every driver.

Drivers report the same failure differently (asyncpg with a SQLSTATE, libpq drivers with a
message; a refused connection as an OSError or as OperationalError), so every error is
classified here once, and errors.py turns the class into an HTTP answer.
"""

import ssl
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class DatabaseUnavailable(Exception):
    """The database could not be reached, or stopped answering: worth retrying shortly."""


class NoConnectionFree(DatabaseUnavailable):
    """No connection slot freed within DB_POOL_TIMEOUT (admission.py)."""


class DeadlineExceeded(DatabaseUnavailable, TimeoutError):
    """A command got no answer within its deadline (deadline.py); its connection is discarded."""


class DatabaseMisconfigured(Exception):
    """The database refused this configuration (credentials, database name, TLS)."""


class Failure(StrEnum):
    UNAVAILABLE = "unavailable"
    MISCONFIGURED = "misconfigured"
    QUERY_TIMEOUT = "query timeout"
    TRANSACTION_CONFLICT = "transaction conflict"
    UNIQUE_VIOLATION = "unique violation"
    CONSTRAINT_VIOLATION = "constraint violation"
    BUG = "bug"


# SQLSTATEs (postgresql.org/docs/current/errcodes-appendix.html) by the cause they stand for.
FAILURE_BY_SQLSTATE = {
    "23505": Failure.UNIQUE_VIOLATION,
    # The transaction was rolled back whole: running it again is safe, writes included.
    "40001": Failure.TRANSACTION_CONFLICT,  # serialization_failure
    "40P01": Failure.TRANSACTION_CONFLICT,  # deadlock_detected
    "57014": Failure.QUERY_TIMEOUT,  # query_canceled (statement_timeout)
    "55P03": Failure.QUERY_TIMEOUT,  # lock_not_available (lock_timeout)
    "28000": Failure.MISCONFIGURED,  # invalid_authorization_specification (no such role)
    "28P01": Failure.MISCONFIGURED,  # invalid_password
    "3D000": Failure.MISCONFIGURED,  # invalid_catalog_name (no such database)
}
FAILURE_BY_SQLSTATE_CLASS = {
    "08": Failure.UNAVAILABLE,  # connection exception
    "23": Failure.CONSTRAINT_VIOLATION,  # NOT NULL, CHECK, foreign key, exclusion
    "53": Failure.UNAVAILABLE,  # insufficient resources: too many connections, disk full
    "57": Failure.UNAVAILABLE,  # operator intervention: shutting down, starting up
    "58": Failure.UNAVAILABLE,  # system error in the server
}
# libpq (and asyncpg's TLS set-up) report a refused configuration as text, without a SQLSTATE.
MISCONFIGURED_MESSAGES = (
    "authentication failed",  # password, or SASL as PgBouncer words it
    "does not exist",  # database "x" / role "x"
    "no such database",  # PgBouncer
    "no pg_hba.conf entry",
    "does not support ssl",
    "rejected ssl upgrade",
    "certificate",  # verify failed, does not match host name, root certificate file
    "sslmode",
    "channel binding",
    "invalid connection option",
)


def classify(error: BaseException) -> Failure:
    """The cause of a database error, whichever driver raised it."""
    if isinstance(error, DatabaseUnavailable | PoolTimeoutError):
        return Failure.UNAVAILABLE
    if isinstance(error, DatabaseMisconfigured):
        return Failure.MISCONFIGURED
    if not isinstance(error, DBAPIError):
        return Failure.BUG
    if code := sqlstate(error):
        if code.startswith("08") and _refuses_configuration(error.orig):
            # A pooler refuses a login in its own words, as a protocol violation (08P01).
            return Failure.MISCONFIGURED
        return FAILURE_BY_SQLSTATE.get(code) or FAILURE_BY_SQLSTATE_CLASS.get(code[:2], Failure.BUG)
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return Failure.UNAVAILABLE
    if isinstance(error, OperationalError):
        return Failure.MISCONFIGURED if _refuses_configuration(error.orig) else Failure.UNAVAILABLE
    # Raised by the driver before anything reached the server: a value it cannot send.
    return Failure.BUG


def discard_after_deadline(engine: Engine) -> None:
    """Discard a connection whose command met its deadline (deadline.py), and only that one."""

    @event.listens_for(engine, "handle_error")
    def _discard(context: ExceptionContext) -> None:
        if isinstance(context.original_exception, DeadlineExceeded):
            context.is_disconnect = True
            # Only this connection: the others are tested when next checked out.
            context.invalidate_pool_on_disconnect = False


def raise_own_connect_errors(engine: Engine) -> None:
    """Connect errors the driver raises as built-in exceptions become the project's own.

    asyncpg raises ConnectionRefusedError, socket.gaierror, TimeoutError or an SSL error while
    connecting, which SQLAlchemy does not wrap. Register this after every other do_connect
    listener: it makes the connection with the arguments they set.
    """

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, TimeoutError) as error:
            if isinstance(error, ssl.SSLCertVerificationError) or _refuses_configuration(error):
                raise DatabaseMisconfigured(describe(error)) from error
            raise DatabaseUnavailable(f"could not connect: {describe(error)}") from error


def _refuses_configuration(error: BaseException | None) -> bool:
    message = str(error).lower()
    return any(text in message for text in MISCONFIGURED_MESSAGES)


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE, whichever driver raised (psycopg2: pgcode, psycopg and asyncpg: sqlstate)."""
    code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
    return str(code) if code else None


def diagnostic(error: DBAPIError, field: str) -> str | None:
    """A field of the server's error report (e.g. constraint_name, column_name), if it sent one."""
    orig = error.orig
    # psycopg and psycopg2 keep it on .diag; SQLAlchemy's asyncpg errors chain asyncpg's own.
    for source in (getattr(orig, "diag", None), orig, orig.__cause__ if orig else None):
        if (value := getattr(source, field, None)) is not None:
            return str(value)
    return None


def describe(error: BaseException) -> str:
    """The driver's error type and first line: names host and port, never the password."""
    cause: BaseException = error.orig if isinstance(error, DBAPIError) and error.orig else error
    # SQLAlchemy's asyncpg adapter raises a generic Error around asyncpg's own, better named one.
    if type(cause).__module__.startswith("sqlalchemy") and cause.__cause__ is not None:
        cause = cause.__cause__
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"
