"""A silent drop is bounded by the client timeouts, and the app recovers when the link returns.

The app runs in a network namespace; its link to the server goes down for 10 s, so packets
vanish with no reset. With the client timeouts shortened through the environment, every request
is answered (503 or success) within the timeouts it can meet plus 2 s: the one that notices a
dead pooled connection, then the connect timeout of the fresh connection the pool tries next.
The app serves again within 2 s after the link comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import SHORT_TIMEOUTS, FaultRig, as_params
from faults.load import Load
from faults.project import Case, full_set_cases

CASES = as_params(full_set_cases(), group="full-")
DROP_SECONDS = 10
RECOVERY_SECONDS = 2.0


def dead_connection_timeout(case: Case) -> float:
    """How long the client waits on a connection that no longer answers."""
    if case.combination.db_driver == "asyncpg":
        # asyncpg has no TCP timeouts of its own: command_timeout = statement + connect timeout.
        return SHORT_TIMEOUTS["DB_STATEMENT_TIMEOUT"] + SHORT_TIMEOUTS["DB_CONNECT_TIMEOUT"]
    return SHORT_TIMEOUTS["DB_TCP_USER_TIMEOUT"]


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_silent_drop_answers_every_request_within_the_client_timeouts(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    served = fault_rig.served
    with Load(
        served.app, concurrency=16, duration=DROP_SECONDS + 8, item_ids=served.item_ids
    ) as load:
        time.sleep(2)
        fault_rig.namespace.cut()
        try:
            time.sleep(DROP_SECONDS)
        finally:
            fault_rig.namespace.restore()
        restored_at = time.monotonic()
        result = load.result()
    bound = dead_connection_timeout(served.case) + SHORT_TIMEOUTS["DB_CONNECT_TIMEOUT"] + 2.0
    recovery = result.recovery_after(restored_at)
    figures(fault=f"silent drop {DROP_SECONDS} s (netns link down)", case=served.case,
            result=result, recovery=recovery, bound=bound)  # fmt: skip

    context = f"{result.summary()}\n{served.diagnostics()}"
    assert result.statuses[503] > 0, "the drop must have failed requests: " + context
    assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
    assert recovery is not None and recovery <= RECOVERY_SECONDS, context
    after = result.started_between(restored_at + RECOVERY_SECONDS, float("inf"))
    assert after.failures == [], context
    served.wait_until_clean(SHORT_TIMEOUTS["DB_IDLE_IN_TRANSACTION_TIMEOUT"] + 5)
