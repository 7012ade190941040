"""Async drivers: a peer that accepts but never answers gets a 503 within the command timeout.

A proxy between the app and the server keeps the connections open and acknowledged but stops
forwarding, as a hung server or pooler would: TCP timeouts see nothing wrong, so only the
client-side command deadline (statement timeout + connect timeout, the rendered deadline.py)
can end each request. Every request is answered within that deadline plus 1 s: the deadline
drops the connection at once, and a read that met it is not retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from faults.fixtures import SHORT_TIMEOUTS, FaultRig, as_params, command_timeout
from faults.load import Load, run_load
from faults.project import full_set_cases

ASYNC_CASES = [case for case in full_set_cases() if case.combination.concurrency == "async"]
CASES = as_params(ASYNC_CASES, group="full-")
SLACK_SECONDS = 1.0
# Longer than the bound, so that a request held for the whole stall fails the test.
STALL_SECONDS = 15
# The rendered default of DB_CHECKOUT_TEST_TIMEOUT.
CHECKOUT_TEST_SECONDS = 2


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_peer_that_stops_answering_gets_503_within_the_command_timeout(
    fault_rig: FaultRig, figures: Callable[..., None]
) -> None:
    bound = command_timeout() + SLACK_SECONDS
    with fault_rig.app_through_proxy() as served:
        assert served.proxy is not None
        warm_up = run_load(served.app, concurrency=8, duration=1, item_ids=served.item_ids)
        with Load(
            served.app, concurrency=8, duration=STALL_SECONDS + 4, item_ids=served.item_ids
        ) as load:
            time.sleep(1)
            served.proxy.stall()
            stalled_at = time.monotonic()
            try:
                time.sleep(STALL_SECONDS)
            finally:
                served.proxy.resume()
            resumed_at = time.monotonic()
            result = load.result()
        # Requests the stall caught: started before it could be waited out, still running 1 s
        # into it (earlier ones may have had their answer on the way already).
        caught = result.overlapping(stalled_at + 1.0, resumed_at - bound)
        figures(fault=f"peer stops answering {STALL_SECONDS} s (proxy)", case=served.case,
                result=result, recovery=result.recovery_after(resumed_at), bound=bound)  # fmt: skip

        context = f"{result.summary()}\n{served.diagnostics()}"
        assert not warm_up.failures, warm_up.summary()
        assert caught.requests and caught.statuses[503] == len(caught.requests), context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
        served.wait_until_clean(SHORT_TIMEOUTS["DB_IDLE_IN_TRANSACTION_TIMEOUT"] + 5)


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_with_default_settings_a_stopped_peer_fails_the_checkout_test_in_2_s(
    fault_rig: FaultRig,
) -> None:
    """The default command deadline is 40 s; the pool's checkout test has a deadline of its own.

    The request after the stall checks out an idle pooled connection: its SELECT 1 gets no
    answer, and the request is a 503 after DB_CHECKOUT_TEST_TIMEOUT, not after 40 s.
    """
    bound = CHECKOUT_TEST_SECONDS + SLACK_SECONDS
    with fault_rig.app_through_proxy(timeouts={}) as served:
        assert served.proxy is not None
        warm_up = run_load(served.app, concurrency=4, duration=1, item_ids=served.item_ids)
        served.proxy.stall()
        try:
            started = time.monotonic()
            status, body = served.app.get(f"/items/{served.item_ids[0]}", timeout=60)
            waited = time.monotonic() - started
        finally:
            served.proxy.resume()
        log = served.app.log_tail()

    assert not warm_up.failures, warm_up.summary()
    assert status == 503, (body, log)
    assert waited <= bound, f"answered after {waited:.2f} s; {log}"
