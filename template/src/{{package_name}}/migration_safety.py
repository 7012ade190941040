"""Migrations that run beside the app and beside each other without harm.

- One runner at a time: a session-level advisory lock, so instances or jobs started together
  queue; each later one then finds nothing to do. Session-level, it also covers the steps that
  run outside a transaction (`op.get_context().autocommit_block()`, e.g. CREATE INDEX
  CONCURRENTLY).
- A short lock_timeout: a step waiting for a table lock behind a long transaction gives up
  instead of queueing every query of the app on that table behind it, and is retried a few
  times (https://www.postgresql.org/docs/current/explicit-locking.html).
- Their own statement_timeout, none by default: an index build or a backfill may run longer
  than the app's requests.

Behind a transaction pooler (no DATABASE_DIRECT_URL) nothing may outlive a transaction: the lock
and the timeouts are taken per transaction, and steps outside a transaction are not covered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .failures import sqlstate
from .server_settings import milliseconds

if TYPE_CHECKING:
    from .settings import Settings

logger = logging.getLogger(__name__)

# Every runner of this project's migrations on a database takes the same lock.
LOCK_KEY = "SELECT hashtext('alembic upgrade: ' || current_database())"
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def one_runner_at_a_time(connection: Connection, settings: Settings) -> Iterator[None]:
    """Hold the migration lock and the migration timeouts for the whole session."""
    if settings.migrations_behind_pooler:
        yield
        return
    _lock_and_limit(connection, settings, "pg_advisory_lock", for_transaction=False)
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock(({LOCK_KEY}))")
        connection.commit()


def limit_this_transaction(connection: Connection, settings: Settings) -> None:
    """Behind a transaction pooler: the lock and the timeouts for this transaction only."""
    if settings.migrations_behind_pooler:
        _lock_and_limit(connection, settings, "pg_advisory_xact_lock", for_transaction=True)


def _lock_and_limit(
    connection: Connection, settings: Settings, lock_function: str, *, for_transaction: bool
) -> None:
    # The migrations' statement_timeout first: it alone bounds the wait for the lock, so a
    # second runner waits as long as the first one migrates. lock_timeout only after the lock.
    set_config = text("SELECT set_config(:name, :value, :local)")
    timeout = milliseconds(settings.db_migration_statement_timeout)
    connection.execute(
        set_config, {"name": "statement_timeout", "value": str(timeout), "local": for_transaction}
    )
    connection.exec_driver_sql(f"SELECT {lock_function}(({LOCK_KEY}))")
    timeout = milliseconds(settings.db_migration_lock_timeout)
    connection.execute(
        set_config, {"name": "lock_timeout", "value": str(timeout), "local": for_transaction}
    )


def retry_on_lock_timeout(settings: Settings, upgrade: Callable[[], None]) -> None:
    """Run the upgrade; when a step gave up waiting for a lock, run it again a few times."""
    attempts = settings.db_migration_lock_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            upgrade()
            return
        except DBAPIError as error:
            if sqlstate(error) != LOCK_NOT_AVAILABLE:
                raise
            if attempt == attempts:
                # One line for the person running the migration, not a traceback.
                raise SystemExit(
                    f"migration stopped: a step waited {settings.db_migration_lock_timeout:g} s "
                    f"for a lock held by another session, {attempts} times. Find the long "
                    "transaction (pg_stat_activity), then migrate again, or raise "
                    "DB_MIGRATION_LOCK_TIMEOUT or DB_MIGRATION_LOCK_RETRIES for this run."
                ) from None
            pause = min(2.0 ** (attempt - 1), 10.0)
            logger.warning(
                "migration step waited %s s for a lock held by another session and was rolled "
                "back (attempt %d of %d); retrying in %.0f s",
                settings.db_migration_lock_timeout,
                attempt,
                attempts,
                pause,
            )
            time.sleep(pause)
