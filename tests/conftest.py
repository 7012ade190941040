"""Shared fixtures: one disposable PostgreSQL for the whole test session."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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
        # CI installs PostgreSQL, so there a missing server is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(local_postgres_module.INSTALL_HINT)
        pytest.skip(local_postgres_module.INSTALL_HINT)
    cluster = local_postgres_module.LocalPostgres(ssl=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
