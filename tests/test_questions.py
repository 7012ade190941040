"""Questions, their derived defaults, and the refusal of impossible answers.

Each refusal is checked twice: through copier's API (as a tool would call it) and through the
CLI with stdin closed (as CI would), where the exit code and message matter and nothing may be
left behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendering import TEMPLATE_ROOT, render

REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": "sync", "db_driver": "asyncpg"}, "asyncpg works only with concurrency=async"),
    (
        {"concurrency": "async", "db_driver": "psycopg2"},
        "psycopg2 works only with concurrency=sync",
    ),
    ({"worker_count": 0}, "worker_count': must be between 1 and 64"),
    ({"worker_count": 65}, "worker_count': must be between 1 and 64"),
    ({"app_instances": 0}, "app_instances': must be between 1 and 1000"),
    (
        {"deployment": "neon", "worker_count": 64, "app_instances": 79},
        "app_instances': too many for the pooler's 10,000",
    ),
    ({"project_name": "   "}, "project_name': must not be empty"),
    ({"project_name": "x" * 61}, "project_name': must be at most 60 characters"),
    ({"project_name": 'Say "hi"'}, "project_name': no double quotes or backslashes"),
    ({"description": "two\nlines"}, "description': must be one line"),
    ({"project_slug": "2fast"}, "project_slug': must start with a letter a-z"),
    ({"project_slug": "Bad_Name"}, "project_slug': must start with a letter a-z"),
    ({"project_slug": "bad_name"}, "project_slug': only a-z, 0-9 and '-' allowed"),
    ({"project_slug": "bad--name"}, "project_slug': no '--' and no '-' at the end"),
    ({"package_name": "2fast"}, "package_name': must start with a-z or '_'"),
    ({"package_name": "my-pkg"}, "package_name': only a-z, 0-9 and '_' allowed"),
    ({"package_name": "p" * 31}, "package_name': must be at most 30 characters"),
    ({"package_name": "class"}, "package_name': is a Python keyword"),
    ({"package_name": "sqlalchemy"}, "package_name': shadows a module the app imports"),
    (
        {"worker_count": 16, "app_instances": 4, "db_max_connections": 100},
        "db_max_connections': needs 198 (3 per process)",
    ),
    (
        {"worker_count": 1, "app_instances": 1, "db_max_connections": 9},
        "db_max_connections': needs 10",
    ),
    (
        {"deployment": "managed", "cloud_provider": "gcp", "pooler": "rds_proxy"},
        "pooler': RDS Proxy runs on AWS: cloud_provider=aws",
    ),
    (
        {"deployment": "managed", "pooler": "pgbouncer", "pooler_client_limit": 14},
        "pooler_client_limit': needs 15: 3 per process",
    ),
    (
        {
            "deployment": "managed",
            "pooler": "supavisor",
            "worker_count": 64,
            "app_instances": 1000,
            "pooler_client_limit": 200,
        },
        "pooler_client_limit': needs 192003: 3 per process",
    ),
]


def answers(**overrides: Any) -> dict[str, Any]:
    return {"project_name": "Orders Service", **overrides}


@pytest.mark.parametrize(("bad", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_api_refuses_impossible_answers_and_leaves_nothing(
    bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    destination = tmp_path / "project"

    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        render(destination, answers(**bad))

    assert not destination.exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [REFUSALS[0], REFUSALS[1], REFUSALS[2], REFUSALS[6], REFUSALS[19]],
    ids=["sync-asyncpg", "async-psycopg2", "zero-workers", "empty-name", "over-budget"],
)
def test_cli_refuses_impossible_answers_with_exit_1(
    bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    destination = tmp_path / "project"
    data = [f"--data={key}={value}" for key, value in answers(**bad).items()]

    result = copier_cli(["copy", "--defaults", *data, str(TEMPLATE_ROOT), str(destination)])

    # Copier raises a ValueError for a refused --data answer and prints its own traceback (no
    # frame of this template's); the last line is the refusal, on one line.
    last_line = result.stderr.rstrip().splitlines()[-1]
    assert result.returncode == 1
    assert last_line.startswith("ValueError: ")
    assert last_line.endswith(message)
    assert "hooks/" not in result.stderr
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
        # Copier validates a default before showing its prompt: each must fit the answers above.
        ({"project_name": "2fast"}, {"project_slug": "app-2fast", "package_name": "app_2fast"}),
        ({"project_name": "!!!"}, {"project_slug": "app", "package_name": "app"}),
        ({"project_name": "FastAPI"}, {"package_name": "fastapi_app"}),
        ({"project_name": "Class"}, {"package_name": "class_app"}),
        ({"project_name": "Café Ñandú"}, {"project_slug": "caf-and"}),
        ({"project_name": "A" * 60}, {"package_name": "a" * 30}),
        ({"worker_count": 24}, {"db_max_connections": 150}),
        ({"worker_count": 24, "deployment": "neon"}, {"db_max_connections": 104}),
        (
            {"worker_count": 24, "deployment": "neon", "neon_endpoint": "direct"},
            {"db_max_connections": 154},
        ),
        ({"worker_count": 64, "app_instances": 20}, {"db_max_connections": 3846}),
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


@pytest.mark.parametrize("read_replica", [False, True])
def test_the_read_replica_answer_decides_whether_any_replica_code_is_rendered(
    tmp_path: Path, read_replica: bool
) -> None:
    project = render(tmp_path / "p", answers(read_replica=read_replica))

    package = project / "src" / "orders_service"
    rendered = {
        "replica.py": (package / "replica.py").exists(),
        "test_replica.py": (project / "tests" / "test_replica.py").exists(),
        "ReadSessionDep": "ReadSessionDep" in (package / "db.py").read_text(),
        "README": "DATABASE_REPLICA_URL" in (project / "README.md").read_text(),
        ".env.example": "DATABASE_REPLICA_URL" in (project / ".env.example").read_text(),
    }
    assert rendered == dict.fromkeys(rendered, read_replica)
