"""A missing prerequisite fails the tests that need it: a skipped test would pass unseen.

`.ci/run` and a developer's `uv run pytest` run the same command; neither depends on `CI` being
exported for a missing PostgreSQL or PgBouncer to count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def test_a_fault_test_without_postgresql_fails_instead_of_skipping(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    # An explicit PG_BIN_DIR is used as given: here, one without pg_ctl or initdb.
    env["PG_BIN_DIR"] = str(tmp_path)

    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
            "-q", "-x", "--rootdir", str(TESTS.parent), "-k", "async-asyncpg",
            str(TESTS / "test_resilience_stale_connections.py"),
        ],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    summary = result.stdout.splitlines()[-1]
    assert result.returncode == 1, result.stdout[-2000:]
    assert "skipped" not in summary and "1 error" in summary, summary
    assert "No PostgreSQL server binaries (pg_ctl, initdb) found" in result.stdout
