"""A steady load opens no new connections: the rendered pool has a fixed size (issue 16).

For each driver, the rendered app under uvicorn with 2 workers and a load from another process,
at a concurrency equal to its pool and at twice its pool, after a warm-up at that concurrency:
fewer than 1 connection opened per 1000 requests. Connections are counted where they arrive:
the server's sessions (pg_stat_database), or PgBouncer's client logins for Neon's pooled
profile. An overflow share (pool_size 15 + max_overflow 5) opened 1.6 to 11.2 per 1000 here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import as_params
from faults.load import run_load
from faults.project import full_set_cases
from faults.serve import Served
from faults.server import sessions_opened

CASES = as_params(full_set_cases())
MOST_PER_1000_REQUESTS = 1.0
# Statistics reach pg_stat_database within 1 s of a backend going idle.
STATISTICS_DELAY_SECONDS = 1.5


def connections_opened(served: Served) -> int:
    if served.pgbouncer is not None:
        return served.pgbouncer.logins(served.database)
    return sessions_opened(served.postgres, served.database)


@pytest.mark.parametrize("times_the_pool", [1, 2], ids=["pool", "twice-the-pool"])
@pytest.mark.parametrize("served", CASES, indirect=True)
def test_a_steady_load_opens_no_new_connections(
    served: Served, times_the_pool: int, figures: Callable[..., None]
) -> None:
    concurrency = served.app.pool_limit() * times_the_pool
    load = {"concurrency": concurrency, "item_ids": served.item_ids}
    warm_up = run_load(served.app, duration=1.5, **load)
    time.sleep(STATISTICS_DELAY_SECONDS)
    before = connections_opened(served)
    result = run_load(served.app, duration=3, **load)
    time.sleep(STATISTICS_DELAY_SECONDS)
    opened = connections_opened(served) - before
    per_1000 = 1000 * opened / len(result.requests)
    figures(fault=f"steady load, concurrency {concurrency} ({times_the_pool}x the pool)",
            case=served.case, result=result)  # fmt: skip

    context = f"{opened} opened for {result.summary()}\n{served.diagnostics()}"
    assert not warm_up.failures, warm_up.summary()
    assert not result.failures, context
    assert per_1000 < MOST_PER_1000_REQUESTS, f"{per_1000:.2f} per 1000 requests; {context}"
