"""Each answer to the pooler question, through a real PgBouncer in transaction mode.

For every pooler choice and every driver: 2 workers x 20 concurrent requests x 10, no error
(no prepared statement lost, no startup parameter refused, no session state left on a server
connection another client gets next). Then, per driver, the throughput of the app's own pool
against DB_NULL_POOL=true (a new connection to the pooler per request), measured one after the
other in one run: the figures are printed in the suite's table (req/s), never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pinning import LOGGED_STATEMENT, PINNING

from faults.fixtures import as_params
from faults.load import run_load
from faults.pgbouncer import pgbouncer_keeping_prepared_statements
from faults.project import MANAGED_POOLERS, Case, cases
from faults.serve import Served, served_app
from faults.server import idle_in_transaction, terminate_idle_backends
from rendering import ProjectEnvironments

CASES = as_params(cases(profiles=MANAGED_POOLERS))
THROUGHPUT_CASES = as_params(cases(profiles=("pgbouncer",)))
STATEMENT_LOG_CASES = as_params(cases(profiles=("pooler-settings-direct",)))
# The drivers that prepare statements (psycopg2 never does).
PREPARED_CASES = as_params(
    (case for case in cases(profiles=("pgbouncer",)) if case.combination.db_driver != "psycopg2"),
    group="prepared-",
)
CONCURRENCY = 16


@pytest.mark.parametrize("served", CASES, indirect=True)
def test_every_pooler_choice_serves_through_pgbouncer_without_an_error(
    served: Served, figures: Callable[..., None]
) -> None:
    result = run_load(
        served.app, concurrency=40, requests_per_client=10, duration=60, item_ids=served.item_ids
    )
    figures(fault="pooler choice: 2 workers x 20 concurrent x 10", case=served.case, result=result)

    assert len(result.requests) == 400, result.summary()
    assert result.failures == [], result.summary() + "\n" + served.diagnostics()
    log = served.app.log_file.read_text()
    assert "prepared statement" not in log and "unsupported startup parameter" not in log, log
    assert served.pgbouncer is not None and served.pgbouncer.logins(served.database) > 0
    served.assert_no_leaks()


@pytest.mark.parametrize("served", THROUGHPUT_CASES, indirect=True)
def test_the_pool_and_the_null_pool_behind_pgbouncer(
    served: Served,
    figures: Callable[..., None],
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
) -> None:
    """Both serve every request; how fast each is goes to the table, not into an assertion."""
    database = f"{served.database}_null"
    with served_app(
        served.case, postgres, tmp_path, fault_environments, database=database, DB_NULL_POOL="true"
    ) as null_pool:
        results = {}
        for name, app, ids in (
            ("pool", served.app, served.item_ids),
            ("DB_NULL_POOL", null_pool.app, null_pool.item_ids),
        ):
            warm_up = {"concurrency": CONCURRENCY, "requests_per_client": 10, "duration": 30}
            run_load(app, item_ids=ids, **warm_up)
            results[name] = run_load(
                app, concurrency=CONCURRENCY, requests_per_client=50, duration=60, item_ids=ids
            )
            figures(
                fault=f"PgBouncer, {name}: 2 workers x {CONCURRENCY} concurrent",
                case=served.case,
                result=results[name],
                throughput=True,
            )
        # No pool to count: its readiness shows none. Nothing may be left mid-transaction.
        assert idle_in_transaction(postgres, database) == 0

    for name, result in results.items():
        assert result.failures == [], f"{name}: {result.summary()}"


@pytest.mark.parametrize("case", PREPARED_CASES)
def test_behind_pgbouncer_keeping_prepared_statements_the_driver_prepares_without_an_error(
    case: Case,
    figures: Callable[..., None],
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
) -> None:
    """PgBouncer 1.24 with max_prepared_statements: DB_POOLER_PREPARED_STATEMENTS=true against
    the default (off), one after the other; req/s go to the table, never into an assertion."""
    pgbouncer = {
        "executable": pgbouncer_keeping_prepared_statements(),
        "settings": {"max_prepared_statements": "200"},
    }
    results, stats = {}, {}
    for prepared in ("true", "false"):
        with served_app(
            case,
            postgres,
            tmp_path / prepared,
            fault_environments,
            database=f"{case.database}_prepared_{prepared}",
            pgbouncer_options=pgbouncer,
            DB_POOLER_PREPARED_STATEMENTS=prepared,
        ) as served:
            warm_up = {"concurrency": CONCURRENCY, "requests_per_client": 10, "duration": 30}
            run_load(served.app, item_ids=served.item_ids, **warm_up)
            results[prepared] = run_load(
                served.app,
                concurrency=CONCURRENCY,
                requests_per_client=50,
                duration=60,
                item_ids=served.item_ids,
            )
            figures(
                fault=f"PgBouncer 1.24, DB_POOLER_PREPARED_STATEMENTS={prepared}",
                case=case,
                result=results[prepared],
                throughput=True,
            )
            assert served.pgbouncer is not None
            stats[prepared] = served.pgbouncer.stats(served.database)
            log = served.app.log_file.read_text()
            assert "prepared statement" not in log, log

    for prepared, result in results.items():
        assert result.failures == [], f"{prepared}: {result.summary()}"
    # Prepared once per client connection, then only bound: PgBouncer carried them over.
    binds = int(stats["true"]["total_bind_count"])
    assert binds >= len(results["true"].requests), stats["true"]
    assert int(stats["true"]["total_client_parse_count"]) * 10 < binds, stats["true"]
    # Off, nothing is named: PgBouncer has no statement to track.
    assert int(stats["false"]["total_bind_count"]) == 0, stats["false"]


@pytest.mark.parametrize("served", STATEMENT_LOG_CASES, indirect=True)
def test_the_app_under_load_issues_nothing_that_pins_a_pooled_connection(
    served: Served, figures: Callable[..., None]
) -> None:
    log_file: Path = served.postgres.log_file
    served.postgres.execute(f"ALTER DATABASE {served.database} SET log_statement = 'all'")
    start = log_file.stat().st_size
    try:
        # The pooled connections reconnect, with the database's new setting.
        terminate_idle_backends(served.postgres, served.database)
        result = run_load(
            served.app,
            concurrency=16,
            requests_per_client=20,
            duration=60,
            item_ids=served.item_ids,
        )
        for path in ("/health/ready", "/health/live"):
            assert served.app.get(path)[0] == 200
    finally:
        served.postgres.execute(f"ALTER DATABASE {served.database} RESET log_statement")
    with log_file.open(errors="replace") as log:
        log.seek(start)
        statements = [match[1] for match in map(LOGGED_STATEMENT.search, log) if match]
    figures(fault="statement log, a pooler's settings", case=served.case, result=result)

    assert result.failures == [], result.summary()
    assert len(statements) > len(result.requests), "the log must hold the app's statements"
    assert [statement for statement in statements if PINNING.search(statement)] == []
