"""Render each stack's project with the copier CLI, install it, migrate and seed its database,
and time its own test suite."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPOSITORY_ROOT
from bench.stacks import REFERENCE_EXTRAS, Stack
from rendering import ProjectEnvironments, run

SEED_ITEMS = 1000
SUITE_TIMEOUT_SECONDS = 600


@dataclass
class Project:
    stack: Stack
    path: Path
    # The project's virtual environment: PATH, VIRTUAL_ENV and friends.
    env: dict[str, str]
    copier_seconds: float
    install_seconds: float
    suite_seconds: float | None = None
    suite_result: str = ""


def render_and_install(stack: Stack, workdir: Path, environments: ProjectEnvironments) -> Project:
    combination = stack.combination
    destination = workdir / "projects" / stack.project_key
    data = [f"--data={key}={value}" for key, value in combination.answers.items()]
    started = time.perf_counter()
    # The command users run; it renders the template's last commit (HEAD).
    run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref=HEAD",
            *data,
            str(REPOSITORY_ROOT),
            str(destination),
        ],
        workdir,
    )
    copier_seconds = time.perf_counter() - started

    started = time.perf_counter()
    env = environments.sync(destination, combination.dependency_set)
    if extras := REFERENCE_EXTRAS.get(stack.name):
        run(["uv", "pip", "install", "--quiet", *extras], destination, env)
    install_seconds = time.perf_counter() - started
    return Project(stack, destination, env, copier_seconds, install_seconds)


def migrate_and_seed(project: Project, cluster: Any, database: str) -> str:
    """Create the stack's database with the project's own migrations; return its libpq URL."""
    cluster.create_database(database)
    url = cluster.url(database) + "?sslmode=require"
    run(["alembic", "upgrade", "head"], project.path, {**project.env, "DATABASE_URL": url})
    cluster.execute(
        f"INSERT INTO items (name) SELECT 'seed-' || n FROM generate_series(1, {SEED_ITEMS}) AS n",
        database,
    )
    return url


def time_test_suite(project: Project, cluster: Any, database: str) -> None:
    """Run the project's own tests against the bench's cluster, as CI would against a service."""
    url = cluster.create_database(database) + "?sslmode=require"
    env = {**project.env, "TEST_DATABASE_URL": url, "DATABASE_URL": url}
    started = time.perf_counter()
    result = run(
        ["pytest", "-q", "-p", "no:cacheprovider"], project.path, env, SUITE_TIMEOUT_SECONDS
    )
    project.suite_seconds = time.perf_counter() - started
    summary = re.search(r"\d+ passed[^\n]*", result.stdout)
    project.suite_result = summary.group(0).split(" in ")[0] if summary else "?"


LIBRARIES = (
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "sqlmodel",
    "uvicorn",
    "uvloop",
    "httptools",
    "asyncpg",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "psycopg2-binary",
)


def library_versions(project: Project, names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Versions installed in the project's environment (those not installed are left out)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "found = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(found))"
    )
    result = run(["python", "-c", script, *names], project.path, project.env)
    versions: dict[str, str] = json.loads(result.stdout)
    return versions
