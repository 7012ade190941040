"""The interactive `copier copy`, driven through a pseudo-terminal of 80 columns as a person would.

Copier validates a question's default before it shows the prompt, so a default that the answers
above make invalid ends the copy with a traceback: every path here must reach its prompts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from terminal import BACKSPACE, CTRL_C, DOWN, Terminal

PROJECT = ("project_name", "project_slug", "package_name", "description")
MANAGED_CAPACITY = ("cloud_provider", "pooler", "worker_count", "app_instances")


def recorded(project: Path) -> dict[str, object]:
    answers: dict[str, object] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers


@pytest.mark.parametrize(
    ("folder", "name", "package"),
    [("orders-service", "Orders Service", "orders_service"), ("2fast", "2fast", "app_2fast")],
)
def test_enter_at_every_prompt_renders_a_project(
    folder: str, name: str, package: str, tmp_path: Path
) -> None:
    terminal = Terminal(tmp_path / folder)

    for question in (*PROJECT, "concurrency", "db_driver", "orm", "deployment"):
        terminal.answer(question)
    for question in (*MANAGED_CAPACITY, "db_max_connections", "read_replica", "observability"):
        terminal.answer(question)
    for question in ("include_docker", "include_kubernetes"):
        terminal.answer(question)

    assert terminal.exit_status() == 0, terminal.text()
    assert f"{name} is ready in {folder}/." in terminal.text()
    assert (tmp_path / folder / "src" / package / "main.py").is_file()
    assert recorded(tmp_path / folder)["db_driver"] == "asyncpg"


def test_a_sync_project_shows_asyncpg_disabled_with_its_reason(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "billing")
    for question in PROJECT:
        terminal.answer(question)
    terminal.answer("concurrency", DOWN)

    terminal.expect("db_driver: ")
    terminal.settle()

    lines = terminal.lines()
    assert "   - asyncpg (async only) (asyncpg works only with concurrency=async)" in lines
    assert " » psycopg 3 (async or sync)" in lines
    terminal.answer("db_driver")
    for question in ("orm", "deployment", *MANAGED_CAPACITY, "db_max_connections"):
        terminal.answer(question)
    terminal.answer("read_replica")
    terminal.answer("observability")
    terminal.answer("include_docker")
    terminal.answer("include_kubernetes")
    assert terminal.exit_status() == 0, terminal.text()
    answers = recorded(tmp_path / "billing")
    assert (answers["concurrency"], answers["db_driver"]) == ("sync", "psycopg")


def test_many_workers_reach_the_max_connections_prompt_with_a_default_that_fits(
    tmp_path: Path,
) -> None:
    terminal = Terminal(tmp_path / "busy")
    for question in (
        *PROJECT,
        "concurrency",
        "db_driver",
        "orm",
        "deployment",
        *MANAGED_CAPACITY[:2],
    ):
        terminal.answer(question)
    terminal.answer("worker_count", BACKSPACE + "24")
    terminal.answer("app_instances")

    # 2 instances x 24 workers x 3 connections (a pool of 2, and readiness's own) + 3 reserved
    # + 3 for admin.
    terminal.expect("db_max_connections: the server's max_connections")
    terminal.settle()
    assert "   150" in terminal.lines()
    terminal.send(BACKSPACE * 3 + "100\r")
    terminal.expect("Validation error for question 'db_max_connections': needs 150 (3 per process)")

    terminal.send(BACKSPACE * 3 + "150\r")
    terminal.answer("read_replica")
    terminal.answer("observability")
    terminal.answer("include_docker")
    terminal.answer("include_kubernetes")
    assert terminal.exit_status() == 0, terminal.text()
    assert recorded(tmp_path / "busy")["db_max_connections"] == 150


def test_pgbouncer_asks_its_client_limit_and_refuses_one_the_fleet_outgrows(
    tmp_path: Path,
) -> None:
    terminal = Terminal(tmp_path / "pooled")
    for question in (*PROJECT, "concurrency", "db_driver", "orm", "deployment", "cloud_provider"):
        terminal.answer(question)
    terminal.answer("pooler", DOWN)
    terminal.answer("worker_count", BACKSPACE + "8")
    terminal.answer("app_instances", BACKSPACE + "10")
    terminal.answer("db_max_connections")
    # PgBouncer's own default (100) is too few for 80 processes: the default fits them.
    terminal.expect("pooler_client_limit: PgBouncer's max_client_conn")
    terminal.expect("243")

    terminal.send(BACKSPACE * 3 + "100\r")
    terminal.expect("Validation error for question 'pooler_client_limit': needs 243: 3 per process")
    terminal.send(BACKSPACE * 3 + "1000\r")
    terminal.answer("read_replica")
    terminal.answer("observability")
    terminal.answer("include_docker")
    terminal.answer("include_kubernetes")

    assert terminal.exit_status() == 0, terminal.text()
    assert "Traceback" not in terminal.text()
    answers = recorded(tmp_path / "pooled")
    assert (answers["pooler"], answers["pooler_client_limit"]) == ("pgbouncer", 1000)
    assert "to PgBouncer: its client limit is 1,000 (3 kept for admin)." in terminal.text()


def test_an_impossible_worker_count_is_asked_again(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "workers")
    for question in (
        *PROJECT,
        "concurrency",
        "db_driver",
        "orm",
        "deployment",
        *MANAGED_CAPACITY[:2],
    ):
        terminal.answer(question)
    terminal.expect("worker_count: ")

    for typed, refusal in [
        ("0", "Validation error for question 'worker_count': must be between 1 and 64"),
        ("65", "Validation error for question 'worker_count': must be between 1 and 64"),
        ("abc", "Invalid input"),
    ]:
        terminal.send(BACKSPACE * 3 + typed + "\r")
        terminal.expect(refusal)
        assert "app_instances: " not in terminal.text()

    terminal.send(BACKSPACE * 3 + "3\r")
    terminal.answer("app_instances")
    terminal.answer("db_max_connections")
    terminal.answer("read_replica")
    terminal.answer("observability")
    terminal.answer("include_docker")
    terminal.answer("include_kubernetes")
    assert terminal.exit_status() == 0, terminal.text()
    assert recorded(tmp_path / "workers")["worker_count"] == 3


def test_ctrl_c_at_a_prompt_stops_and_leaves_no_folder(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "abandoned")
    for question in (*PROJECT, "concurrency", "db_driver"):
        terminal.answer(question)
    terminal.expect("orm: ")

    terminal.send(CTRL_C)

    assert terminal.exit_status() == 1
    assert "Execution stopped by user" in terminal.text()
    assert "Traceback" not in terminal.text()
    assert not (tmp_path / "abandoned").exists()
