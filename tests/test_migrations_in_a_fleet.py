"""Migrations run as a fleet runs them: many runners at once, and beside a serving app.

One case per driver. Eight `alembic upgrade head` started together on an empty database must all
exit 0 with the schema applied once. A migration whose `ALTER TABLE` waits behind an open
transaction must give up within DB_MIGRATION_LOCK_TIMEOUT, so the app's queries on that table
keep answering, and succeed on a retry once the transaction has ended.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faults.project import database_env, one_per_driver, prepare
from rendering import ProjectEnvironments

CASES = one_per_driver("fuzz")
RUNNERS = 8
# How long the app's reads are timed while the ALTER waits (it gives up every second).
READING_SECONDS = 3
LONG_TRANSACTION = "pg_stat_activity WHERE application_name = 'long transaction'"
LONG_TRANSACTION_RUNNING = f"SELECT count(*) FROM {LONG_TRANSACTION} AND query LIKE '%pg_sleep%'"
ALTER_WAITING = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE items%'"
)
# A revision of the test's own that needs an ACCESS EXCLUSIVE lock on the items table.
ALTER_ITEMS = '''"""Add a note to items."""

from alembic import op

revision = "9999"
down_revision = "0001"


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN note text")


def downgrade() -> None:
    op.execute("ALTER TABLE items DROP COLUMN note")
'''


def alembic(project: Path, env: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["alembic", *arguments],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def hold_a_long_transaction(postgres: Any, database: str) -> None:
    """Read the items table in a transaction that lasts until it is cancelled."""
    script = "SET application_name = 'long transaction'; BEGIN; SELECT count(*) FROM items;"
    with contextlib.suppress(RuntimeError):  # psql reports the cancel that ends it
        postgres.execute(f"{script} SELECT pg_sleep(120); COMMIT;", database)


@contextlib.contextmanager
def an_alter_behind_a_long_transaction(
    project: Path, env: dict[str, str], postgres: Any, database: str
) -> Iterator[None]:
    """The table at 0001, a new revision that alters it, and a transaction in its way."""
    assert alembic(project, env, "upgrade", "0001").wait(timeout=120) == 0
    (project / "migrations" / "versions" / "9999_add_note.py").write_text(ALTER_ITEMS)
    blocker = threading.Thread(target=hold_a_long_transaction, args=(postgres, database))
    blocker.start()
    try:
        wait_for(postgres, database, LONG_TRANSACTION_RUNNING)
        yield
    finally:
        postgres.execute(f"SELECT pg_cancel_backend(pid) FROM {LONG_TRANSACTION}", database)
        blocker.join(timeout=30)


def wait_for(postgres: Any, database: str, count_query: str) -> None:
    deadline = time.monotonic() + 60
    while postgres.execute(count_query, database) != "1\n":
        assert time.monotonic() < deadline, f"never true: {count_query}"
        time.sleep(0.05)


@pytest.fixture
def migrating(
    request: pytest.FixtureRequest,
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
) -> Any:
    case = request.param
    project, env = prepare(case, tmp_path, fault_environments)
    database = f"fleet_{case.database}"
    postgres.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    url = postgres.create_database(database)
    try:
        yield project, env | database_env(case, url), database
    finally:
        postgres.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.mark.parametrize("migrating", CASES, indirect=True)
def test_eight_runners_at_once_all_succeed_and_apply_the_schema_once(
    migrating: Any, postgres: Any
) -> None:
    project, env, database = migrating

    runners = [alembic(project, env, "upgrade", "head") for _ in range(RUNNERS)]
    outputs = [runner.communicate(timeout=120)[0] for runner in runners]

    assert [runner.returncode for runner in runners] == [0] * RUNNERS, "\n".join(outputs)
    assert sum("Running upgrade  -> 0001" in output for output in outputs) == 1
    assert postgres.execute("SELECT version_num FROM alembic_version", database) == "0001\n"
    # The advisory lock is released with the session: nothing is left holding it.
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    assert postgres.execute(held, database) == "0\n"


@pytest.mark.parametrize("migrating", CASES, indirect=True)
def test_a_step_behind_a_long_transaction_gives_way_to_the_app_then_succeeds(
    migrating: Any, postgres: Any
) -> None:
    project, env, database = migrating
    env |= {"DB_MIGRATION_LOCK_TIMEOUT": "1", "DB_MIGRATION_LOCK_RETRIES": "5"}
    # A long transaction that has read the table holds a lock the ALTER must wait for.
    with an_alter_behind_a_long_transaction(project, env, postgres, database):
        migration = alembic(project, env, "upgrade", "head")
        wait_for(postgres, database, ALTER_WAITING)

        # While it waits, the app's reads of the table answer: the ALTER gives way within 1 s.
        slowest = 0.0
        window_ends = time.monotonic() + READING_SECONDS
        while time.monotonic() < window_ends:
            before = time.monotonic()
            postgres.execute("SELECT count(*) FROM items", database)
            slowest = max(slowest, time.monotonic() - before)
            time.sleep(0.1)
    output = migration.communicate(timeout=120)[0]

    retries = output.count("waited 1.0 s for a lock held by another session")
    print(f"\nmigration beside a long transaction: {retries} retries, slowest read {slowest:.2f} s")
    assert migration.returncode == 0, output
    assert slowest < 1.5, f"a read waited {slowest:.2f} s behind the migration"
    assert "waited 1.0 s for a lock held by another session" in output
    assert "Running upgrade 0001 -> 9999" in output
    assert postgres.execute("SELECT version_num FROM alembic_version", database) == "9999\n"


@pytest.mark.parametrize("migrating", CASES, indirect=True)
def test_a_step_that_never_gets_its_lock_stops_with_one_line(migrating: Any, postgres: Any) -> None:
    project, env, database = migrating
    env |= {"DB_MIGRATION_LOCK_TIMEOUT": "0.5", "DB_MIGRATION_LOCK_RETRIES": "1"}
    with an_alter_behind_a_long_transaction(project, env, postgres, database):
        migration = alembic(project, env, "upgrade", "head")
        output = migration.communicate(timeout=120)[0]

    assert migration.returncode == 1
    assert "Traceback" not in output
    assert output.splitlines()[-1] == (
        "migration stopped: a step waited 0.5 s for a lock held by another session, 2 times. "
        "Find the long transaction (pg_stat_activity), then migrate again, or raise "
        "DB_MIGRATION_LOCK_TIMEOUT or DB_MIGRATION_LOCK_RETRIES for this run."
    )
    assert postgres.execute("SELECT version_num FROM alembic_version", database) == "0001\n"
