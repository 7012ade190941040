"""A database on a network the app has no route to: 503 at once, never a 500 or a hang.

The app runs in a network namespace with no route to the database's address, so every connect
fails at once with `OSError: [Errno 101] Network is unreachable` (asyncpg raises it bare, the
libpq drivers wrapped), as it does when a VPC route or a peering is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from faults.app import RunningApp
from faults.fixtures import DEFAULT_TIMEOUTS, FaultRig, as_params, request_bound
from faults.load import run_load
from faults.project import full_set_cases

UNROUTED_HOST = "192.0.2.10"  # TEST-NET-1: no route to it inside the namespace
CASES = as_params(full_set_cases(), group="full-")


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_database_on_an_unreachable_network_gets_503_at_once(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    for served, timeouts in fault_rig.apps():
        url = served.app.env["DATABASE_URL"]
        host = url.split("@", 1)[1].split(":", 1)[0]
        env = served.app.env | {"DATABASE_URL": url.replace(f"@{host}:", f"@{UNROUTED_HOST}:")}
        log = served.app.log_file.with_suffix(".unreachable.log")
        app = RunningApp(served.app.project, served.app.package, env, log, fault_rig.namespace)
        with app:
            result = run_load(app, concurrency=4, duration=2, item_ids=served.item_ids)
        bound = request_bound(timeouts, timeouts["DB_CONNECT_TIMEOUT"] + 1.0)
        figures(fault="no route to the database", case=served.case, result=result, bound=bound,
                defaults=timeouts is DEFAULT_TIMEOUTS)  # fmt: skip

        context = f"{result.summary()}\n{log.read_text()[-3000:]}"
        assert result.requests and result.statuses[503] == len(result.requests), context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
