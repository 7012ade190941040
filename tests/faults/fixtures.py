"""Fixtures shared by the resilience tests (a pytest plugin; tests/conftest.py loads it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rendering import ProjectEnvironments

from .project import Case
from .serve import Served, served_app


@pytest.fixture(scope="session")
def fault_environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    """One virtual environment per dependency set for every rendered app of this process."""
    return ProjectEnvironments(tmp_path_factory.mktemp("fault-venvs"))


@pytest.fixture(scope="session")
def served(
    request: pytest.FixtureRequest,
    postgres: Any,
    tmp_path_factory: pytest.TempPathFactory,
    fault_environments: ProjectEnvironments,
) -> Iterator[Served]:
    """The app of one case (indirect parameter), shared by the tests of that case."""
    case: Case = request.param
    workdir = tmp_path_factory.mktemp(case.id)
    with served_app(case, postgres, workdir, fault_environments, database=case.database) as app:
        yield app
