"""Workers replaced under load lose no request.

uvicorn's rolling restart (SIGHUP to the supervisor) starts each new worker and waits until it
serves before the old one drains: it stops accepting, finishes the requests it has within
--timeout-graceful-shutdown, and its lifespan closes the pool. A load from another process runs
throughout; not one of its requests may fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import as_params
from faults.load import Load
from faults.project import full_set_cases
from faults.serve import Served

CASES = as_params(full_set_cases())
RESTART_SECONDS = 15


@pytest.mark.parametrize("served", CASES, indirect=True)
def test_a_rolling_restart_of_the_workers_under_load_loses_no_request(
    served: Served, figures: Callable[..., None]
) -> None:
    before = served.app.worker_pids()
    with Load(served.app, concurrency=16, duration=8, item_ids=served.item_ids) as load:
        time.sleep(2)
        served.app.restart_workers()
        result = load.result()
    give_up_at = time.monotonic() + RESTART_SECONDS
    while (after := served.app.worker_pids()) & before and time.monotonic() < give_up_at:
        time.sleep(0.2)
    figures(fault="rolling restart of the workers (SIGHUP)", case=served.case, result=result)

    context = f"{result.summary()}\n{served.diagnostics()}"
    assert len(after) == len(before) and not after & before, (before, after, context)
    assert result.failures == [], context
    served.assert_no_leaks()
