"""A connection the server closed while it sat idle in the pool never fails a request.

For every driver and target profile (Neon pooled through a real PgBouncer in transaction mode),
the rendered app under uvicorn with 2 workers, a load from another process, and a real fault:
the server terminates the idle connections, or closes them itself after idle_session_timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faults.load import run_load
from faults.project import cases
from faults.serve import served_app
from faults.server import terminate_idle_backends
from rendering import ProjectEnvironments

CASES = [pytest.param(case, id=case.id, marks=pytest.mark.xdist_group(case.id)) for case in cases()]
CONCURRENCY = 16


@pytest.mark.parametrize("case", CASES)
def test_terminated_idle_connections_are_replaced_without_a_failed_request(
    case: Any,
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
    figures: Callable[..., None],
) -> None:
    database = f"{case.database}_terminate"
    with served_app(case, postgres, tmp_path, fault_environments, database=database) as served:
        warm_up = run_load(
            served.app, concurrency=CONCURRENCY, duration=1.5, item_ids=served.item_ids
        )
        assert not warm_up.failures, warm_up.summary()

        terminated = terminate_idle_backends(postgres, database)
        result = run_load(served.app, concurrency=CONCURRENCY, duration=2, item_ids=served.item_ids)
        figures(fault="terminate idle backends", driver=case.driver, profile=case.profile,
                requests=len(result.requests), failed=len(result.failures),
                **{"max s": result.max_latency})  # fmt: skip

        assert terminated > 0, "the fault must hit pooled connections"
        assert result.failures == [], result.summary() + "\n" + served.diagnostics()
        served.assert_no_leaks()


@pytest.mark.parametrize("case", CASES)
def test_connections_the_server_closed_for_idling_are_replaced_without_a_failed_request(
    case: Any,
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
    figures: Callable[..., None],
) -> None:
    database = f"{case.database}_idle"
    # The server closes every session of the app's database after 2 idle seconds.
    with served_app(
        case, postgres, tmp_path, fault_environments, database=database,
        database_settings={"idle_session_timeout": "2s"},
    ) as served:  # fmt: skip
        warm_up = run_load(
            served.app, concurrency=CONCURRENCY, duration=1.5, item_ids=served.item_ids
        )
        opened = served.backends()
        time.sleep(3)
        closed = opened - served.backends()

        result = run_load(served.app, concurrency=CONCURRENCY, duration=2, item_ids=served.item_ids)
        figures(fault="idle_session_timeout 2 s, 3 s pause", driver=case.driver,
                profile=case.profile, requests=len(result.requests),
                failed=len(result.failures), **{"max s": result.max_latency})  # fmt: skip

        assert not warm_up.failures, warm_up.summary()
        assert closed > 0, "the server must have closed idle connections"
        assert result.failures == [], result.summary() + "\n" + served.diagnostics()
        served.assert_no_leaks()
