"""Shared fixtures: one disposable PostgreSQL for the whole test session."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rendering import Combination, ProjectEnvironments, render, template_snapshot

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


EVERY_COMBINATION = "every-combination"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spread the xdist_group("every-combination") tests over the workers by dependency set.

    A combination's tests then share one worker with each other and with its lint test (the
    same group, see test_render_matrix.py): `rendered` renders each combination once.
    """
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        callspec = getattr(item, "callspec", None)
        combination = callspec.params.get("combination") if callspec else None
        if marker and marker.args == (EVERY_COMBINATION,) and isinstance(combination, Combination):
            item.add_marker(pytest.mark.xdist_group(combination.dependency_set), append=False)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Combination], Path]:
    """Render each combination once per worker; tests that share it must not change it.

    Its tests belong to the xdist_group of the combination's dependency set (above), so one
    worker renders each.
    """
    root = tmp_path_factory.mktemp("rendered")
    snapshot = template_snapshot(tmp_path_factory.mktemp("template"))
    projects: dict[str, Path] = {}

    def rendered_project(combination: Combination) -> Path:
        if combination.id not in projects:
            project = render(root / combination.id, combination.answers, snapshot=snapshot)
            projects[combination.id] = project
        return projects[combination.id]

    return rendered_project


@pytest.fixture(scope="session")
def environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    """Shared virtual environments; tests using one belong to its xdist_group(dependency_set)."""
    return ProjectEnvironments(tmp_path_factory.mktemp("venvs"))
