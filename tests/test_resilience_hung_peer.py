"""A peer that accepts but never answers gets a 503 within the command deadline, every driver.

A proxy between the app and the server keeps the connections open and acknowledged but stops
forwarding, as a hung server or pooler would: TCP timeouts see nothing wrong, so only the
client-side deadlines (the rendered deadline.py, and the checkout test's) can end each request.
Every request is answered within the deadlines it can meet in a row plus 1 s: with the
shortened timeouts, and, for an app of the same project with the rendered defaults stalled at
the same moment, within 10 s plus 1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from faults.fixtures import (
    DEFAULT_TIMEOUTS,
    SHORT_TIMEOUTS,
    FaultRig,
    as_params,
    command_timeout,
    request_bound,
)
from faults.load import Load, run_load
from faults.project import full_set_cases
from faults.serve import Served

CASES = as_params(full_set_cases(), group="full-")
SLACK_SECONDS = 1.0
# Longer than any bound, so that a request held for the whole stall fails the test.
STALL_SECONDS = 15


def hung_peer_wait(timeouts: dict[str, float]) -> float:
    """The longest run of deadlines a request can meet when its peer stops answering.

    A queued request may wait up to DB_POOL_TIMEOUT for a slot, then for a new connection that
    never completes its handshake (DB_CONNECT_TIMEOUT); a request already running meets the
    command deadline, and one that checks out an idle connection the checkout test's 2 s.
    """
    queued = timeouts["DB_POOL_TIMEOUT"] + timeouts["DB_CONNECT_TIMEOUT"]
    return max(queued, command_timeout(timeouts)) + SLACK_SECONDS


@pytest.fixture
def proxied_apps(fault_rig: FaultRig) -> Iterator[list[tuple[Served, dict[str, float]]]]:
    """Both apps of the rig's project again, each with a StallingProxy before the server."""
    with ExitStack() as stack:
        yield [
            (stack.enter_context(fault_rig.app_through_proxy(timeouts=timeouts)), timeouts)
            for timeouts in (SHORT_TIMEOUTS, {})
        ]


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_a_peer_that_stops_answering_gets_503_within_the_command_deadline(
    proxied_apps: list[tuple[Served, dict[str, float]]], figures: Callable[..., None]
) -> None:
    for served, _ in proxied_apps:
        warm_up = run_load(served.app, concurrency=8, duration=1, item_ids=served.item_ids)
        assert not warm_up.failures, warm_up.summary()
    with ExitStack() as stack:
        loads = [
            stack.enter_context(
                Load(served.app, concurrency=8, duration=STALL_SECONDS + 4,
                     item_ids=served.item_ids)
            )
            for served, _ in proxied_apps
        ]  # fmt: skip
        time.sleep(1)
        for served, _ in proxied_apps:
            assert served.proxy is not None
            served.proxy.stall()
        stalled_at = time.monotonic()
        try:
            time.sleep(STALL_SECONDS)
        finally:
            for served, _ in proxied_apps:
                assert served.proxy is not None
                served.proxy.resume()
        resumed_at = time.monotonic()
        results = [load.result() for load in loads]
    for (served, given), result in zip(proxied_apps, results, strict=True):
        timeouts = given or DEFAULT_TIMEOUTS
        bound = request_bound(timeouts, hung_peer_wait(timeouts))
        # Requests the stall caught: started before it could be waited out, still running 1 s
        # into it (earlier ones may have had their answer on the way already).
        caught = result.overlapping(stalled_at + 1.0, resumed_at - bound)
        figures(fault=f"peer stops answering {STALL_SECONDS} s (proxy)", case=served.case,
                result=result, recovery=result.recovery_after(resumed_at), bound=bound,
                defaults=not given)  # fmt: skip

        context = f"{result.summary()}\n{served.diagnostics()}"
        assert caught.requests and caught.statuses[503] == len(caught.requests), context
        assert (slowest := result.max_latency) <= bound, f"slowest {slowest:.2f} s; {context}"
    short = proxied_apps[0][0]
    short.wait_until_clean(SHORT_TIMEOUTS["DB_IDLE_IN_TRANSACTION_TIMEOUT"] + 5)


@pytest.mark.parametrize("fault_rig", CASES, indirect=True)
def test_with_default_settings_a_stopped_peer_fails_the_checkout_test_in_2_s(
    fault_rig: FaultRig,
) -> None:
    """The request after the stall checks out a connection idle longer than
    DB_CHECKOUT_TEST_AFTER (1 s): its SELECT 1 gets no answer, and the request is a 503 after
    DB_CHECKOUT_TEST_TIMEOUT, not the command deadline.
    """
    bound = DEFAULT_TIMEOUTS["DB_CHECKOUT_TEST_TIMEOUT"] + SLACK_SECONDS
    with fault_rig.app_through_proxy(timeouts={}) as served:
        assert served.proxy is not None
        warm_up = run_load(served.app, concurrency=4, duration=1, item_ids=served.item_ids)
        served.proxy.stall()
        time.sleep(DEFAULT_TIMEOUTS["DB_CHECKOUT_TEST_AFTER"] + 0.2)
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
