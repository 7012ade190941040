"""A connection the server closed while it sat idle in the pool never fails a request.

For every driver and target profile (Neon pooled through a real PgBouncer in transaction mode),
the rendered app under uvicorn with 2 workers, a load from another process, and a real fault:
the server terminates the idle connections, or closes them itself after idle_session_timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import as_params
from faults.load import run_load
from faults.project import cases
from faults.serve import Served
from faults.server import terminate_idle_backends

CASES = as_params(cases())
CONCURRENCY = 16


@pytest.mark.parametrize("served", CASES, indirect=True)
def test_terminated_idle_connections_are_replaced_without_a_failed_request(
    served: Served, figures: Callable[..., None]
) -> None:
    warm_up = run_load(served.app, concurrency=CONCURRENCY, duration=1, item_ids=served.item_ids)
    terminated = terminate_idle_backends(served.postgres, served.database)
    result = run_load(served.app, concurrency=CONCURRENCY, duration=1.5, item_ids=served.item_ids)
    figures(fault="terminate idle backends", case=served.case, result=result)

    assert not warm_up.failures, warm_up.summary()
    assert terminated > 0, "the fault must hit pooled connections"
    assert result.failures == [], result.summary() + "\n" + served.diagnostics()
    served.assert_no_leaks()


@pytest.mark.parametrize("served", CASES, indirect=True)
def test_connections_the_server_closed_for_idling_are_replaced_without_a_failed_request(
    served: Served, figures: Callable[..., None]
) -> None:
    postgres = served.postgres
    # Sessions pick the setting up after their next statement: the warm-up arms every timer.
    postgres.execute("ALTER SYSTEM SET idle_session_timeout = '2s'")
    postgres.execute("SELECT pg_reload_conf()")
    try:
        warm_up = run_load(
            served.app, concurrency=CONCURRENCY, duration=1, item_ids=served.item_ids
        )
        opened = served.backends()
        time.sleep(3)
        closed = opened - served.backends()
    finally:
        postgres.execute("ALTER SYSTEM RESET idle_session_timeout")
        postgres.execute("SELECT pg_reload_conf()")
    result = run_load(served.app, concurrency=CONCURRENCY, duration=1.5, item_ids=served.item_ids)
    figures(fault="idle_session_timeout 2 s, 3 s pause", case=served.case, result=result)

    assert not warm_up.failures, warm_up.summary()
    assert closed > 0, "the server must have closed idle connections"
    assert result.failures == [], result.summary() + "\n" + served.diagnostics()
    served.assert_no_leaks()
