"""`copier update`: user edits survive, template changes land, conflicts are visible, and
changed answers re-render the project as if it had been copied with them.

The template is released into a throwaway repository: 1.0.0 is the current tree with a few
changes undone (tests/versions.py), 1.1.0 is the current tree.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from project_checks import passes_its_own_checks
from rendering import TEMPLATE_ROOT, ProjectEnvironments
from versions import (
    MAIN_MODULE,
    OLD_MAIN_SUMMARY,
    TemplateReleases,
    cli,
    commit_all,
    files_with_conflict_markers,
    git,
    older_and_current,
    unmerged_paths,
    update,
)

START = {
    "project_name": "Orders",
    "concurrency": "async",
    "db_driver": "asyncpg",
    "orm": "sqlmodel",
    "deployment": "managed",
    "cloud_provider": "aws",
    "include_docker": True,
}
CURRENT_MAIN_SUMMARY = (TEMPLATE_ROOT / MAIN_MODULE).read_text().split("\n", 1)[0]

USER_ROUTE = """

@app.get("/version")
def version() -> dict[str, str]:
    return {"version": "2024.6"}
"""
USER_TEST = '''"""The service's own endpoint, added after generation."""

import httpx


async def test_version_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/version")

    assert response.json() == {"version": "2024.6"}
'''
USER_README_SECTION = "\n## On call\n\nPage the orders team.\n"
USER_ENV = "# staging\nDATABASE_URL=postgresql://orders:secret@db.internal/orders\n"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> TemplateReleases:
    return older_and_current(tmp_path_factory.mktemp("releases") / "template")


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    return ProjectEnvironments(tmp_path_factory.mktemp("venvs"))


def recorded_answers(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def project_files(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): path.read_text()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def make_user_edits(project: Path) -> None:
    """Edits in a file the template changes elsewhere (main.py), in one it leaves alone
    (README.md), a new module of the user's own, and a git-ignored .env."""
    with (project / "src" / "orders" / "main.py").open("a") as main:
        main.write(USER_ROUTE)
    with (project / "README.md").open("a") as readme:
        readme.write(USER_README_SECTION)
    (project / "tests" / "test_version.py").write_text(USER_TEST)
    (project / ".env").write_text(USER_ENV)
    commit_all(project, "Our own endpoint and notes")


@pytest.mark.slow
@pytest.mark.xdist_group("update-async-asyncpg-sqlmodel")
def test_user_edits_survive_an_update_and_the_project_still_passes_its_tests(
    releases: TemplateReleases, tmp_path: Path, postgres: Any, environments: ProjectEnvironments
) -> None:
    project = releases.copy(tmp_path / "orders", START, "1.0.0")
    make_user_edits(project)

    update(project)

    assert files_with_conflict_markers(project) == [] and unmerged_paths(project) == []
    main = (project / "src" / "orders" / "main.py").read_text()
    assert main.startswith(CURRENT_MAIN_SUMMARY + "\n"), "the template's change did not land"
    assert OLD_MAIN_SUMMARY not in main
    assert main.endswith(USER_ROUTE), "the user's route was lost"
    assert (project / "README.md").read_text().endswith(USER_README_SECTION)
    assert (project / "tests" / "test_version.py").read_text() == USER_TEST
    assert (project / ".gitattributes").is_file(), "a file added by the template is missing"
    assert not (project / "src" / "orders" / "legacy.py").exists(), "a dropped file remains"
    assert (project / ".env").read_text() == USER_ENV
    assert recorded_answers(project)["_commit"] == "1.1.0"

    commit_all(project, "Update the template to 1.1.0")
    assert git(project, "status", "--porcelain") == ""
    assert cli(["check-update", "--quiet"], project).returncode == 0
    passes_its_own_checks(
        project,
        dependency_set="async-asyncpg-sqlmodel",
        db_driver="asyncpg",
        environments=environments,
        postgres=postgres,
        database="updated_with_user_edits",
    )


def test_an_edit_to_a_line_the_template_also_changed_is_a_visible_conflict(
    releases: TemplateReleases, tmp_path: Path
) -> None:
    project = releases.copy(tmp_path / "orders", START, "1.0.0")
    main = project / "src" / "orders" / "main.py"
    main.write_text(main.read_text().replace(OLD_MAIN_SUMMARY, '"""Orders: our wording."""'))
    commit_all(project, "Our own summary")

    result = cli(["update", "--defaults", "--conflict=inline"], project)

    assert result.returncode == 0, "copier reports conflicts with exit 0: automation must check"
    assert unmerged_paths(project) == ["src/orders/main.py"]
    assert files_with_conflict_markers(project) == ["src/orders/main.py"]
    text = main.read_text()
    assert '<<<<<<< before updating\n"""Orders: our wording."""\n=======\n' in text
    assert f"{CURRENT_MAIN_SUMMARY}\n>>>>>>> after updating" in text
    diff_check = subprocess.run(["git", "diff", "--check"], cwd=project, capture_output=True)
    assert diff_check.returncode != 0


# Each change of answer on update, and what the project's answers become: a recorded answer
# that the new ones make invalid (asyncpg in a sync project) is recomputed from its default.
ANSWER_CHANGES = {
    "async-to-sync": ({"concurrency": "sync"}, {"concurrency": "sync", "db_driver": "psycopg"}),
    "sqlmodel-to-sqlalchemy": ({"orm": "sqlalchemy"}, {"orm": "sqlalchemy"}),
    "managed-to-neon-pooled": (
        {"deployment": "neon"},
        {"deployment": "neon", "neon_endpoint": "pooled", "cloud_provider": None},
    ),
    "without-docker": ({"include_docker": False}, {"include_docker": False}),
}


def answers_after(change: dict[str, Any]) -> dict[str, Any]:
    merged = {**START, **change}
    return {key: value for key, value in merged.items() if value is not None}


@pytest.mark.parametrize(("given", "expected"), ANSWER_CHANGES.values(), ids=ANSWER_CHANGES)
def test_changing_an_answer_on_update_renders_what_a_fresh_copy_with_it_would(
    given: dict[str, Any], expected: dict[str, Any], releases: TemplateReleases, tmp_path: Path
) -> None:
    project = releases.copy(tmp_path / "orders", START, "1.1.0")
    before = project_files(project)

    update(project, data=given)

    recorded = recorded_answers(project)
    assert {key: recorded.get(key) for key in expected} == expected
    # Recorded answers are kept even where the new default would differ (Neon's is 104).
    assert recorded["db_max_connections"] == 100
    fresh = releases.copy(
        tmp_path / "fresh", {**answers_after(expected), "db_max_connections": 100}, "1.1.0"
    )
    after = project_files(project)
    assert after != before
    assert after == project_files(fresh)


@pytest.mark.slow
@pytest.mark.xdist_group("update-sync-psycopg-sqlalchemy")
def test_a_project_switched_to_sync_sqlalchemy_neon_without_docker_passes_its_tests(
    releases: TemplateReleases, tmp_path: Path, postgres: Any, environments: ProjectEnvironments
) -> None:
    project = releases.copy(tmp_path / "orders", START, "1.0.0")
    (project / ".env").write_text(USER_ENV)
    change = {"concurrency": "sync", "orm": "sqlalchemy", "deployment": "neon"}
    change |= {"neon_endpoint": "pooled", "include_docker": False}

    update(project, data=change)

    assert files_with_conflict_markers(project) == []
    recorded = recorded_answers(project)
    assert recorded["db_driver"] == "psycopg" and "cloud_provider" not in recorded
    assert not (project / "Dockerfile").exists() and not (project / "compose.yaml").exists()
    assert (project / ".env").read_text() == USER_ENV
    commit_all(project, "Switch to sync SQLAlchemy on Neon's pooler")
    assert git(project, "status", "--porcelain") == ""
    passes_its_own_checks(
        project,
        dependency_set="sync-psycopg-sqlalchemy",
        db_driver="psycopg",
        environments=environments,
        postgres=postgres,
        database="switched_on_update",
    )


def rename_worker_count(template: Path) -> None:
    """A later release renames worker_count to web_workers, defaulting to the old answer."""
    for path in [template / "copier.yml", *(template / "hooks").glob("*.jinja")]:
        path.write_text(re.sub(r"\bworker_count\b", "web_workers", path.read_text()))
    for path in (template / "template").rglob("*.jinja"):
        path.write_text(re.sub(r"\bworker_count\b", "web_workers", path.read_text()))
    copier_yml = template / "copier.yml"
    question = re.compile(r"^(web_workers:\n(?:  .*\n)*?)  default: 2\n", re.MULTILINE)
    text, count = question.subn(
        r'\1  default: "{{ worker_count | default(2) }}"\n', copier_yml.read_text()
    )
    assert count == 1, "copier.yml's worker_count question no longer has `default: 2`"
    copier_yml.write_text(text)


def test_a_renamed_question_keeps_the_answer_given_under_its_old_name(tmp_path: Path) -> None:
    releases = TemplateReleases(tmp_path / "template")
    releases.release("1.1.0")
    releases.release("1.2.0", rename_worker_count)
    project = releases.copy(tmp_path / "orders", {**START, "worker_count": 3}, "1.1.0")

    update(project)

    recorded = recorded_answers(project)
    assert recorded["web_workers"] == 3
    assert "worker_count" not in recorded
    assert "# WEB_CONCURRENCY=3\n" in (project / ".env.example").read_text()
    new_project = releases.copy(tmp_path / "new", START, "1.2.0")
    assert recorded_answers(new_project)["web_workers"] == 2
