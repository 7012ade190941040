"""The rendered CI workflow is valid, pinned, and runs the project's own commands.

That its job passes is proven by running it: see the full check in test_render_matrix.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rendering import Combination, all_combinations, run
from workflow import DOCKER_STEPS, GITHUB_ONLY_ACTIONS, PGBOUNCER_PORT, read_job

COMBINATIONS = list(all_combinations())
# The workflows come in two variants: straight to the service, or through PgBouncer.
VARIANTS = [
    COMBINATIONS[0],
    next(c for c in COMBINATIONS if c.pooler != "none"),
]
WORKFLOWS = Path(".github") / "workflows"
WORKFLOW = WORKFLOWS / "ci.yml"
# A full commit SHA (a tag can be moved to other code), and the release it is, for people.
PINNED = re.compile(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$")

every_combination = pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.id)
pytestmark = pytest.mark.xdist_group("every-combination")


def check_prerequisites(makefile: Path) -> list[str]:
    match = re.search(r"^check:([^#\n]*)", makefile.read_text(), re.MULTILINE)
    assert match, f"no check target in {makefile}"
    return match.group(1).split()


@every_combination
def test_every_combination_has_the_same_workflows(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    """So that linting one combination's workflows per variant lints them all."""
    variant = VARIANTS[0] if combination.pooler == "none" else VARIANTS[1]
    reference, project = rendered(variant), rendered(combination)

    for name in ("ci.yml", "security.yml"):
        workflow = (project / WORKFLOWS / name).read_text()
        assert workflow == (reference / WORKFLOWS / name).read_text(), name


@pytest.mark.parametrize("combination", VARIANTS, ids=lambda c: c.id)
def test_actionlint_finds_nothing(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is a dev dependency: run `uv sync`"
    project = rendered(combination)
    workflows = sorted(str(path.relative_to(project)) for path in (project / WORKFLOWS).iterdir())
    result = run([actionlint, "-no-color", "-oneline", *workflows], project, timeout=60)

    assert workflows == [str(WORKFLOWS / "ci.yml"), str(WORKFLOWS / "security.yml")]
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("combination", VARIANTS, ids=lambda c: c.id)
def test_zizmor_finds_nothing_in_the_workflows(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    zizmor = shutil.which("zizmor")
    assert zizmor, "zizmor is a dev dependency: run `uv sync`"
    # Offline: the audits that ask GitHub's API need a token and the network.
    result = run(
        [zizmor, "--offline", "--no-progress", str(WORKFLOWS)], rendered(combination), timeout=60
    )

    assert "No findings to report" in result.stdout + result.stderr, result.stdout


@pytest.mark.parametrize("combination", VARIANTS, ids=lambda c: c.id)
def test_every_action_is_pinned_to_a_commit(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    for workflow in sorted((rendered(combination) / WORKFLOWS).iterdir()):
        uses = re.findall(r"uses:\s*(\S+.*)", workflow.read_text())

        assert uses, workflow.name
        for line in uses:
            assert PINNED.search(line), f"{workflow.name}: not pinned to a commit: {line}"


@every_combination
def test_the_job_runs_setup_then_exactly_what_make_check_runs(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    job = read_job(project / WORKFLOW)
    docker_steps = [step.name for step in job.steps if step.run and "docker " in step.run]

    # Behind a pooler, PgBouncer starts before anything else runs (see workflow.DOCKER_STEPS).
    assert docker_steps == ([] if combination.pooler == "none" else list(DOCKER_STEPS))
    if docker_steps:
        assert "docker " in job.commands[0]
    assert [command for command in job.commands if "docker " not in command] == [
        "make setup",
        *(f"make {target}" for target in check_prerequisites(project / "Makefile")),
    ]
    assert check_prerequisites(project / "Makefile") == [
        "lint",
        "migrate",
        "check-migrations",
        "test",
    ]
    assert [step.action for step in job.steps if step.uses] == list(GITHUB_ONLY_ACTIONS)


@every_combination
def test_setup_uv_caches_and_the_tests_use_the_healthy_service(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    workflow = (rendered(combination) / WORKFLOW).read_text()
    job = read_job(rendered(combination) / WORKFLOW)
    service = job.postgres
    service_url = (
        f"postgresql://{service.user}:{service.password}@localhost:{service.host_port}/"
        f"{service.database}"
    )

    assert re.search(r"setup-uv@\S+(?: # \S+)?\s+with:\s+enable-cache: true", workflow)
    if combination.pooler == "none":
        assert job.env["TEST_DATABASE_URL"] == service_url
        assert job.env["DATABASE_URL"] == service_url
    else:
        # Through the job's PgBouncer, which test_render_matrix runs from pgbouncer/.
        pooled_url = service_url.replace(f":{service.host_port}/", f":{PGBOUNCER_PORT}/")
        assert job.env["TEST_DATABASE_URL"] == job.env["DATABASE_URL"] == pooled_url
        assert job.env["TEST_DATABASE_DIRECT_URL"] == service_url
        assert job.env["DATABASE_DIRECT_URL"] == service_url
    assert f'--health-cmd "pg_isready -U {service.user}"' in workflow
    assert "timeout-minutes:" in workflow
