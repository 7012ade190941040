"""A real PgBouncer in transaction mode (Debian's `pgbouncer`), as Neon's pooled endpoint is.

It runs as the `postgres` OS user when the tests run as root (it refuses root), on a free port,
with TLS toward the clients (a self-signed certificate) and toward the server, and SCRAM on both
sides. PgBouncer 1.18 cannot do SCRAM channel binding, so that hop uses channel_binding=prefer.
"""

from __future__ import annotations

import configparser
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trustme

from rendering import free_port

START_TIMEOUT_SECONDS = 15.0
# Neon sizes its pooler's server pool at 0.9 x max_connections: 90 at 0.25 CU (104).
POOL_SIZE = 90
INSTALL_HINT = "PgBouncer is not installed: `apt-get install pgbouncer` (.ci/run does it)"


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/sbin")


# PgBouncer 1.21 or later carries each client's prepared statements over to the server
# connection that runs its transaction (max_prepared_statements). Debian 12 has 1.18, so
# .ci/run builds Debian 13's 1.24.1 from source into this folder (PGBOUNCER_1_21 overrides).
PREPARED_STATEMENTS_PGBOUNCER = "/usr/local/lib/pgbouncer-1.24.1/bin/pgbouncer"


def pgbouncer_keeping_prepared_statements() -> str:
    """A PgBouncer of 1.21 or later; RuntimeError saying how to get one when there is none."""
    executable = os.environ.get("PGBOUNCER_1_21", PREPARED_STATEMENTS_PGBOUNCER)
    try:
        version = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError) as error:
        raise RuntimeError(
            f"no PgBouncer 1.21 or later at {executable} ({error}): run .ci/run, which builds "
            "one, or set PGBOUNCER_1_21 to its executable"
        ) from None
    if tuple(int(part) for part in version.split(".")[:2]) < (1, 21):
        raise RuntimeError(
            f"{executable} is PgBouncer {version}: max_prepared_statements needs 1.21"
        )
    return executable


class PgBouncer:
    """Transaction pooling in front of a LocalPostgres, for as long as the context lasts."""

    def __init__(
        self,
        postgres: Any,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
        rendered_config: Path | None = None,
        executable: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`rendered_config`: a project's pgbouncer/ folder, run as written but for its paths,
        ports and database host (see `_write_rendered_files`); plain TCP, as in that folder.
        `executable`: another PgBouncer than Debian's; `settings`: more lines of [pgbouncer]."""
        executable = executable or find_pgbouncer()
        if executable is None:
            raise RuntimeError(INSTALL_HINT)
        self._executable = executable
        self._settings = dict(settings or {})
        self._postgres = postgres
        self._dir = Path()
        self._listen = listen_addresses
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self._rendered_config = rendered_config

    def url(self, database: str, host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres:postgres@{host}:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        return self._dir / "pgbouncer.log"

    def __enter__(self) -> PgBouncer:
        # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories.
        self._dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        if self._rendered_config is not None:
            self._write_rendered_files(self._rendered_config)
        else:
            self._write_files()
        self._own_files()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [self._executable, str(self._dir / "pgbouncer.ini")],
                cwd=self._dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self._user.pw_uid if self._user else None,
                group=self._user.pw_gid if self._user else None,
                extra_groups=[] if self._user else None,
            )
        try:
            self._wait_until_listening()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def clients(self, application_name: str) -> int:
        """Client connections of one application, from PgBouncer's admin console."""
        rows = self.admin("SHOW CLIENTS")
        return sum(1 for row in rows if row["application_name"] == application_name)

    def stats(self, database: str) -> dict[str, str]:
        """SHOW STATS for one database: totals since PgBouncer started."""
        return next(row for row in self.admin("SHOW STATS") if row["database"] == database)

    def admin(self, command: str) -> list[dict[str, str]]:
        """A command on PgBouncer's admin console, as rows of {column: value}."""
        result = subprocess.run(
            [
                str(self._postgres.pg_bin_dir / "psql"),
                "-X",
                "-A",
                "-F",
                "|",
                "-c",
                command,
                f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=postgres sslmode=require",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": "postgres"},
            timeout=30,
            check=True,
        )
        header, *rows = result.stdout.splitlines()
        names = header.split("|")
        return [dict(zip(names, row.split("|"), strict=True)) for row in rows if "|" in row]

    def _write_files(self) -> None:
        # The apps encrypt without verifying (sslmode=require), so any certificate will do.
        certificate = trustme.CA().issue_cert("127.0.0.1")
        certificate.cert_chain_pems[0].write_to_path(str(self._dir / "client.crt"))
        certificate.private_key_pem.write_to_path(str(self._dir / "client.key"))
        (self._dir / "userlist.txt").write_text('"postgres" "postgres"\n')
        (self._dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self._postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {','.join(self._listen)}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {POOL_SIZE}\n"
            "max_client_conn = 2000\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self._dir / 'userlist.txt'}\n"
            "admin_users = postgres\n"
            "client_tls_sslmode = require\n"
            f"client_tls_cert_file = {self._dir / 'client.crt'}\n"
            f"client_tls_key_file = {self._dir / 'client.key'}\n"
            "server_tls_sslmode = require\n"
            # After a failed server login PgBouncer waits this long (default 15 s) before the
            # next try: short, so a restart's figures measure the app rather than this back-off.
            "server_login_retry = 0.2\n"
            + "".join(f"{name} = {value}\n" for name, value in self._settings.items())
        )

    def _write_rendered_files(self, folder: Path) -> None:
        """The folder's settings as written; only where it runs differs from its image."""
        config = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",))
        config.optionxform = str  # type: ignore[assignment,method-assign]
        config.read(folder / "pgbouncer.ini")
        for name, connection in config["databases"].items():
            config["databases"][name] = connection.replace(
                "host=db port=5432", f"host=127.0.0.1 port={self._postgres.port}"
            )
            assert config["databases"][name] != connection, f"no `db` host in {connection!r}"
        settings = config["pgbouncer"]
        assert settings["auth_file"] == "/etc/pgbouncer/userlist.txt", settings["auth_file"]
        settings["auth_file"] = str(self._dir / "userlist.txt")
        settings["listen_addr"] = ",".join(self._listen)
        settings["listen_port"] = str(self.port)
        shutil.copyfile(folder / "userlist.txt", self._dir / "userlist.txt")
        with (self._dir / "pgbouncer.ini").open("w") as ini:
            config.write(ini)

    def _own_files(self) -> None:
        for path in (self._dir, *self._dir.iterdir()):
            if self._user is not None:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
            if path.is_file():
                path.chmod(0o600)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{self.log_tail()}")
            try:
                socket.create_connection((self._listen[0], self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer not listening after {START_TIMEOUT_SECONDS} s")

    def logins(self, database: str) -> int:
        """Client connections to `database` so far: PgBouncer logs each one (log_connections)."""
        text = self.log_file.read_text(errors="replace")
        return text.count(f"login attempt: db={database} ")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)
