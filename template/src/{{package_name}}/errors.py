"""Database failures as HTTP answers: 409 for a conflict, 503 for an unavailable database.

The client gets a short JSON body, never a stack trace; the log gets one line with the cause
(driver messages name host and port, never the password).
"""

import errno
import logging
import socket

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger(__name__)

UNIQUE_VIOLATION = "23505"
# SQLSTATE classes of a database that is unreachable, shutting down, out of resources or that
# cancelled the statement (statement_timeout): worth retrying shortly.
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
RETRY_AFTER_SECONDS = "2"
# Socket errors that mean the database host cannot be reached right now.
NETWORK_ERRNOS = frozenset(
    {
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ETIMEDOUT,
    }
)


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE, whichever driver raised (psycopg2: pgcode, psycopg and asyncpg: sqlstate)."""
    code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
    return str(code) if code else None


def is_transient(error: DBAPIError) -> bool:
    code = sqlstate(error)
    if code is not None:
        return code.startswith(TRANSIENT_SQLSTATE_CLASSES)
    # No SQLSTATE: the connection itself failed (refused, reset, closed mid-operation).
    return True


def describe(error: BaseException) -> str:
    """The driver's error type and first line: names host and port, never the password."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def unavailable(request: Request, error: BaseException) -> JSONResponse:
    logger.warning(
        "database unavailable: %s %s: %s", request.method, request.url.path, describe(error)
    )
    return JSONResponse(
        {"detail": "The database is unavailable; retry shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def internal_error(request: Request, error: BaseException) -> JSONResponse:
    logger.error("error: %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse(
        {"detail": "Internal server error."},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


async def handle_integrity_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IntegrityError)
    if sqlstate(error) == UNIQUE_VIOLATION:
        detail = "A record with the same unique value already exists."
    else:
        detail = "The request conflicts with data already stored."
    return JSONResponse({"detail": detail}, status_code=status.HTTP_409_CONFLICT)


async def handle_database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DBAPIError)
    if is_transient(error):
        return unavailable(request, error)
    # A bug (bad SQL, a type mismatch): a plain 500, with the traceback in the log only.
    return internal_error(request, error)


async def handle_unavailable(request: Request, error: Exception) -> JSONResponse:
    return unavailable(request, error)


async def handle_os_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OSError)
    if isinstance(error, socket.gaierror) or error.errno in NETWORK_ERRNOS:
        return unavailable(request, error)
    return internal_error(request, error)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, handle_integrity_error)
    app.add_exception_handler(DBAPIError, handle_database_error)
    # The pool had no connection to give within DB_POOL_TIMEOUT.
    app.add_exception_handler(PoolTimeoutError, handle_unavailable)
    # The async drivers' command deadline (deadline.py) and asyncpg's connect timeout raise a
    # bare TimeoutError; refused, reset or unreachable connections can surface as OSError
    # before SQLAlchemy wraps them.
    app.add_exception_handler(TimeoutError, handle_unavailable)
    app.add_exception_handler(ConnectionError, handle_unavailable)
    app.add_exception_handler(OSError, handle_os_error)
