"""A rendered (or updated) project's own checks: lint, types, and its tests against PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rendering import ProjectEnvironments, run


def passes_its_own_checks(
    project: Path,
    *,
    dependency_set: str,
    db_driver: str,
    environments: ProjectEnvironments,
    postgres: Any,
    database: str,
) -> str:
    """Run ruff, mypy and the project's tests on the session's TLS cluster; return their output."""
    env = environments.sync(project, dependency_set)
    run(["ruff", "check", "."], project, env)
    run(["ruff", "format", "--check", "."], project, env)
    run(["mypy"], project, env)

    database_url = postgres.create_database(database)
    database_env = {
        **env,
        "TEST_DATABASE_URL": database_url,
        "DB_SSLMODE": "require",
        # asyncpg cannot do channel binding.
        "DB_CHANNEL_BINDING": "prefer" if db_driver == "asyncpg" else "require",
    }
    result = run(["pytest", "-q", "-p", "no:cacheprovider"], project, database_env)
    assert re.search(r"\d+ passed", result.stdout), result.stdout
    assert " failed" not in result.stdout and " skipped" not in result.stdout, result.stdout
    return result.stdout
