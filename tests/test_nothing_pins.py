"""Behind a pooler, the rendered app's whole test suite issues nothing that pins a connection.

For each stack, a project rendered behind RDS Proxy (the pooler that pins a client for the most
kinds of statement; every pooler choice gets the same driver settings) runs its own suite
against a PostgreSQL that logs every statement with the application_name that sent it. The
app's statements (application_name = the project's APP_NAME) must hold no session state that
would outlive a transaction: test_poolers.PINNING. The migrations (`<APP_NAME>-migrations`)
and the tests' own administration use the direct URL in production, so they are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from pinning import LOGGED_STATEMENT, PINNING

from rendering import Combination, ProjectEnvironments, all_combinations, render, run

# One project behind a pooler per stack (concurrency and driver).
BEHIND_RDS_PROXY = {
    (c.concurrency, c.db_driver): c
    for c in all_combinations()
    if c.pooler == "rds_proxy" and not c.read_replica and not c.include_kubernetes
}
# Each logged line starts with the application_name that sent it.
LOG_LINE_PREFIX = "app=%a| "
APPLICATION = re.compile(r"app=([^|]*)\| ")


@pytest.mark.parametrize(
    "combination",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.dependency_set))
        for c in BEHIND_RDS_PROXY.values()
    ],
)
def test_the_rendered_suite_sends_nothing_that_pins_a_pooled_connection(
    combination: Combination,
    tmp_path: Path,
    local_postgres_module: ModuleType,
    environments: ProjectEnvironments,
) -> None:
    project = render(tmp_path / combination.id, combination.answers)
    env = environments.sync(project, combination.dependency_set)
    settings = {"log_statement": "all", "log_line_prefix": LOG_LINE_PREFIX}
    with local_postgres_module.LocalPostgres(ssl=True, settings=settings) as cluster:
        cluster.execute(f'CREATE DATABASE "{combination.package_name}"')
        tests = run(
            ["pytest", "-q", "-p", "no:cacheprovider"],
            project,
            {**env, "TEST_DATABASE_URL": cluster.url(combination.package_name)},
            timeout=600,
        )
        log = cluster.log_file.read_text(errors="replace").splitlines()

    settings_file = project / "src" / combination.package_name / "settings.py"
    app_name = re.search(r'app_name: str = "(.*)"', settings_file.read_text())[1]  # type: ignore[index]
    sent_by_the_app = [
        match[1]
        for line in log
        if (application := APPLICATION.search(line)) and application[1] == app_name
        if (match := LOGGED_STATEMENT.search(line))
    ]
    assert re.search(r"\d+ passed", tests.stdout), tests.stdout
    assert len(sent_by_the_app) > 1000, f"too few statements of {app_name!r} in the log"
    assert [statement for statement in sent_by_the_app if PINNING.search(statement)] == []
