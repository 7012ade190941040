"""Rendered projects for the fault suite: which combinations, and how each is set up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rendering import Combination, ProjectEnvironments, render, run

# One ORM per driver keeps four shared environments while both ORMs are exercised.
DRIVERS = (("async", "asyncpg", "sqlmodel"), ("async", "psycopg", "sqlalchemy"),
           ("sync", "psycopg", "sqlmodel"), ("sync", "psycopg2", "sqlalchemy"))  # fmt: skip
PROFILES: dict[str, dict[str, str]] = {
    "managed": {"deployment": "managed", "cloud_provider": "aws"},
    "neon-pooled": {"deployment": "neon", "neon_endpoint": "pooled"},
    "neon-direct": {"deployment": "neon", "neon_endpoint": "direct"},
    # The pooler question's choices: each runs behind the suite's real PgBouncer.
    "pgbouncer": {"deployment": "managed", "cloud_provider": "azure", "pooler": "pgbouncer"},
    "rds-proxy": {"deployment": "managed", "cloud_provider": "aws", "pooler": "rds_proxy"},
    "supavisor": {"deployment": "managed", "cloud_provider": "other", "pooler": "supavisor"},
    # A pooler's settings, connected straight to the server: its log sees the app's statements.
    "pooler-settings-direct": {
        "deployment": "managed",
        "cloud_provider": "azure",
        "pooler": "pgbouncer",
    },
}
POOLED_PROFILES = ("neon-pooled", "pgbouncer", "rds-proxy", "supavisor")
MANAGED_POOLERS = ("pgbouncer", "rds-proxy", "supavisor")


@dataclass(frozen=True)
class Case:
    """A driver and a target profile: what a fault test renders and runs."""

    combination: Combination
    profile: str

    @property
    def id(self) -> str:
        return f"{self.combination.concurrency}-{self.combination.db_driver}-{self.profile}"

    @property
    def driver(self) -> str:
        return f"{self.combination.db_driver} ({self.combination.concurrency})"

    @property
    def pooled(self) -> bool:
        return self.profile in POOLED_PROFILES

    @property
    def database(self) -> str:
        return self.id.replace("-", "_")


def cases(profiles: tuple[str, ...] = ("managed", "neon-pooled", "neon-direct")) -> Iterator[Case]:
    for concurrency, driver, orm in DRIVERS:
        for profile in profiles:
            yield Case(Combination(concurrency, driver, orm, PROFILES[profile]), profile)


def full_set_cases() -> Iterator[Case]:
    """One case per driver for the full fault set; PgBouncer's profile goes with asyncpg."""
    profiles = {"asyncpg": "neon-pooled", "psycopg2": "managed"}
    for case in cases():
        driver = case.combination.db_driver
        wanted = profiles.get(
            driver, "managed" if case.combination.concurrency == "async" else "neon-direct"
        )
        if case.profile == wanted:
            yield case


def one_per_driver(group: str) -> list[Any]:
    """full_set_cases() as pytest parameters, on one xdist worker that shares their venvs."""
    return [
        pytest.param(case, id=case.id, marks=pytest.mark.xdist_group(group))
        for case in full_set_cases()
    ]


def prepare(
    case: Case, root: Path, environments: ProjectEnvironments
) -> tuple[Path, dict[str, str]]:
    """Render the project and install it; return its directory and environment."""
    project = render(root / case.id, case.combination.answers)
    return project, environments.sync(project, case.combination.dependency_set)


def database_env(
    case: Case, url: str, *, direct_url: str | None = None, **overrides: Any
) -> dict[str, str]:
    """The app's environment: the production TLS settings of its profile, 2 workers, 1 instance."""
    env = {
        "DATABASE_URL": url,
        "DATABASE_DIRECT_URL": direct_url or url,
        "APP_NAME": f"fault-{case.database}"[:63],
        "WEB_CONCURRENCY": "2",
        "APP_INSTANCES": "1",
        # Short, so that stopping an app takes little; long enough for a loaded client to hear
        # `Connection: close` on every connection (test_rolling_restart.py).
        "DRAIN_SECONDS": "1",
        # The throwaway cluster's max_connections (local_postgres.py's default).
        "DB_MAX_CONNECTIONS": "300",
        "LOG_LEVEL": "WARNING",
        # Neon profiles verify certificates against the system's trust store, which these
        # throwaway servers are not in: encrypt only (the rendered tests/test_tls.py verifies).
        "DB_SSLMODE": "require",
    }
    if case.pooled:
        # PgBouncer cannot do SCRAM channel binding; Neon's pooler can. TLS stays required.
        env["DB_CHANNEL_BINDING"] = "prefer"
    return env | {name: str(value) for name, value in overrides.items()}


def migrate(project: Path, env: Mapping[str, str]) -> None:
    run(["alembic", "upgrade", "head"], project, env)
