"""The pool formula on the deployments at its edges, as users read it in the rendered README.

Every process has its own pool, so the budget (max_connections, or the pooler's client limit)
minus reserved and other clients is shared by instances x workers, capped per process by what
one process can use at once (async 20, sync: AnyIO's 40 threads), after one connection per
process for readiness. No overflow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rendering import TEMPLATE_ROOT, render
from versions import cli

POOL_SENTENCE = re.compile(
    r"Each of the (?P<processes>\d+) processes .*?gets\n`pool_size` (?P<pool_size>\d+) \+ "
    r"`max_overflow` (?P<max_overflow>\d+), and keeps one connection of its own for "
    r"`/health/ready`, so at peak\nthey hold at most (?P<peak>\d+)",
    re.DOTALL,
)
MANAGED = {"deployment": "managed", "cloud_provider": "aws"}
NEON_DIRECT = {"deployment": "neon", "neon_endpoint": "direct"}
NEON_POOLED = {"deployment": "neon", "neon_endpoint": "pooled"}


def rendered_pool(tmp_path: Path, **answers: Any) -> dict[str, int]:
    project = render(tmp_path / "project", {"project_name": "Pool Probe", **answers})
    match = POOL_SENTENCE.search((project / "README.md").read_text())
    assert match, "the README states the pool"
    return {name: int(value) for name, value in match.groupdict().items()}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param(
            {"concurrency": "async", "worker_count": 1, "app_instances": 1, **MANAGED},
            {"processes": 1, "pool_size": 20, "max_overflow": 0, "peak": 21},
            id="one-worker-async-is-capped-at-20",
        ),
        pytest.param(
            {"concurrency": "sync", "worker_count": 1, "app_instances": 1, **MANAGED},
            {"processes": 1, "pool_size": 40, "max_overflow": 0, "peak": 41},
            id="one-worker-sync-is-capped-at-40-threads",
        ),
        pytest.param(
            {
                "concurrency": "sync",
                "worker_count": 1,
                "app_instances": 1,
                "db_max_connections": 30,
                **MANAGED,
            },
            {"processes": 1, "pool_size": 23, "max_overflow": 0, "peak": 24},
            id="one-worker-small-database-gets-all-but-reserved-and-others",
        ),
        pytest.param(
            {
                "concurrency": "async",
                "worker_count": 64,
                "app_instances": 1,
                "db_max_connections": 500,
                **MANAGED,
            },
            {"processes": 64, "pool_size": 6, "max_overflow": 0, "peak": 448},
            id="sixty-four-workers-share-the-budget",
        ),
        pytest.param(
            {"concurrency": "async", "worker_count": 31, "app_instances": 1, **MANAGED},
            {"processes": 31, "pool_size": 2, "max_overflow": 0, "peak": 93},
            id="exactly-two-per-process-and-readiness-is-accepted",
        ),
        pytest.param(
            {"concurrency": "sync", "worker_count": 2, "app_instances": 2, **NEON_DIRECT},
            {"processes": 4, "pool_size": 22, "max_overflow": 0, "peak": 92},
            id="neon-quarter-cu-direct-keeps-7-reserved",
        ),
        pytest.param(
            {"concurrency": "sync", "worker_count": 2, "app_instances": 2, **NEON_POOLED},
            {"processes": 4, "pool_size": 40, "max_overflow": 0, "peak": 164},
            id="neon-pooled-uses-the-poolers-10000-clients",
        ),
        pytest.param(
            {"concurrency": "async", "worker_count": 64, "app_instances": 20, **NEON_POOLED},
            {"processes": 1280, "pool_size": 6, "max_overflow": 0, "peak": 8960},
            id="neon-pooled-many-instances-share-the-poolers-limit",
        ),
    ],
)
def test_pool_for_the_deployment(
    tmp_path: Path, answers: dict[str, Any], expected: dict[str, int]
) -> None:
    assert rendered_pool(tmp_path, **answers) == expected


def test_neon_quarter_cu_direct_with_many_workers_is_refused_but_pooled_fits(
    tmp_path: Path,
) -> None:
    crowded = {"concurrency": "async", "worker_count": 16, "app_instances": 4}

    with pytest.raises(ValueError, match=r"'db_max_connections': needs 202 \(3 per process\)$"):
        rendered_pool(tmp_path / "direct", **crowded, **NEON_DIRECT, db_max_connections=104)
    assert rendered_pool(tmp_path / "pooled", **crowded, **NEON_POOLED)["pool_size"] == 20


def test_the_default_max_connections_is_the_fewest_that_fits_when_the_usual_does_not(
    tmp_path: Path,
) -> None:
    crowded = {"concurrency": "async", "worker_count": 16, "app_instances": 4}

    # 7 reserved + 3 others + 64 processes x 3: each process gets the minimum pool, 2, and its
    # readiness connection.
    pool = rendered_pool(tmp_path, **crowded, **NEON_DIRECT)

    assert pool == {"processes": 64, "pool_size": 2, "max_overflow": 0, "peak": 192}


def test_behind_neons_pooler_the_message_after_copy_counts_the_poolers_clients(
    tmp_path: Path,
) -> None:
    answers = {"worker_count": 2, "app_instances": 2, "concurrency": "sync", **NEON_POOLED}
    data = [f"--data={key}={value}" for key, value in answers.items()]

    result = cli(["copy", "--defaults", "--vcs-ref=HEAD", *data, str(TEMPLATE_ROOT), str(tmp_path)])

    assert result.returncode == 0, result.stderr
    assert (
        "Pool: 4 processes x (40 pooled + 1 readiness) = 164 connections at peak,\n"
        "to Neon's pooler (PgBouncer): its client limit is 10,000 (3 kept for admin).\n"
        "Neon sizes the pooler's own pool within max_connections (104).\n"
    ) in result.stderr


def test_behind_pgbouncer_the_message_after_copy_gives_both_layers_of_the_budget(
    tmp_path: Path,
) -> None:
    answers = {
        "worker_count": 2,
        "app_instances": 2,
        "concurrency": "sync",
        "deployment": "managed",
        "cloud_provider": "aws",
        "pooler": "pgbouncer",
    }
    data = [f"--data={key}={value}" for key, value in answers.items()]

    result = cli(["copy", "--defaults", "--vcs-ref=HEAD", *data, str(TEMPLATE_ROOT), str(tmp_path)])

    assert result.returncode == 0, result.stderr
    assert (
        "Pool: 4 processes x (23 pooled + 1 readiness) = 96 connections at peak,\n"
        "to PgBouncer: its client limit is 100 (3 kept for admin).\n"
        "Its server pool: at most 94 = max_connections 100 - 3 reserved - 3 admin.\n"
    ) in result.stderr


def test_a_pooler_client_limit_below_the_fleets_minimum_is_refused(tmp_path: Path) -> None:
    answers = {
        "worker_count": 8,
        "app_instances": 10,
        "deployment": "managed",
        "cloud_provider": "azure",
        "pooler": "pgbouncer",
        "pooler_client_limit": 100,
    }
    data = [f"--data={key}={value}" for key, value in answers.items()]

    result = cli(["copy", "--defaults", "--vcs-ref=HEAD", *data, str(TEMPLATE_ROOT), str(tmp_path)])

    assert result.returncode != 0
    assert "Validation error for question 'pooler_client_limit': needs 243: 3 per process" in (
        result.stderr
    )
