"""The rendered pre-commit hooks are valid, pass on a fresh project, and catch conflict markers.

Every hook is a local one (the project's own ruff and mypy through uv, and a pygrep for
conflict markers), so they run here without fetching any hook repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rendering import Combination, ProjectEnvironments, render, run

SAMPLE = [
    Combination("async", "psycopg", "sqlmodel", {"deployment": "managed", "cloud_provider": "gcp"}),
    Combination("sync", "psycopg", "sqlalchemy", {"deployment": "neon", "neon_endpoint": "direct"}),
]
# What `copier update --conflict inline` writes where the user's edit and the template's clash.
CONFLICT = (
    "<<<<<<< before updating\nDB_POOL_SIZE=5\n=======\nDB_POOL_SIZE=10\n>>>>>>> after updating\n"
)


def pre_commit(
    project: Path, env: dict[str, str], *arguments: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pre-commit", *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def project_in_git(
    request: pytest.FixtureRequest, tmp_path: Path, environments: ProjectEnvironments
) -> tuple[Path, dict[str, str]]:
    combination: Combination = request.param
    project = render(tmp_path / "project", combination.answers)
    env = {
        **environments.sync(project, combination.dependency_set),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }
    run(["git", "init", "--quiet"], project)
    run(["git", "add", "--all"], project)
    return project, env


@pytest.mark.parametrize(
    "project_in_git",
    [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.dependency_set)) for c in SAMPLE],
    indirect=True,
)
def test_the_hooks_are_valid_and_pass_on_the_rendered_project(
    project_in_git: tuple[Path, dict[str, str]],
) -> None:
    project, env = project_in_git

    validated = pre_commit(project, env, "validate-config", ".pre-commit-config.yaml")
    assert (validated.returncode, validated.stdout + validated.stderr) == (0, "")
    result = pre_commit(project, env, "run", "--all-files")

    assert result.returncode == 0, result.stdout + result.stderr
    for hook in ("no merge conflict markers", "ruff check", "ruff format", "mypy"):
        assert re.search(rf"^{hook}[^\n]*\.+Passed$", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize(
    "project_in_git",
    [
        pytest.param(
            SAMPLE[0], id=SAMPLE[0].id, marks=pytest.mark.xdist_group(SAMPLE[0].dependency_set)
        )
    ],
    indirect=True,
)
def test_conflict_markers_left_by_copier_update_stop_the_commit(
    project_in_git: tuple[Path, dict[str, str]],
) -> None:
    project, env = project_in_git
    (project / ".env.example").write_text(CONFLICT)

    result = pre_commit(project, env, "run", "conflict-markers", "--files", ".env.example")

    assert result.returncode == 1
    assert "Failed" in result.stdout
    for line in (1, 3, 5):
        assert f".env.example:{line}:" in result.stdout
