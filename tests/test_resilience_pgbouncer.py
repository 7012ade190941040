"""Through a real PgBouncer in transaction mode, no prepared-statement error ever.

Neon's pooled endpoint is PgBouncer in transaction mode: each transaction may run on another
server connection, where a statement the driver prepared does not exist. 2 workers x 20
concurrent transactions x 10 each, every driver: 0 errors.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from faults.fixtures import as_params
from faults.load import run_load
from faults.project import cases
from faults.serve import Served

CASES = as_params(cases(profiles=("neon-pooled",)))


@pytest.mark.parametrize("served", CASES, indirect=True)
def test_transactions_through_pgbouncer_never_hit_a_missing_prepared_statement(
    served: Served, figures: Callable[..., None]
) -> None:
    result = run_load(
        served.app, concurrency=40, requests_per_client=10, duration=60, item_ids=served.item_ids
    )
    figures(fault="PgBouncer: 2 workers x 20 concurrent x 10", case=served.case, result=result)

    assert len(result.requests) == 400, result.summary()
    assert result.failures == [], result.summary() + "\n" + served.diagnostics()
    assert "prepared statement" not in served.app.log_file.read_text()
    served.assert_no_leaks()
