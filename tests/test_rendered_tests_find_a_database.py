"""A rendered project's tests find a database on their own, or say in one line how to give one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rendering import Combination, ProjectEnvironments, render

COMBINATION = Combination(
    "async", "asyncpg", "sqlmodel", {"deployment": "neon", "neon_endpoint": "pooled"}
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("self-start")
    project = render(root / "project", COMBINATION.answers)
    env = ProjectEnvironments(root / "venvs").sync(project, COMBINATION.dependency_set)
    return project, env


def run_tests(project: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env, **extra}
    for name in ("TEST_DATABASE_URL", "DATABASE_URL"):
        environment.pop(name, None)
    return subprocess.run(
        ["pytest", "-q", "-p", "no:cacheprovider", "tests/test_items.py"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.xdist_group("self-start")
def test_without_a_url_the_tests_start_their_own_postgres(
    project: tuple[Path, dict[str, str]], postgres: object
) -> None:
    result = run_tests(*project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


@pytest.mark.xdist_group("self-start")
def test_without_a_url_or_binaries_the_tests_stop_with_one_line(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    result = run_tests(*project, PG_BIN_DIR=str(tmp_path))

    assert result.returncode == 2
    assert "No database for the tests. Set TEST_DATABASE_URL." in result.stdout + result.stderr
