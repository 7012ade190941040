"""Shared fixtures: one disposable PostgreSQL for the whole test session."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rendering import Combination, ProjectEnvironments, render

# The resilience tests' fixtures and their table of measured figures.
pytest_plugins = ["faults.fixtures", "faults.report"]

LOCAL_POSTGRES_PATH = Path(__file__).parent.parent / "template" / "tests" / "local_postgres.py"


@pytest.fixture(scope="session")
def local_postgres_module() -> ModuleType:
    """template/tests/local_postgres.py, loaded by path: it ships inside rendered projects."""
    spec = importlib.util.spec_from_file_location("local_postgres", LOCAL_POSTGRES_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def postgres(local_postgres_module: ModuleType) -> Iterator[Any]:
    """A LocalPostgres with TLS, started once per session (per xdist worker)."""
    if local_postgres_module.find_pg_bin_dir() is None:
        # A failure, not a skip: a skipped test would pass without testing anything.
        pytest.fail(local_postgres_module.INSTALL_HINT)
    cluster = local_postgres_module.LocalPostgres(ssl=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Combination], Path]:
    """Render each combination once per session; tests that share it must not change it.

    Tests using it belong to xdist_group("every-combination"), so one worker renders each.
    """
    root = tmp_path_factory.mktemp("rendered")
    projects: dict[str, Path] = {}

    def rendered_project(combination: Combination) -> Path:
        if combination.id not in projects:
            projects[combination.id] = render(root / combination.id, combination.answers)
        return projects[combination.id]

    return rendered_project


@pytest.fixture(scope="session")
def environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    """Shared virtual environments; tests using one belong to its xdist_group(dependency_set)."""
    return ProjectEnvironments(tmp_path_factory.mktemp("venvs"))
