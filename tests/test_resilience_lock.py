"""A table locked for 10 s answers every request within the pool and statement timeouts.

An ACCESS EXCLUSIVE lock on the items table at concurrency 64: requests waiting for a
connection give up after DB_POOL_TIMEOUT (503), queries waiting for the lock after
DB_STATEMENT_TIMEOUT (504), so every request is answered within their sum plus 1 s, and the
app serves again as soon as the lock is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from faults.fixtures import SHORT_TIMEOUTS, FaultRig, as_params
from faults.load import Load
from faults.project import full_set_cases

CASES = as_params(full_set_cases(), group="full-")
LOCK_SECONDS = 10
RECOVERY_SECONDS = 2.0


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_locked_table_answers_every_request_within_the_pool_and_statement_timeouts(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    served = fault_rig.served
    lock = (
        f"BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); "
        "COMMIT;"
    )
    holder = threading.Thread(target=fault_rig.cluster.execute, args=(lock, served.database))
    with Load(
        served.app, concurrency=64, duration=LOCK_SECONDS + 6, item_ids=served.item_ids
    ) as load:
        time.sleep(2)
        holder.start()
        holder.join(timeout=LOCK_SECONDS + 30)
        released_at = time.monotonic()
        result = load.result()
    bound = SHORT_TIMEOUTS["DB_POOL_TIMEOUT"] + SHORT_TIMEOUTS["DB_STATEMENT_TIMEOUT"] + 1.0
    recovery = result.recovery_after(released_at)
    figures(fault=f"ACCESS EXCLUSIVE lock {LOCK_SECONDS} s, 64 concurrent", case=served.case,
            result=result, recovery=recovery, bound=bound)  # fmt: skip

    context = f"{result.summary()}\n{served.diagnostics()}"
    assert not holder.is_alive()
    held_up = result.statuses[503] + result.statuses[504]
    assert held_up > 0, "the lock must have held requests up: " + context
    assert set(result.statuses) <= {200, 201, 503, 504}, context
    assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
    assert recovery is not None and recovery <= RECOVERY_SECONDS, context
    after = result.started_between(released_at + RECOVERY_SECONDS, float("inf"))
    assert after.failures == [], context
    served.assert_no_leaks()
