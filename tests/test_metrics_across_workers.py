"""With observability=prometheus, a scrape reports every uvicorn worker's pool, not one.

Per driver, a project rendered with Prometheus serves with 2 workers and PROMETHEUS_MULTIPROC_DIR,
prepared as `make serve` prepares it (`python -m <package>.metrics`), the load coming from
another process. Scrapes must sum both workers' pools and agree with the server's own sessions;
every slot held (a locked table) must show as waiting requests, then as pool timeouts counted by
cause, one per 503 the load got; terminated connections must show as invalidated.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from faults.app import WORKERS
from faults.fixtures import as_params
from faults.load import Load, run_load
from faults.project import Case, cases
from faults.serve import Served, served_app
from faults.server import terminate_idle_backends
from rendering import ProjectEnvironments

CASES = as_params(
    Case(replace(case.combination, observability="prometheus"), "prometheus")
    for case in cases(profiles=("managed",))
)
POOL_TIMEOUT_SECONDS = 1
LOCK_SECONDS = 4


def scrape(served: Served) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """/metrics as name -> {labels: value}."""
    with urllib.request.urlopen(f"{served.app.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    figures: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            figures.setdefault(sample.name, {})[labels] = sample.value
    return figures


def primary(figures: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> float:
    return figures.get(name, {}).get((("database", "primary"),), 0.0)


def app_sessions(served: Served) -> int:
    rows = served.postgres.execute(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE application_name = '{served.app.env['APP_NAME']}'"
    )
    return int(rows.strip())


@pytest.fixture(scope="module", params=CASES)
def served(
    request: pytest.FixtureRequest,
    postgres: Any,
    tmp_path_factory: pytest.TempPathFactory,
    fault_environments: ProjectEnvironments,
) -> Any:
    case: Case = request.param
    workdir = tmp_path_factory.mktemp(case.id)
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    # Left by an earlier run: a worker's file that no longer parses would break every scrape.
    (metrics_dir / "gauge_livesum_4242.db").write_bytes(b"not a metrics file")
    package = case.combination.package_name
    with served_app(
        case,
        postgres,
        workdir,
        fault_environments,
        database=case.database,
        before_serving=[["python", "-m", f"{package}.metrics"]],
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        DB_POOL_TIMEOUT=POOL_TIMEOUT_SECONDS,
        DB_STATEMENT_TIMEOUT=LOCK_SECONDS * 3,
    ) as app:
        yield app


def test_the_stale_files_are_gone_and_a_scrape_sums_both_workers_pools(served: Served) -> None:
    metrics_dir = Path(served.app.env["PROMETHEUS_MULTIPROC_DIR"])
    result = run_load(served.app, concurrency=32, duration=3, item_ids=served.item_ids)
    figures = scrape(served)
    per_worker = served.app.pool_limit() // WORKERS

    assert not (metrics_dir / "gauge_livesum_4242.db").exists()
    assert result.failures == [], result.summary()
    # Both workers' pools: one worker's figures alone would show per_worker.
    assert primary(figures, "db_pool_limit") == WORKERS * per_worker
    assert primary(figures, "db_pool_checked_out") == 0
    connections = primary(figures, "db_pool_connections")
    assert per_worker < connections <= WORKERS * per_worker, connections
    # The server's sessions of the app: the pools' connections, and at most one readiness
    # connection per worker.
    assert connections <= app_sessions(served) <= connections + WORKERS
    requests = figures["http_requests_total"]
    assert sum(requests.values()) >= len(result.requests)


def test_under_load_the_checked_out_connections_stay_within_both_pools(served: Served) -> None:
    per_worker = served.app.pool_limit() // WORKERS
    seen = []
    with Load(served.app, concurrency=4 * per_worker, duration=3, item_ids=served.item_ids) as load:
        for _ in range(20):
            time.sleep(0.1)
            figures = scrape(served)
            seen.append(primary(figures, "db_pool_checked_out"))
            assert primary(figures, "db_pool_connections") <= app_sessions(served)
        result = load.result()

    assert result.failures == [], result.summary()
    assert max(seen) > 0, seen
    assert max(seen) <= WORKERS * per_worker, seen


def test_every_slot_held_shows_waiting_requests_then_pool_timeouts_by_cause(
    served: Served,
) -> None:
    before = scrape(served)
    lock = (
        f"BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); "
        "COMMIT;"
    )
    waiting = []
    per_worker = served.app.pool_limit() // WORKERS
    with Load(
        served.app, concurrency=4 * per_worker, duration=LOCK_SECONDS + 1, item_ids=served.item_ids
    ) as load:
        time.sleep(0.5)
        started = time.monotonic()
        holder = threading.Thread(target=served.postgres.execute, args=(lock, served.database))
        holder.start()
        while holder.is_alive() and time.monotonic() - started < LOCK_SECONDS + 5:
            waiting.append(primary(scrape(served), "db_requests_waiting"))
            time.sleep(0.2)
        holder.join()
        result = load.result()
    after = scrape(served)

    def timeouts(figures: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> float:
        return figures.get("db_unavailable_responses_total", {}).get(
            (("cause", "pool_timeout"),), 0
        )

    assert max(waiting) > 0, waiting
    assert result.statuses[503] > 0, result.summary()
    assert timeouts(after) - timeouts(before) == result.statuses[503]
    waits = "db_checkout_wait_seconds_count"
    assert primary(after, waits) - primary(before, waits) >= result.statuses[503]


def test_terminated_connections_show_as_invalidated(served: Served) -> None:
    before = primary(scrape(served), "db_connections_invalidated_total")
    terminated = terminate_idle_backends(served.postgres, served.database)
    result = run_load(served.app, concurrency=8, duration=2, item_ids=served.item_ids)
    after = scrape(served)

    assert terminated > 0
    assert result.failures == [], result.summary()
    assert primary(after, "db_connections_invalidated_total") > before
