"""What the server sees of an app: its backends, their states, and terminating them."""

from __future__ import annotations

from typing import Any

# Backends of one database, seen from another (the `postgres` database the helper connects to).
BACKENDS = "FROM pg_stat_activity WHERE datname = '{database}' AND backend_type = 'client backend'"


def backend_states(postgres: Any, database: str) -> list[str]:
    rows = postgres.execute(f"SELECT coalesce(state, '') {BACKENDS.format(database=database)}")
    return [row for row in rows.splitlines() if row]


def idle_in_transaction(postgres: Any, database: str) -> int:
    return sum(
        state.startswith("idle in transaction") for state in backend_states(postgres, database)
    )


def terminate_idle_backends(postgres: Any, database: str) -> int:
    """pg_terminate_backend every idle backend of the database, and wait until each has gone (up
    to 5 s each): their goodbye has reached the app before it is loaded. Return how many."""
    rows = postgres.execute(
        f"SELECT pg_terminate_backend(pid, 5000) {BACKENDS.format(database=database)}"
        " AND state = 'idle'"
    )
    return sum(row == "t" for row in rows.splitlines())


def sessions_started_before(postgres: Any, database: str, epoch_seconds: float) -> int:
    rows = postgres.execute(
        f"SELECT count(*) {BACKENDS.format(database=database)} "
        f"AND backend_start < to_timestamp({epoch_seconds})"
    )
    return int(rows.strip())
