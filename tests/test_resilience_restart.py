"""A server restart under load fails requests only while the server is down.

`pg_ctl restart -m fast` under a load from another process: requests fail only while the server
is down, the first success comes within 1 s of the server accepting connections again, and no
request takes longer than the connect timeout plus 1 s: with the shortened timeouts and with the
rendered defaults, both apps restarted under at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import DEFAULT_TIMEOUTS, FaultRig, as_params, request_bound
from faults.project import full_set_cases

CASES = as_params(full_set_cases(), group="full-")
RECOVERY_SECONDS = 1.0


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_fast_restart_fails_requests_only_while_the_server_is_down(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    with fault_rig.under_load(concurrency=16, duration=8) as loads:
        time.sleep(2)
        down_at = time.monotonic()
        fault_rig.cluster.restart("fast")
        # restart() returns once pg_isready succeeds: the server accepts connections again.
        ready_at = time.monotonic()
        results = [load.result() for load in loads]
    for (served, timeouts), result in zip(fault_rig.apps(), results, strict=True):
        bound = request_bound(timeouts, timeouts["DB_CONNECT_TIMEOUT"] + 1.0)
        recovery = result.recovery_after(ready_at)
        figures(fault="pg_ctl restart -m fast", case=served.case, result=result,
                recovery=recovery, bound=bound, defaults=timeouts is DEFAULT_TIMEOUTS)  # fmt: skip

        context = f"{result.summary()}, down {ready_at - down_at:.2f} s\n{served.diagnostics()}"
        assert result.failures_outside(down_at, ready_at + RECOVERY_SECONDS) == [], context
        assert recovery is not None and recovery <= RECOVERY_SECONDS, context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
        served.assert_no_leaks()
