"""Questions, their derived defaults, and the refusal of impossible answers.

Each refusal is checked twice: through copier's API (as a tool would call it) and through the
CLI with stdin closed (as CI would), where the exit code and message matter and nothing may be
left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendering import TEMPLATE_ROOT, render

REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": "sync", "db_driver": "asyncpg"}, "asyncpg only works with concurrency=async"),
    ({"concurrency": "async", "db_driver": "psycopg2"}, "psycopg2 has no asyncio support"),
    ({"worker_count": 0}, "worker_count must be between 1 and 64 (got 0)"),
    ({"worker_count": 65}, "worker_count must be between 1 and 64 (got 65)"),
    ({"app_instances": 0}, "app_instances must be between 1 and 1000"),
    ({"project_name": "!!!"}, "project_slug '' is not a valid distribution name"),
    ({"project_name": "2fast"}, "project_slug '2fast' is not a valid distribution name"),
    ({"project_name": 'Say "hi"'}, "project_name must be one line without double quotes"),
    ({"project_slug": "Bad_Name"}, "project_slug 'Bad_Name' is not a valid distribution name"),
    ({"package_name": "class"}, "package_name 'class' is a Python keyword"),
    ({"package_name": "sqlalchemy"}, "package_name 'sqlalchemy' would shadow a module"),
    ({"package_name": "my-pkg"}, "package_name 'my-pkg' is not a valid Python package name"),
    (
        {"worker_count": 16, "app_instances": 4, "db_max_connections": 100},
        "64 processes (4 instances x 16 workers) share 94 connections",
    ),
    ({"db_max_connections": 5}, "db_max_connections must be at least 10"),
]


def answers(**overrides: Any) -> dict[str, Any]:
    return {"project_name": "Orders Service", **overrides}


@pytest.mark.parametrize(("bad", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_api_refuses_impossible_answers_and_leaves_nothing(
    bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    destination = tmp_path / "project"

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(destination, answers(**bad))

    assert not destination.exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [REFUSALS[0], REFUSALS[1], REFUSALS[2], REFUSALS[5], REFUSALS[12]],
    ids=["sync-asyncpg", "async-psycopg2", "zero-workers", "no-package-name", "over-budget"],
)
def test_cli_refuses_impossible_answers_with_exit_1(
    bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    destination = tmp_path / "project"
    data = [f"--data={key}={value}" for key, value in answers(**bad).items()]

    result = copier_cli(["copy", "--defaults", *data, str(TEMPLATE_ROOT), str(destination)])

    assert result.returncode == 1
    assert message in result.stderr
    assert not destination.exists()


def test_cli_without_answers_and_without_a_terminal_asks_for_defaults(tmp_path: Path) -> None:
    result = copier_cli(["copy", str(TEMPLATE_ROOT), str(tmp_path / "project")])

    assert result.returncode == 1
    assert "Interactive session required" in result.stderr


def test_data_file_renders_without_prompts_or_trust(tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(yaml.safe_dump(answers(concurrency="sync", orm="sqlalchemy")))

    result = copier_cli(
        ["copy", "--defaults", f"--data-file={data_file}", str(TEMPLATE_ROOT), str(tmp_path / "p")]
    )

    assert result.returncode == 0, result.stderr
    db_module = (tmp_path / "p" / "src" / "orders_service" / "db.py").read_text()
    assert ") -> Iterator[Session]:" in db_module  # the sync session dependency


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"concurrency": "async"}, {"db_driver": "asyncpg"}),
        ({"concurrency": "sync"}, {"db_driver": "psycopg"}),
        ({"project_name": "Billing API v2"}, {"project_slug": "billing-api-v2"}),
        ({"project_name": "Billing API v2"}, {"package_name": "billing_api_v2"}),
        ({"deployment": "neon"}, {"db_max_connections": 104, "neon_endpoint": "pooled"}),
        ({"deployment": "managed"}, {"db_max_connections": 100, "cloud_provider": "aws"}),
    ],
)
def test_defaults_follow_earlier_answers(
    given: dict[str, Any], expected: dict[str, Any], tmp_path: Path
) -> None:
    project = render(tmp_path / "project", answers(**given))

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: recorded[key] for key in expected} == expected


def copier_cli(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copier", *arguments, "--vcs-ref=HEAD", "--quiet"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
