"""Every valid combination renders a project that passes its own checks against PostgreSQL."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

import rendering
from rendering import (
    Combination,
    ProjectEnvironments,
    all_combinations,
    render,
    run,
    template_snapshot,
)
from workflow import LocalServices, map_service_urls, read_job, run_job

COMBINATIONS = list(all_combinations())
WITH_DOCKER = [c for c in COMBINATIONS if c.include_docker]
CONTAINER_FILES = {"Dockerfile", "compose.yaml", ".dockerignore"}
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def pairwise_covering(combinations: list[Combination]) -> list[Combination]:
    """Few combinations that hold every pair of answers at least once.

    Greedy: take the combination that holds the most pairs not yet held (the first of equals,
    so the choice is the same on every run), until every pair is held.
    """
    wanted = pairs(combinations)
    covering: list[Combination] = []
    held: set[tuple[tuple[int, str], tuple[int, str]]] = set()
    while held != wanted:
        best = max(combinations, key=lambda combination: len(pairs([combination]) - held))
        covering.append(best)
        held |= pairs([best])
    return covering


def answer_values(combination: Combination) -> tuple[str, ...]:
    return (
        f"{combination.concurrency}-{combination.db_driver}",
        combination.orm,
        combination.target,
        f"pooler={combination.pooler}",
        f"docker={combination.include_docker}",
        f"replica={combination.read_replica}",
        f"kubernetes={combination.include_kubernetes}",
        f"observability={combination.observability}",
    )


def pairs(combinations: Iterable[Combination]) -> set[tuple[tuple[int, str], tuple[int, str]]]:
    return {
        pair
        for combination in combinations
        for pair in itertools.combinations(enumerate(answer_values(combination)), 2)
    }


FULLY_CHECKED = pairwise_covering(COMBINATIONS)


def code_twin(combination: Combination) -> Combination:
    """The combination with the same code: Docker and Kubernetes add other files (tested below)."""
    return replace(combination, include_docker=True, include_kubernetes=False)


FULLY_CHECKED_CODE = {code_twin(c).id for c in FULLY_CHECKED}
LINTED_ONLY = [c for c in COMBINATIONS if c == code_twin(c) and c.id not in FULLY_CHECKED_CODE]


def test_the_fully_checked_combinations_hold_every_pair_of_answers() -> None:
    assert {c.id for c in FULLY_CHECKED} <= {c.id for c in COMBINATIONS}
    assert pairs(FULLY_CHECKED) == pairs(COMBINATIONS)
    # Each stack meets each of the 6 targets; the pooler choices come with 3 of them.
    assert len(FULLY_CHECKED) <= 30, len(FULLY_CHECKED)


def rendered_files(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): path.read_text()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.parts
    }


@pytest.mark.parametrize(
    "combination",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.dependency_set))
        for c in FULLY_CHECKED
    ],
)
def test_rendered_ci_workflow_passes_lint_types_migrations_and_tests(
    combination: Combination, tmp_path: Path, postgres: Any, environments: ProjectEnvironments
) -> None:
    """The job in .github/workflows/ci.yml, every `run:` step as written (see workflow.py)."""
    project = render(tmp_path / combination.id, combination.answers)
    job = read_job(project / ".github" / "workflows" / "ci.yml")
    # The service container has no TLS, so the job relaxes it. This cluster has TLS and SCRAM:
    # one combination per dependency set (target "other") runs the job's env exactly as
    # written; the others override it to prove the production settings. Behind a pooler the
    # job goes through its own PgBouncer (pgbouncer/, plain TCP, in transaction mode) as
    # written; tests/test_poolers.py proves TLS through PgBouncer.
    production_tls = (
        {}
        if combination.target == "other" or combination.pooler != "none"
        else {
            "DB_SSLMODE": "require",
            "DB_CHANNEL_BINDING": "require" if combination.db_driver != "asyncpg" else "prefer",
        }
    )

    with ExitStack() as stack:
        services = LocalServices(stack)
        results = run_job(
            job,
            project,
            cluster=postgres,
            database=combination.package_name,
            environment=environments.environment(combination.dependency_set),
            services=services,
            overrides=production_tls,
        )
        if combination.pooler != "none":
            assert services.pgbouncer is not None, "the job started no PgBouncer"
            assert services.pgbouncer.logins(combination.package_name) > 0, (
                services.pgbouncer.log_tail()
            )
            # The tests that watch the server's own sessions ran direct elsewhere, not here.
            assert " deselected" in results["make test"].stdout
        database_env = {
            **environments.environment(combination.dependency_set),
            **map_service_urls(job, postgres, combination.package_name, services.pgbouncer),
            **production_tls,
        }

    assert list(results) == job.commands
    check = results["make check-migrations"]
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    tests = results["make test"].stdout
    assert re.search(r"\d+ passed", tests)
    assert " failed" not in tests and " skipped" not in tests
    # Beyond the workflow: every migration can be undone.
    run(["alembic", "downgrade", "base"], project, database_env)


@pytest.mark.parametrize(
    "combination",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.dependency_set))
        for c in LINTED_ONLY
    ],
)
def test_every_other_combination_passes_lint_and_types(
    combination: Combination,
    rendered: Callable[[Combination], Path],
    tmp_path: Path,
    environments: ProjectEnvironments,
) -> None:
    """What the fully checked set does not run: ruff and mypy --strict on the rendered code.

    On a copy of the shared render: the sync writes uv.lock, and installs the project, which
    mypy must find as this project (its replica twin has the same package name).
    """
    project = Path(shutil.copytree(rendered(combination), tmp_path / combination.id))
    env = environments.sync(project, combination.dependency_set)

    run(["ruff", "check", "."], project, env)
    run(["ruff", "format", "--check", "."], project, env)
    run(["mypy"], project, env)


def test_the_suites_shared_renders_equal_a_users_render(tmp_path: Path) -> None:
    """The every-combination tests render from a snapshot, sharing compiled templates."""
    combination = next(
        c
        for c in COMBINATIONS
        if c.read_replica
        and c.include_kubernetes
        and c.pooler != "none"
        and c.observability != "none"
    )
    snapshot = template_snapshot(tmp_path / "template")
    # Compiled templates from another combination's render first: a cache hit must not leak.
    render(tmp_path / "other", replace(combination, read_replica=False).answers, snapshot=snapshot)
    shared = rendered_files(render(tmp_path / "shared", combination.answers, snapshot=snapshot))
    with mock.patch.object(rendering, "_compile_once", rendering.jinja2_compile):
        users = rendered_files(render(tmp_path / "user", combination.answers))

    answers = ".copier-answers.yml"
    assert {name: text for name, text in shared.items() if name != answers} == {
        name: text for name, text in users.items() if name != answers
    }
    where = {"_commit", "_src_path"}
    assert {k: v for k, v in yaml.safe_load(shared[answers]).items() if k not in where} == {
        k: v for k, v in yaml.safe_load(users[answers]).items() if k not in where
    }


@pytest.mark.xdist_group("every-combination")
@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.id)
def test_rendered_files_have_no_template_leftovers(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    files = rendered_files(rendered(combination))

    for name, text in files.items():
        text_outside_github_expressions = GITHUB_EXPRESSION.sub("", text)
        # Openers only: "}}" legitimately closes nested dict literals in Python.
        for leftover in ("{{", "{%", "{#"):
            assert leftover not in text_outside_github_expressions, f"{leftover} in {name}"
        assert "\n\n\n\n" not in text, f"a run of blank lines in {name}"
        assert not re.search(r"[ \t]+$", text, re.MULTILINE), f"trailing whitespace in {name}"
        if text:
            assert text.endswith("\n") and not text.endswith("\n\n"), f"bad ending in {name}"


@pytest.mark.xdist_group("every-combination")
@pytest.mark.parametrize(
    "combination", [c for c in COMBINATIONS if not c.include_docker], ids=lambda c: c.id
)
def test_without_docker_only_the_container_files_are_left_out(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    with_docker = rendered_files(rendered(replace(combination, include_docker=True)))
    without_docker = rendered_files(rendered(combination))

    assert set(with_docker) - set(without_docker) == CONTAINER_FILES
    for name, text in without_docker.items():
        if name.endswith(".py") or name.startswith(("src/", "tests/", "migrations/")):
            assert text == with_docker[name], f"{name} differs without Docker"


@pytest.mark.xdist_group("every-combination")
@pytest.mark.parametrize(
    "combination", [c for c in COMBINATIONS if c.include_kubernetes], ids=lambda c: c.id
)
def test_kubernetes_adds_its_manifests_and_changes_no_code(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    with_kubernetes = rendered_files(rendered(combination))
    without = rendered_files(rendered(code_twin(combination)))

    added = set(with_kubernetes) - set(without)
    assert added and all(name.startswith("deploy/kubernetes/") for name in added), added
    changed = {name for name in without if with_kubernetes[name] != without[name]}
    assert changed == {".copier-answers.yml", "Makefile", "README.md", "pyproject.toml"}


@pytest.mark.xdist_group("sync-psycopg-sqlalchemy")
def test_longest_names_and_descriptions_still_pass_lint_and_types(
    tmp_path: Path, environments: ProjectEnvironments
) -> None:
    combination = Combination(
        "sync", "psycopg", "sqlalchemy", {"deployment": "managed", "cloud_provider": "aws"}
    )
    answers = {
        **combination.answers,
        "project_name": "A Service With A Name That Is Exactly Sixty Characters Long!",
        "package_name": "a_package_named_thirty_chars_x",
        "description": "A long description, " * 15 + "that wraps.",
    }
    project = render(tmp_path / "long", answers)
    env = environments.sync(project, combination.dependency_set)

    run(["ruff", "check", "."], project, env)
    run(["ruff", "format", "--check", "."], project, env)
    run(["mypy"], project, env)
