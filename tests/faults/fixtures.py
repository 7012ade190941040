"""Fixtures shared by the resilience tests (a pytest plugin; tests/conftest.py loads it)."""

from __future__ import annotations

import pytest

from rendering import ProjectEnvironments


@pytest.fixture(scope="session")
def fault_environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    """One virtual environment per dependency set for every rendered app of this process."""
    return ProjectEnvironments(tmp_path_factory.mktemp("fault-venvs"))
