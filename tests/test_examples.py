"""examples/*.yml: ready-made answer files for common set-ups, each rendered the way the README
says (`copier copy --defaults --data-file`, no terminal, no `--trust`) and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from project_checks import passes_its_own_checks
from rendering import TEMPLATE_ROOT, ProjectEnvironments, run
from versions import cli

EXAMPLES = sorted((TEMPLATE_ROOT / "examples").glob("*.yml"))
# The others share their answers' code paths with combinations of the render matrix.
FULLY_TESTED = "neon-pooled-async-asyncpg-sqlmodel"
QUESTIONS = {
    name
    for name, question in yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text()).items()
    if not name.startswith("_") and question.get("when") is not False
}


def example_answers(example: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load(example.read_text())
    return answers


def dependency_set(answers: dict[str, Any]) -> str:
    return f"{answers['concurrency']}-{answers['db_driver']}-{answers['orm']}"


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    return ProjectEnvironments(tmp_path_factory.mktemp("venvs"))


def copy_example(example: Path, destination: Path) -> Path:
    data_file = f"--data-file={example}"
    result = cli(
        ["copy", "--defaults", data_file, "--vcs-ref=HEAD", str(TEMPLATE_ROOT), str(destination)]
    )
    assert result.returncode == 0, result.stderr
    return destination


def test_there_are_examples_for_neon_and_for_a_managed_cloud() -> None:
    deployments = {example_answers(example)["deployment"] for example in EXAMPLES}

    assert deployments == {"neon", "managed"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.stem)
def test_every_key_is_a_question_and_the_file_name_says_the_answers(example: Path) -> None:
    answers = example_answers(example)
    # Copier ignores unknown keys in a data file: a typo would silently fall back to a default.
    assert set(answers) <= QUESTIONS
    where = answers.get("neon_endpoint") or answers["cloud_provider"]
    for answer in (where, answers["concurrency"], answers["db_driver"], answers["orm"]):
        assert answer in example.stem.split("-"), f"{example.name} does not say {answer}"


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(e, id=e.stem, marks=pytest.mark.xdist_group(f"example-{e.stem}"))
        for e in EXAMPLES
        if e.stem != FULLY_TESTED
    ],
)
def test_example_renders_from_its_data_file_and_passes_lint_and_types(
    example: Path, tmp_path: Path, environments: ProjectEnvironments
) -> None:
    answers = example_answers(example)
    project = copy_example(example, tmp_path / example.stem)

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: recorded[key] for key in answers} == answers
    env = environments.sync(project, dependency_set(answers))
    run(["ruff", "check", "."], project, env)
    run(["ruff", "format", "--check", "."], project, env)
    run(["mypy"], project, env)


@pytest.mark.slow
@pytest.mark.xdist_group(f"example-{FULLY_TESTED}")
def test_neon_pooled_example_passes_its_tests_against_postgres(
    tmp_path: Path, postgres: Any, environments: ProjectEnvironments
) -> None:
    example = TEMPLATE_ROOT / "examples" / f"{FULLY_TESTED}.yml"
    answers = example_answers(example)
    project = copy_example(example, tmp_path / FULLY_TESTED)

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: recorded[key] for key in answers} == answers
    passes_its_own_checks(
        project,
        dependency_set=dependency_set(answers),
        db_driver=answers["db_driver"],
        environments=environments,
        postgres=postgres,
        database="neon_pooled_example",
    )
