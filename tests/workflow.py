"""Run a rendered GitHub Actions job here, step by step, the way a hosted runner would.

GitHub's runners are out of reach, so the job runs on this machine: its PostgreSQL service
becomes a database (same user, password and name pattern) on a local cluster, and its `run:`
steps execute in order, in the runner's shell, with the job's and each step's `env`. Where a
hosted runner and this machine differ is written down once, in this module:

- GITHUB_ONLY_ACTIONS: the `uses:` steps and why nothing needs to happen for them here;
- DOCKER_STEPS: the `run:` steps that need a Docker engine (none runs here), and what runs
  in their place;
- the service's host and port in the job's env become the local cluster's (map_service_urls),
  and the pooler's port becomes the local PgBouncer's;
- uv installs into the environment the caller names (`UV_PROJECT_ENVIRONMENT`), so projects
  with the same dependencies share one; the steps themselves run exactly as written.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faults.pgbouncer import PgBouncer
from rendering import run

# What the hosted runner's actions do, and why this machine needs nothing for them.
GITHUB_ONLY_ACTIONS = {
    "actions/checkout": "the rendered project is the working directory",
    "astral-sh/setup-uv": "uv is on PATH (installed by .ci/run); its cache is UV_CACHE_DIR",
}
# `run:` steps that build and start an image, and what runs here instead.
DOCKER_STEPS = {
    "Start PgBouncer": (
        "Debian's PgBouncer, the package pgbouncer/Dockerfile installs, runs that folder's"
        " pgbouncer.ini and userlist.txt, with the host `db` and port 6432 made local ones"
    ),
}
PGBOUNCER_PORT = 6432
# A `run:` step without `shell:` on an Ubuntu runner runs as `bash -e {0}`.
RUNNER_SHELL = ("bash", "-e", "-c")
STEP_TIMEOUT_SECONDS = 600


@dataclass
class LocalServices:
    """What DOCKER_STEPS started; it stays up until `stack` closes."""

    stack: ExitStack
    pgbouncer: PgBouncer | None = None


@dataclass(frozen=True)
class Step:
    name: str
    uses: str | None = None
    run: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str | None:
        return self.uses.partition("@")[0] if self.uses else None


@dataclass(frozen=True)
class PostgresService:
    user: str
    password: str
    database: str
    host_port: int


@dataclass(frozen=True)
class Job:
    env: Mapping[str, str]
    steps: tuple[Step, ...]
    postgres: PostgresService

    @property
    def commands(self) -> list[str]:
        return [step.run.strip() for step in self.steps if step.run]


def read_job(workflow: Path) -> Job:
    """The workflow's only job, with its PostgreSQL service."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    assert len(jobs) == 1, f"expected one job in {workflow}, found {sorted(jobs)}"
    (job,) = jobs.values()
    service = job["services"]["postgres"]
    host_port, _, container_port = str(service["ports"][0]).partition(":")
    assert container_port == "5432", f"the service must publish PostgreSQL's port: {service}"
    steps = tuple(
        Step(
            name=step.get("name") or step.get("uses") or step["run"],
            uses=step.get("uses"),
            run=step.get("run"),
            env={key: str(value) for key, value in (step.get("env") or {}).items()},
        )
        for step in job["steps"]
    )
    return Job(
        env={key: str(value) for key, value in (job.get("env") or {}).items()},
        steps=steps,
        postgres=PostgresService(
            user=service["env"]["POSTGRES_USER"],
            password=service["env"]["POSTGRES_PASSWORD"],
            database=service["env"]["POSTGRES_DB"],
            host_port=int(host_port),
        ),
    )


def map_service_urls(
    job: Job, cluster: Any, database: str, pgbouncer: PgBouncer | None = None
) -> dict[str, str]:
    """The job's env with every URL of the service pointing at `database` on the cluster,
    and with every URL of the pooler's port at the local PgBouncer, once it runs."""
    service = job.postgres
    on_runner = f"@(?:localhost|127\\.0\\.0\\.1):%d/{re.escape(service.database)}\\b"
    ports = {service.host_port: cluster.port}
    if pgbouncer is not None:
        ports[PGBOUNCER_PORT] = pgbouncer.port
    env = dict(job.env)
    for runner_port, local_port in ports.items():
        here = f"@{cluster.host}:{local_port}/{database}"
        env = {name: re.sub(on_runner % runner_port, here, value) for name, value in env.items()}
    return env


def provide_service_database(job: Job, cluster: Any, database: str) -> None:
    """Create the service's user (unless it is the cluster's superuser) and a database it owns."""
    service = job.postgres
    superuser = cluster.url().split("://", 1)[1].split("@", 1)[0]
    if f"{service.user}:{service.password}" != superuser:
        password = service.password.replace("'", "''")
        cluster.execute(
            "DO $$ BEGIN "
            f"CREATE ROLE \"{service.user}\" LOGIN PASSWORD '{password}'; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    cluster.execute(f'CREATE DATABASE "{database}" OWNER "{service.user}"')


def run_job(
    job: Job,
    project: Path,
    *,
    cluster: Any,
    database: str,
    environment: Mapping[str, str],
    services: LocalServices,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every step in order; fail on the first failing step with its whole output.

    `environment` holds this machine's own variables (which uv environment to use);
    what DOCKER_STEPS start is kept in `services`; `overrides` replace job
    variables on purpose, and the caller says why.
    """
    provide_service_database(job, cluster, database)
    job_env = map_service_urls(job, cluster, database)
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for step in job.steps:
        if step.uses is not None:
            assert step.action in GITHUB_ONLY_ACTIONS, f"no local equivalent for {step.uses}"
            continue
        assert step.run is not None, f"step {step.name!r} neither uses an action nor runs"
        if "docker " in step.run:
            assert step.name in DOCKER_STEPS, f"no local equivalent for {step.run!r}"
            assert f"--publish {PGBOUNCER_PORT}:6432 pgbouncer" in step.run, step.run
            services.pgbouncer = services.stack.enter_context(
                PgBouncer(cluster, rendered_config=project / "pgbouncer")
            )
            job_env = map_service_urls(job, cluster, database, services.pgbouncer)
            results[step.run.strip()] = subprocess.CompletedProcess(step.run, 0, "", "")
            continue
        env = {**environment, **job_env, **step.env, **(overrides or {})}
        results[step.run.strip()] = run(
            [*RUNNER_SHELL, step.run], project, env, timeout=STEP_TIMEOUT_SECONDS
        )
    return results
