"""Render the template the way users do, and run the rendered project's own tools.

Every render goes through copier's public API with `unsafe=False`: a template that needed
`--trust` would fail here. Rendered projects with the same dependencies share one virtual
environment (and one mypy cache), so checking dozens of projects costs little more than one.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import copier
import jinja2
import jinja2.nodes
from copier import Settings

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent

DRIVERS_BY_CONCURRENCY = {"async": ("asyncpg", "psycopg"), "sync": ("psycopg", "psycopg2")}
ORMS = ("sqlmodel", "sqlalchemy")
DEPLOYMENTS: tuple[dict[str, str], ...] = (
    {"deployment": "neon", "neon_endpoint": "pooled"},
    {"deployment": "neon", "neon_endpoint": "direct"},
    {"deployment": "managed", "cloud_provider": "aws"},
    {"deployment": "managed", "cloud_provider": "gcp"},
    {"deployment": "managed", "cloud_provider": "azure"},
    {"deployment": "managed", "cloud_provider": "other"},
    # The pooler question, each choice with the provider it usually goes with: the provider
    # changes only default values (pool_recycle, the client limit), which the others cover.
    {"deployment": "managed", "cloud_provider": "azure", "pooler": "pgbouncer"},
    {"deployment": "managed", "cloud_provider": "aws", "pooler": "rds_proxy"},
    {"deployment": "managed", "cloud_provider": "other", "pooler": "supavisor"},
)


@dataclass(frozen=True)
class Combination:
    """One valid set of answers to the questions that shape the rendered code."""

    concurrency: str
    db_driver: str
    orm: str
    deployment: Mapping[str, str]
    include_docker: bool = True
    read_replica: bool = False
    # Asked only with Docker: the manifests deploy the image it builds.
    include_kubernetes: bool = False
    observability: str = "none"

    @property
    def target(self) -> str:
        return self.deployment.get("neon_endpoint") or self.deployment["cloud_provider"]

    @property
    def pooler(self) -> str:
        """The pooler question's answer; Neon's pooled endpoint is its own target."""
        return self.deployment.get("pooler", "none")

    @property
    def id(self) -> str:
        docker = "" if self.include_docker else "-nodocker"
        replica = "-replica" if self.read_replica else ""
        kubernetes = "-k8s" if self.include_kubernetes else ""
        pooler = "" if self.pooler == "none" else "-" + self.pooler.replace("_", "")
        observability = "" if self.observability == "none" else "-" + self.observability_short
        return (
            f"{self.concurrency}-{self.db_driver}-{self.orm}-{self.target}{pooler}"
            f"{replica}{docker}{kubernetes}{observability}"
        )

    @property
    def observability_short(self) -> str:
        return {"prometheus": "prom", "opentelemetry": "otel"}.get(self.observability, "")

    @property
    def dependency_set(self) -> str:
        """Projects with equal dependency sets can share a virtual environment."""
        observability = "" if self.observability == "none" else "-" + self.observability
        return f"{self.concurrency}-{self.db_driver}-{self.orm}{observability}"

    @property
    def answers(self) -> dict[str, Any]:
        short = {"asyncpg": "apg", "psycopg": "pg3", "psycopg2": "pg2", "sqlmodel": "sm"}
        parts = (self.concurrency, self.db_driver, self.orm, self.target)
        name = "Svc " + " ".join(short.get(part, part[:2]) for part in parts)
        if self.pooler != "none":
            name += " " + self.pooler[:3]
        if self.observability != "none":
            name += " " + self.observability_short
        return {
            "project_name": name,
            "concurrency": self.concurrency,
            "db_driver": self.db_driver,
            "orm": self.orm,
            "include_docker": self.include_docker,
            "read_replica": self.read_replica,
            **({"include_kubernetes": self.include_kubernetes} if self.include_docker else {}),
            "observability": self.observability,
            **self.deployment,
        }

    @property
    def package_name(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.answers["project_name"].lower())


OBSERVABILITY = ("none", "prometheus", "opentelemetry")


def all_combinations() -> Iterator[Combination]:
    for concurrency, drivers in DRIVERS_BY_CONCURRENCY.items():
        for (
            driver,
            orm,
            deployment,
            docker,
            replica,
            kubernetes,
            observability,
        ) in itertools.product(
            drivers,
            ORMS,
            DEPLOYMENTS,
            (True, False),
            (False, True),
            (False, True),
            OBSERVABILITY,
        ):
            if kubernetes and not docker:
                continue
            yield Combination(
                concurrency, driver, orm, deployment, docker, replica, kubernetes, observability
            )


_compiled: dict[tuple[Any, ...], Any] = {}
jinja2_compile = jinja2.Environment.compile


def _compile_once(
    environment: jinja2.Environment,
    source: str | jinja2.nodes.Template,
    name: str | None = None,
    filename: str | None = None,
    raw: bool = False,
    defer_init: bool = False,
) -> Any:
    """Environment.compile, remembered: a pure function of the source and the options below."""
    if not isinstance(source, str) or callable(environment.autoescape):
        return jinja2_compile(environment, source, name, filename, raw, defer_init)
    options = tuple(
        getattr(environment, option)
        for option in (
            "block_start_string", "block_end_string", "variable_start_string",
            "variable_end_string", "comment_start_string", "comment_end_string",
            "line_statement_prefix", "line_comment_prefix", "trim_blocks", "lstrip_blocks",
            "newline_sequence", "keep_trailing_newline", "optimized", "autoescape", "is_async",
        )
    )  # fmt: skip
    # Not the filename: a render's temporary clone, named only in tracebacks.
    key = (type(environment), options, tuple(sorted(environment.extensions)), source, name)
    key += (raw, defer_init)
    if key not in _compiled:
        _compiled[key] = jinja2_compile(environment, source, name, filename, raw, defer_init)
    return _compiled[key]


def render(
    destination: Path, answers: Mapping[str, Any], *, snapshot: Path | None = None, **options: Any
) -> Path:
    """Render the working tree of the template (uncommitted changes included).

    From the repository, as users do, copier clones it at HEAD for each render. A `snapshot`
    (template_snapshot()) renders the same files without git: the every-combination tests
    render over a thousand projects that way. Either way, renders share compiled templates:
    copier makes a new Jinja environment for each render and compiles every template in it
    again, half a render's time. test_render_matrix.py checks that the output is the same.
    """
    if snapshot is None:
        options.setdefault("vcs_ref", "HEAD")
    with warnings.catch_warnings(), mock.patch.object(jinja2.Environment, "compile", _compile_once):
        warnings.simplefilter("ignore")  # DirtyLocalWarning for uncommitted template changes
        copier.run_copy(
            str(snapshot or TEMPLATE_ROOT),
            destination,
            data=dict(answers),
            defaults=True,
            unsafe=False,
            quiet=True,
            settings=Settings(),
            **options,
        )
    return destination


def template_snapshot(destination: Path) -> Path:
    """The template's working tree as plain files: what git would clone, uncommitted changes
    included, untracked ignored files left out."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (TEMPLATE_ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / name, destination / name)
    return destination


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(
    command: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail with its whole output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(command)}` exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


class ProjectEnvironments:
    """One virtual environment per dependency set, shared by the projects that need it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def environment(self, dependency_set: str) -> dict[str, str]:
        """The variables that make uv, the tools and mypy's cache use the shared environment."""
        venv = self.root / dependency_set
        return {
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "VIRTUAL_ENV": str(venv),
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "MYPY_CACHE_DIR": str(self.root / f"{dependency_set}.mypy_cache"),
            "UV_PYTHON_DOWNLOADS": "never",
        }

    def sync(self, project: Path, dependency_set: str) -> dict[str, str]:
        """Install the project (editable) and its dev tools; return the environment to use."""
        env = self.environment(dependency_set)
        # --inexact keeps the other projects already installed in this environment.
        run(["uv", "sync", "--inexact", "--quiet"], project, env)
        return env
