"""A new user's first minutes: the Makefile's commands on a machine where no database runs.

Docker is made unavailable (a `docker` that cannot reach a daemon comes first on PATH), so
`make db` takes the path every machine has: PostgreSQL's own binaries, in .postgres/.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rendering import Combination, free_port, render, run

SAMPLE = [
    Combination("async", "asyncpg", "sqlmodel", {"deployment": "neon", "neon_endpoint": "pooled"}),
    Combination(
        "sync",
        "psycopg2",
        "sqlalchemy",
        {"deployment": "managed", "cloud_provider": "aws"},
        include_docker=False,
    ),
]
NO_DOCKER = "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"
SERVER_START_SECONDS = 60
# What `make dev` logs for each sample's default answers: 2 instances x 2 workers.
DEV_POOL_LOG = {
    SAMPLE[0].package_name: "database pool: pool_size=20 max_overflow=0 in this process, "
    "sized so that 4 processes (APP_INSTANCES x WEB_CONCURRENCY) use at most 84 of 9997 "
    "available connections, readiness connections included",
    SAMPLE[1].package_name: "database pool: pool_size=22 max_overflow=0 in this process, "
    "sized so that 4 processes (APP_INSTANCES x WEB_CONCURRENCY) use at most 92 of 94 "
    "available connections, readiness connections included",
}
UV_MISSING = re.compile(
    r"Makefile:\d+: \*\*\* uv is not installed: "
    r"see https://docs\.astral\.sh/uv/getting-started/installation/\.  Stop\."
)


def new_user_environment(bin_dir: Path) -> dict[str, str]:
    """This machine's environment without anything that points at a database or a venv.

    PG_BIN_DIR stays: it says where this machine's PostgreSQL binaries are (.ci/run sets it).
    """
    template_venv_bin = str(Path(sys.prefix) / "bin")
    path = [bin_dir, *(p for p in os.environ["PATH"].split(os.pathsep) if p != template_venv_bin)]
    env = {
        key: value
        for key, value in os.environ.items()
        if key == "PG_BIN_DIR"
        or (
            not key.startswith(("PG", "DB_", "UV_PROJECT", "VIRTUAL_ENV", "MYPY"))
            and key not in {"DATABASE_URL", "TEST_DATABASE_URL", "WEB_CONCURRENCY"}
        )
    }
    return {**env, "PATH": os.pathsep.join(map(str, path))}


@pytest.fixture
def new_project(request: pytest.FixtureRequest) -> Iterator[tuple[Path, dict[str, str]]]:
    combination: Combination = request.param
    # As root, PostgreSQL runs as the postgres user, who must reach .postgres/ in the project;
    # pytest's own temporary directories are closed to other users.
    root = Path(tempfile.mkdtemp(prefix="first-minutes-"))
    root.chmod(0o755)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(NO_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    project = render(root / "project", combination.answers)
    env = new_user_environment(bin_dir)
    try:
        yield project, env
    finally:
        subprocess.run(["make", "db-stop"], cwd=project, env=env, timeout=120, check=False)
        shutil.rmtree(root)


def make(project: Path, env: dict[str, str], *targets: str) -> str:
    result = run(["make", *targets], project, env, timeout=600)
    return result.stdout + result.stderr


def wait_for_ready(url: str, server: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"make dev exited {server.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: dict[str, object] = json.load(response)
                return body
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {SERVER_START_SECONDS} s")


def ready_while_serving(command: list[str], log: Path, **popen: Any) -> dict[str, object]:
    """Run a command that serves the app (given PORT=...), answer /health/ready, stop it."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, f"PORT={port}"],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            **popen,
        )
        try:
            return wait_for_ready(f"http://127.0.0.1:{port}/health/ready", server)
        except AssertionError as failed:
            raise AssertionError(f"{failed}; its output:\n{log.read_text()[-3000:]}") from None
        finally:
            # Its process group is gone when it exited on its own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


@pytest.mark.xdist_group("first-minutes")
@pytest.mark.parametrize("new_project", SAMPLE, ids=lambda c: c.id, indirect=True)
def test_setup_db_migrate_test_check_and_dev_work_without_a_running_database(
    new_project: tuple[Path, dict[str, str]], postgres: object
) -> None:
    project, env = new_project

    make(project, env, "setup")
    assert (project / ".venv").is_dir()

    started = make(project, env, "db")
    assert "Docker is not running" in started or "docker" not in (project / "Makefile").read_text()
    url = (project / ".env").read_text().strip().removeprefix("DATABASE_URL=")
    assert f"DATABASE_URL={url}\nwrote DATABASE_URL to .env" in started
    assert url.startswith("postgresql://postgres:postgres@127.0.0.1:")
    assert "/app?sslmode=verify-full&sslrootcert=" in url
    assert ".postgres/" in (project / ".gitignore").read_text().splitlines()
    if os.geteuid() == 0:
        assert (project / ".postgres" / "data").stat().st_uid == pwd.getpwnam("postgres").pw_uid

    assert "Running upgrade  -> 0001" in make(project, env, "migrate")
    # `make check` runs `make test` last.
    checked = make(project, env, "check")
    assert "No new upgrade operations detected" in checked and " passed" in checked
    assert " failed" not in checked

    log = project.parent / "make-dev.log"
    ready = ready_while_serving(["make", "dev"], log, cwd=project, env=env)
    assert ready["status"] == "ok"
    # One process with reload: no `"workers" flag is ignored` warning, the pool logged once.
    served = log.read_text()
    assert "WARNING" not in served
    assert served.count("Started server process") == 1
    package = package_name(project)
    assert f"INFO:     {package}.main: {DEV_POOL_LOG[package]}\n" in served

    # A second `make db` reuses the cluster and leaves .env alone.
    assert ".env already sets this DATABASE_URL" in make(project, env, "db")
    assert (project / ".env").read_text() == f"DATABASE_URL={url}\n"


@pytest.mark.xdist_group("first-minutes")
@pytest.mark.parametrize("new_project", SAMPLE[:1], ids=lambda c: c.id, indirect=True)
def test_db_without_docker_or_postgresql_says_what_to_install(
    new_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    project, env = new_project
    (project / ".env").write_text("# DATABASE_URL=\n")

    result = subprocess.run(
        ["make", "db"],
        cwd=project,
        env={**env, "PG_BIN_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode != 0
    assert "Docker is not running" in result.stdout
    assert "install your distribution's `postgresql` package" in result.stderr
    assert "Or set DATABASE_URL in .env to a server you have." in result.stderr
    assert (project / ".env").read_text() == "# DATABASE_URL=\n"
    assert not (project / ".postgres").exists()


@pytest.mark.xdist_group("first-minutes")
@pytest.mark.parametrize("new_project", SAMPLE[:1], ids=lambda c: c.id, indirect=True)
def test_db_with_docker_running_uses_compose_and_writes_its_url(
    new_project: tuple[Path, dict[str, str]],
) -> None:
    """No engine runs here: a `docker` that records its arguments stands in for a running one."""
    project, env = new_project
    calls = project.parent / "docker-calls"
    docker = Path(env["PATH"].split(os.pathsep)[0]) / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (docker.parent / "python").symlink_to(sys.executable)

    # UV_RUN= runs the helper with `python` from PATH (this suite's, which has python-dotenv),
    # sparing a `uv sync` here.
    output = make(project, env, "db", "UV_RUN=")

    compose_url = "postgresql://app:app@127.0.0.1:5432/app?sslmode=disable&channel_binding=disable"
    assert calls.read_text().splitlines() == ["info", "compose up --detach --wait db"]
    assert f"DATABASE_URL={compose_url}\nwrote DATABASE_URL to .env" in output
    assert (project / ".env").read_text() == f"DATABASE_URL={compose_url}\n"
    assert not (project / ".postgres").exists()


def package_name(project: Path) -> str:
    return next(path.name for path in (project / "src").iterdir() if path.is_dir())


def without_uv(env: dict[str, str]) -> dict[str, str]:
    path = [p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "uv").exists()]
    return {**env, "PATH": os.pathsep.join(path)}


@pytest.mark.xdist_group("first-minutes")
@pytest.mark.parametrize("new_project", SAMPLE[:1], ids=lambda c: c.id, indirect=True)
def test_every_command_without_uv_says_in_one_line_where_to_get_it(
    new_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = new_project
    env = without_uv(env)
    assert shutil.which("uv", path=env["PATH"]) is None

    for target in ("setup", "db", "db-stop", "migrate", "check-migrations", "dev", "serve",
                   "test", "lint", "format", "check"):  # fmt: skip
        result = subprocess.run(
            ["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

        assert result.returncode == 2, target
        assert result.stdout == "", target
        assert UV_MISSING.fullmatch(result.stderr.rstrip("\n")), (target, result.stderr)


BAD_CONFIGURATIONS = {
    "no DATABASE_URL": (
        {},
        "invalid configuration: DATABASE_URL: not set; run `make db` for a local PostgreSQL, "
        "or copy .env.example to .env and set it",
    ),
    "a MySQL URL": (
        {"DATABASE_URL": "mysql://app:secret@127.0.0.1/app"},
        "invalid configuration: DATABASE_URL: must be a PostgreSQL URL, not 'mysql'",
    ),
    "no workers": (
        {"DATABASE_URL": "postgresql://app:secret@127.0.0.1/app", "WEB_CONCURRENCY": "0"},
        "invalid configuration: WEB_CONCURRENCY: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.xdist_group("first-minutes")
@pytest.mark.parametrize("new_project", SAMPLE, ids=lambda c: c.id, indirect=True)
def test_a_bad_configuration_stops_dev_and_serve_with_one_line(
    new_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = new_project
    make(project, env, "setup")

    for case, (variables, expected) in BAD_CONFIGURATIONS.items():
        for target in ("dev", "serve", "migrate"):
            if target == "dev" and "DATABASE_URL" not in variables:
                continue  # `make dev` starts a local database then: the first minutes' test
            result = subprocess.run(
                ["make", target, f"PORT={free_port()}"], cwd=project, env={**env, **variables},
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip

            # `make dev` first runs `make db`, which leaves a DATABASE_URL that is set alone.
            server = "DATABASE_URL names 127.0.0.1: using that server.\n"
            assert result.returncode == 2, (case, target)
            assert result.stdout == (server if target == "dev" else ""), (case, target)
            assert result.stderr.splitlines() == [
                expected,
                f"make: *** [Makefile:{config_line(project)}: config] Error 1",
            ], (case, target)


def config_line(project: Path) -> int:
    """The line of the Makefile's settings check, which make names when it fails."""
    lines = (project / "Makefile").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if ".settings" in line)
