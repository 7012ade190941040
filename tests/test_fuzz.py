"""Fuzzing the rendered API from its own OpenAPI schema finds no server error, for every driver.

schemathesis generates valid and invalid requests (huge integers, explicit nulls, NUL and other
unusual characters, unknown fields, malformed bodies) and stateful sequences (create, read,
update, delete) against a rendered app served by uvicorn with 2 workers and its production TLS
settings. Its checks: no 5xx answer (`not_a_server_error`), every status documented in the
schema (`status_code_conformance`). One case per driver, both ORMs, asyncpg through a real
PgBouncer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faults.project import one_per_driver
from faults.serve import served_app
from rendering import ProjectEnvironments

CASES = one_per_driver("fuzz")
# schemathesis' own default is 100 examples per operation; the seed keeps a failure repeatable.
MAX_EXAMPLES = 100
SEED = 20261201
CHECKS = "not_a_server_error,status_code_conformance"


def schemathesis(workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`st run` in workdir, where it keeps its cache of failures."""
    command = [str(Path(sys.executable).with_name("st")), "run", *arguments]
    return subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_fuzzing_the_api_finds_no_server_error(
    case: Any,
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
    capsys: pytest.CaptureFixture[str],
) -> None:
    har = tmp_path / "requests.har"
    database = f"fuzz_{case.database}"
    with served_app(case, postgres, tmp_path, fault_environments, database=database) as served:
        result = schemathesis(
            tmp_path,
            f"{served.app.url}/openapi.json",
            f"--checks={CHECKS}",
            f"--max-examples={MAX_EXAMPLES}",
            f"--seed={SEED}",
            "--generation-database=none",
            # One worker: on Python 3.11, hypothesis' parsing of lambdas in several threads at
            # once can fail with "SystemError: AST constructor recursion depth mismatch".
            "--workers=1",
            "--no-color",
            "--report=har",
            f"--report-har-path={har}",
        )
        app_log = served.app.log_tail(40)

    output = result.stdout + result.stderr
    requests = len(json.loads(har.read_text())["log"]["entries"]) if har.exists() else 0
    operations = re.search(r"Tested: (\d+)", output)
    with capsys.disabled():
        print(
            f"\nfuzz {case.id}: {operations.group(1) if operations else '?'} operations, "
            f"{requests} requests, exit {result.returncode}"
        )
    assert result.returncode == 0, f"{output}\n--- app log\n{app_log}"
    assert operations is not None and int(operations.group(1)) == 7, output
    # The five item operations take parameters and get up to MAX_EXAMPLES each.
    assert requests >= 5 * MAX_EXAMPLES, output
