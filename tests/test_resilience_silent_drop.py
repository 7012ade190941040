"""A silent drop is bounded by the client timeouts, and the app recovers when the link returns.

The app runs in a network namespace; its link to the server goes down for 14 s (longer than any
bound), so packets vanish with no reset. With the client timeouts shortened through the
environment, every request is answered (503 or success) within the deadlines it can meet in a
row plus 2 s (see dead_peer_wait), and the app serves again within 2 s after
the link returns. An app with the rendered default timeouts runs beside it under the same drop:
its requests are answered within 10 s (plus 1 s of slack).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import (
    DEFAULT_TIMEOUTS,
    SHORT_TIMEOUTS,
    FaultRig,
    as_params,
    command_timeout,
    request_bound,
)
from faults.project import Case, full_set_cases
from faults.serve import Served

CASES = as_params(full_set_cases(), group="full-")
DROP_SECONDS = 14
RECOVERY_SECONDS = 2.0
# Time for the server to end what the drop abandoned (idle_in_transaction_session_timeout 5 s).
SETTLE_SECONDS = SHORT_TIMEOUTS["DB_IDLE_IN_TRANSACTION_TIMEOUT"] + 5


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_silent_drop_answers_every_request_within_the_client_timeouts(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    served = fault_rig.served
    with fault_rig.under_load(concurrency=16, duration=DROP_SECONDS + 8) as loads:
        time.sleep(2)
        cut_at = time.time()
        fault_rig.namespace.cut()
        try:
            time.sleep(DROP_SECONDS)
        finally:
            fault_rig.namespace.restore()
        restored_at = time.monotonic()
        results = [load.result() for load in loads]
    for (app, timeouts), result in zip(fault_rig.apps(), results, strict=True):
        with_defaults = timeouts is DEFAULT_TIMEOUTS
        bound = request_bound(timeouts, dead_peer_wait(app.case, timeouts) + 2.0)
        recovery = result.recovery_after(restored_at)
        figures(fault=f"silent drop {DROP_SECONDS} s (netns link down)", case=app.case,
                result=result, recovery=recovery, bound=bound, defaults=with_defaults)  # fmt: skip

        context = f"{result.summary()}\n{app.diagnostics()}"
        assert result.statuses[503] > 0, "the drop must have failed requests: " + context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
        assert recovery is not None and recovery <= RECOVERY_SECONDS, context
        after = result.started_between(restored_at + RECOVERY_SECONDS, float("inf"))
        assert after.failures == [], context
    if served.pgbouncer is None:
        # Every connection from before the drop is dead on the client's side (keepalives,
        # tcp_user_timeout): a server session still open from then is one nobody will use.
        abandoned = wait_for_no_sessions_before(served, cut_at)
        assert abandoned == 0, f"{abandoned} server sessions abandoned by the drop, still open"
    served.wait_until_clean(SETTLE_SECONDS)


def dead_peer_wait(case: Case, timeouts: dict[str, float]) -> float:
    """The longest run of client deadlines one request can meet when its peer stops answering.

    A queued request may first wait up to DB_POOL_TIMEOUT for a connection slot and get one
    just in time. It then meets the command deadline, whose DeadlineExceeded ends the request;
    or, with libpq drivers, tcp_user_timeout first, which SQLAlchemy treats as a disconnect:
    the pool (or the retry of a read) then tries a fresh connection, which meets the connect
    timeout.
    """
    waited = command_timeout(timeouts)
    tcp_user_timeout = timeouts["DB_TCP_USER_TIMEOUT"]
    if case.combination.db_driver != "asyncpg" and tcp_user_timeout < waited:
        waited = tcp_user_timeout + timeouts["DB_CONNECT_TIMEOUT"]
    return timeouts["DB_POOL_TIMEOUT"] + waited


def wait_for_no_sessions_before(served: Served, epoch_seconds: float) -> int:
    deadline = time.monotonic() + SETTLE_SECONDS
    while (left := served.sessions_started_before(epoch_seconds)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left
