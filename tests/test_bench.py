"""The benchmark command keeps working: a short run of one stack, end to end.

The figures of such a short run mean nothing; what is checked is that the command renders,
serves the three apps, drives load, profiles and reports, with every request answered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rendering import TEMPLATE_ROOT


def throughput_rows(report: str) -> list[dict[str, str]]:
    """The rows of the report's first table, as {column name: cell}."""
    lines = iter(report.splitlines())
    header = next(line for line in lines if line.startswith("| stack | endpoint | app |"))
    names = [cell.strip() for cell in header.strip("|").split("|")]
    next(lines)  # the alignment row
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def bench(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *arguments],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=os.environ,
        timeout=timeout,
        check=False,
    )


@pytest.mark.xdist_group("bench")
def test_a_short_run_reports_every_app_and_endpoint_without_errors(
    postgres: object, tmp_path: Path
) -> None:
    # `postgres` only ensures server binaries are there: the bench starts its own cluster.
    result = bench(
        "--stacks=async-asyncpg",
        "--observability=opentelemetry",
        "--rounds=1",
        "--duration=1",
        "--warmup=0.2",
        "--no-suites",
        f"--out={tmp_path}",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "results.md").read_text()
    assert report in result.stdout
    rows = throughput_rows(report)
    assert {(row["stack"], row["endpoint"], row["app"]) for row in rows} == {
        (stack, endpoint, app)
        for stack in ("async-asyncpg", "async-asyncpg-opentelemetry")
        for endpoint in ("GET /items/{id}", "POST /items")
        for app in ("rendered", "(a) safety off", "(b) raw driver")
    }
    # The OpenTelemetry apps exported to the bench's OTLP endpoint.
    exports = re.search(r"the OpenTelemetry apps sent (\d+) OTLP exports", result.stderr)
    assert exports and int(exports[1]) > 0, result.stderr
    for row in rows:
        assert int(row["req/s"]) > 0 and float(row["app CPU ms/req"]) > 0, row
        assert float(row["new connections/1000 req"]) >= 0, row
        assert row["errors"] == "0", row
    assert "## Profile: async-asyncpg" in report
    assert re.search(r"^\| SQLAlchemy \| [\d.]+ \| [\d.]+ \| 0\.00 \|$", report, re.MULTILINE)


def test_an_unknown_stack_is_refused_with_the_choices() -> None:
    result = bench("--stacks=async-psycopg2", timeout=60)

    assert result.returncode == 2
    assert "unknown stacks ['async-psycopg2']; choose from async-asyncpg" in result.stderr


def test_an_unknown_observability_answer_is_refused_with_the_choices() -> None:
    result = bench("--observability=prometheus,datadog", timeout=60)

    assert result.returncode == 2
    assert "unknown observability ['datadog']; choose from prometheus, opentelemetry" in (
        result.stderr
    )
