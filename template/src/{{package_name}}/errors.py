"""Database failures as HTTP answers, one per cause (failures.py classifies them).

| cause                                   | status                     | log                      |
| --------------------------------------- | -------------------------- | ------------------------ |
| unavailable: refused, lost, timed out,  | 503 + Retry-After          | WARNING, one line        |
|   shutting down, too many connections   |                            |                          |
| misconfigured: password, database, TLS  | 503 + Retry-After          | ERROR once per cause     |
| query timeout (statement_timeout)       | 504                        | WARNING, one line        |
| transaction conflict (40001, 40P01)     | run again (retry.py),      | WARNING, one line        |
|                                         | then 503 + Retry-After     |                          |
| unique violation                        | 409 naming the field       | INFO, one line           |
| other constraint (NOT NULL, CHECK, FK)  | 422 (NOT NULL, CHECK) or   | INFO, one line           |
|                                         | 409 (foreign key, other)   |                          |
| anything else: a bug                    | 500                        | ERROR with the traceback |

The client gets a short JSON body, never a stack trace; the log names host and port, never the
password.
"""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.schema import ColumnCollectionConstraint

from .failures import (
    DatabaseMisconfigured,
    DatabaseUnavailable,
    Failure,
    classify,
    describe,
    diagnostic,
    sqlstate,
)
from .models import metadata
from .retry import run_again_if_safe

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "2"
# Constraint violations the client can fix by sending other values.
INVALID_INPUT_SQLSTATES = frozenset({"23502", "23514"})  # not_null_violation, check_violation
# What any route that uses the database may answer besides its own statuses, for OpenAPI.
DATABASE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database is unavailable; retry after Retry-After seconds"},
    504: {"description": "The query took longer than the database allows"},
}
# Misconfigurations already logged at ERROR by this process: one line per cause, not per request.
_reported_misconfigurations: set[str] = set()


def answer(request: Request, error: Exception) -> JSONResponse:
    """The HTTP answer to a database error, and its log line."""
    where = f"{request.method} {request.url.path}"
    match classify(error):
        case Failure.UNAVAILABLE:
            logger.warning("database unavailable: %s: %s", where, describe(error))
            return _retry_later("The database is unavailable; retry shortly.")
        case Failure.MISCONFIGURED:
            _report_misconfiguration(describe(error))
            return _retry_later("The database is unavailable; retry shortly.")
        case Failure.QUERY_TIMEOUT:
            logger.warning("query took too long: %s: %s", where, describe(error))
            return JSONResponse(
                {"detail": "The query took longer than the database allows."},
                status_code=status.HTTP_504_GATEWAY_TIMEOUT,
            )
        case Failure.TRANSACTION_CONFLICT:
            # The request has already run once more; retry.py logs that.
            logger.warning("transaction conflict: %s: %s", where, describe(error))
            return _retry_later("The request conflicted with another one; retry shortly.")
        case Failure.UNIQUE_VIOLATION:
            assert isinstance(error, DBAPIError)
            return _constraint_violation(
                where, error, status.HTTP_409_CONFLICT, "Another record has the same {}."
            )
        case Failure.CONSTRAINT_VIOLATION:
            assert isinstance(error, DBAPIError)
            if sqlstate(error) in INVALID_INPUT_SQLSTATES:
                return _constraint_violation(
                    where, error, status.HTTP_422_UNPROCESSABLE_CONTENT, "The {} is not allowed."
                )
            return _constraint_violation(
                where, error, status.HTTP_409_CONFLICT, "The {} conflicts with data stored."
            )
        case Failure.BUG:
            logger.error("error: %s", where, exc_info=error)
            return JSONResponse(
                {"detail": "Internal server error."},
                status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            )


def _retry_later(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _report_misconfiguration(cause: str) -> None:
    if cause in _reported_misconfigurations:
        logger.debug("database refused the configuration: %s", cause)
        return
    _reported_misconfigurations.add(cause)
    logger.error(
        "database refused the configuration: %s. Check DATABASE_URL (user, password, "
        "database name) and the TLS settings (DB_SSLMODE, sslrootcert); requests get 503 "
        "until it is fixed",
        cause,
    )


def _constraint_violation(
    where: str, error: DBAPIError, status_code: int, message: str
) -> JSONResponse:
    """A body naming the fields at fault, where the server says which constraint failed."""
    constraint = diagnostic(error, "constraint_name")
    fields = _columns_of(constraint) or _names(diagnostic(error, "column_name"))
    logger.info("%s: %s violated: %s", where, constraint or "a constraint", describe(error))
    body: dict[str, Any] = {"detail": message.format(" and ".join(fields) or "value")}
    if fields:
        body["fields"] = fields
    return JSONResponse(body, status_code=status_code)


def _columns_of(constraint: str | None) -> list[str]:
    """The columns a named constraint or unique index covers, from the models' metadata."""
    if constraint is None:
        return []
    for table in metadata.tables.values():
        for index in table.indexes:
            if index.name == constraint:
                return [column.name for column in index.columns]
        for named in table.constraints:
            if named.name == constraint and isinstance(named, ColumnCollectionConstraint):
                return [column.name for column in named.columns]
    return []


def _names(column: str | None) -> list[str]:
    return [column] if column else []


async def handle_database_error(request: Request, error: Exception) -> JSONResponse:
    run_again_if_safe(request, error)
    return answer(request, error)


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped, so that any str encodes, lone surrogates too."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


async def handle_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, whose body echoes the input: a lone surrogate in it must not become a 500."""
    assert isinstance(error, RequestValidationError)
    return AsciiJSONResponse(
        {"detail": jsonable_encoder(error.errors())},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def register_error_handlers(app: FastAPI) -> None:
    # Only the database's exceptions: an OSError or TimeoutError from other code (an HTTP
    # client, a cache) is that code's failure, a 500, not "the database is unavailable".
    for error_type in (SQLAlchemyError, DatabaseUnavailable, DatabaseMisconfigured):
        app.add_exception_handler(error_type, handle_database_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
