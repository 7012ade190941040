"""A warning for each slow query and each long transaction, without the statement's values.

The statement is logged as the driver received it, placeholders and all, shortened to one line;
its parameters never are, so no value a user sent (a password, an email) reaches the log. The
line names the request it ran for (logs.py).
"""

import logging
from time import perf_counter
from typing import Any

from sqlalchemy import Connection, Engine, event

logger = logging.getLogger(__name__)

STATEMENT_CHARACTERS = 200
STARTED = "slow_queries.started"
BEGAN = "slow_queries.began"


def log_slow_queries(engine: Engine, *, query_seconds: float, transaction_seconds: float) -> None:
    """Warn about statements and transactions that took longer than these (0: never)."""
    if query_seconds > 0:
        # A connection runs one statement at a time; a failed one's start is overwritten.
        @event.listens_for(engine, "before_cursor_execute")
        def _started(conn: Connection, *_args: Any) -> None:
            conn.info[STARTED] = perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _ended(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
            seconds = perf_counter() - conn.info.pop(STARTED, perf_counter())
            if seconds >= query_seconds:
                logger.warning("slow query, %.0f ms: %s", seconds * 1000, shorten(statement))

    if transaction_seconds > 0:

        @event.listens_for(engine, "begin")
        def _began(conn: Connection) -> None:
            conn.info[BEGAN] = perf_counter()

        def _ended_transaction(conn: Connection, outcome: str) -> None:
            # An invalidated connection's info went with its DBAPI connection.
            if conn.invalidated or (began := conn.info.pop(BEGAN, None)) is None:
                return
            if (seconds := perf_counter() - began) >= transaction_seconds:
                logger.warning("long transaction, %.0f ms, %s", seconds * 1000, outcome)

        event.listen(engine, "commit", lambda conn: _ended_transaction(conn, "committed"))
        event.listen(engine, "rollback", lambda conn: _ended_transaction(conn, "rolled back"))


def shorten(statement: str) -> str:
    """The statement on one line, at most STATEMENT_CHARACTERS long."""
    line = " ".join(statement.split())
    if len(line) <= STATEMENT_CHARACTERS:
        return line
    return line[: STATEMENT_CHARACTERS - 1] + "…"
