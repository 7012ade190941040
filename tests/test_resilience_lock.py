"""A table locked for 14 s answers every request within the pool and statement timeouts.

An ACCESS EXCLUSIVE lock on the items table at concurrency 64: requests waiting for a
connection give up after DB_POOL_TIMEOUT (503), queries waiting for the lock after
DB_STATEMENT_TIMEOUT (504), so every request is answered within their sum plus 1 s, and the
app serves again as soon as the lock is gone. The app with the rendered defaults (5 s + 5 s),
under the same lock on its own database, answers within 10 s plus 1 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from faults.fixtures import DEFAULT_TIMEOUTS, FaultRig, as_params, request_bound
from faults.project import full_set_cases

CASES = as_params(full_set_cases(), group="full-")
# Longer than any bound, so that a request waiting out the whole lock fails the test.
LOCK_SECONDS = 14
RECOVERY_SECONDS = 2.0


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_locked_table_answers_every_request_within_the_pool_and_statement_timeouts(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    lock = (
        f"BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); "
        "COMMIT;"
    )
    holders = [
        threading.Thread(target=fault_rig.cluster.execute, args=(lock, served.database))
        for served, _ in fault_rig.apps()
    ]
    with fault_rig.under_load(concurrency=64, duration=LOCK_SECONDS + 6) as loads:
        time.sleep(2)
        for holder in holders:
            holder.start()
        for holder in holders:
            holder.join(timeout=LOCK_SECONDS + 30)
        released_at = time.monotonic()
        results = [load.result() for load in loads]
    for (served, timeouts), result in zip(fault_rig.apps(), results, strict=True):
        derived = timeouts["DB_POOL_TIMEOUT"] + timeouts["DB_STATEMENT_TIMEOUT"] + 1.0
        bound = request_bound(timeouts, derived)
        recovery = result.recovery_after(released_at)
        figures(fault=f"ACCESS EXCLUSIVE lock {LOCK_SECONDS} s, 64 concurrent", case=served.case,
                result=result, recovery=recovery, bound=bound,
                defaults=timeouts is DEFAULT_TIMEOUTS)  # fmt: skip

        context = f"{result.summary()}\n{served.diagnostics()}"
        held_up = result.statuses[503] + result.statuses[504]
        assert held_up > 0, "the lock must have held requests up: " + context
        assert set(result.statuses) <= {200, 201, 503, 504}, context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
        assert recovery is not None and recovery <= RECOVERY_SECONDS, context
        after = result.started_between(released_at + RECOVERY_SECONDS, float("inf"))
        assert after.failures == [], context
        served.assert_no_leaks()
    assert not any(holder.is_alive() for holder in holders)
