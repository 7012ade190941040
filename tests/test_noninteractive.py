"""Copier in automation: stdin closed, no terminal. Nothing is prompted and nothing needs `--trust`;
what cannot be answered fails with copier's own message and leaves nothing behind.

(tests/test_questions.py covers `--defaults --data-file` and the refusals of impossible answers.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendering import TEMPLATE_ROOT
from versions import TemplateReleases, cli, commit_all, git, older_and_current

# One answer for every question a managed-database project asks.
EVERY_ANSWER: dict[str, Any] = {
    "project_name": "Billing",
    "project_slug": "billing",
    "package_name": "billing",
    "description": "Invoices and payments.",
    "concurrency": "sync",
    "db_driver": "psycopg2",
    "orm": "sqlalchemy",
    "deployment": "managed",
    "cloud_provider": "gcp",
    "pooler": "pgbouncer",
    "worker_count": 4,
    "app_instances": 3,
    "db_max_connections": 200,
    "pooler_client_limit": 300,
    "read_replica": True,
    "observability": "prometheus",
    "include_docker": False,
}


def copy(*arguments: str, destination: Path) -> Any:
    return cli(["copy", "--vcs-ref=HEAD", *arguments, str(TEMPLATE_ROOT), str(destination)])


def recorded_answers(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def data_options(answers: dict[str, Any]) -> list[str]:
    return [
        f"--data={key}={json.dumps(value) if not isinstance(value, str) else value}"
        for key, value in answers.items()
    ]


def test_defaults_alone_render_a_project_named_after_its_folder(tmp_path: Path) -> None:
    result = copy("--defaults", destination=tmp_path / "orders-service")

    assert result.returncode == 0, result.stderr
    answers = recorded_answers(tmp_path / "orders-service")
    assert answers["project_name"] == "Orders Service"
    assert answers["package_name"] == "orders_service"
    assert (tmp_path / "orders-service" / "src" / "orders_service" / "main.py").is_file()


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("2fast", {"project_name": "2fast", "project_slug": "app-2fast"}),
        ('say "hi" \\ bye', {"project_name": "Say Hi Bye", "package_name": "say_hi_bye"}),
        ("___", {"project_name": "Service", "package_name": "service"}),
        ("tests", {"project_name": "Tests", "package_name": "tests_app"}),
        ("x" * 70, {"project_name": "X" + "x" * 59, "package_name": "x" * 30}),
    ],
    ids=["digit-first", "quotes-and-backslash", "underscores-only", "shadowing", "long"],
)
def test_defaults_alone_accept_any_folder_name(
    folder: str, expected: dict[str, str], tmp_path: Path
) -> None:
    # Copier validates each default before it would prompt: a refused default is a traceback.
    result = copy("--defaults", destination=tmp_path / folder)

    assert result.returncode == 0, result.stderr
    answers = recorded_answers(tmp_path / folder)
    assert {key: answers[key] for key in expected} == expected


def test_data_for_every_question_renders_without_defaults(tmp_path: Path) -> None:
    result = copy(*data_options(EVERY_ANSWER), destination=tmp_path / "billing")

    assert result.returncode == 0, result.stderr
    assert recorded_answers(tmp_path / "billing") == EVERY_ANSWER


def test_a_data_file_with_every_answer_renders_without_defaults(tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(yaml.safe_dump(EVERY_ANSWER))

    result = copy(f"--data-file={data_file}", destination=tmp_path / "billing")

    assert result.returncode == 0, result.stderr
    assert recorded_answers(tmp_path / "billing") == EVERY_ANSWER


def test_data_on_the_command_line_beats_the_data_file(tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(yaml.safe_dump(EVERY_ANSWER))

    result = copy(
        "--defaults",
        f"--data-file={data_file}",
        "--data=cloud_provider=azure",
        destination=tmp_path / "billing",
    )

    assert result.returncode == 0, result.stderr
    assert recorded_answers(tmp_path / "billing")["cloud_provider"] == "azure"


def test_one_missing_answer_without_defaults_fails_with_copiers_message(tmp_path: Path) -> None:
    incomplete = {key: value for key, value in EVERY_ANSWER.items() if key != "include_docker"}

    result = copy(*data_options(incomplete), destination=tmp_path / "billing")

    assert result.returncode == 1
    assert "Interactive session required: Use `--defaults` and/or `--data`/`--data-file`" in (
        result.stderr
    )
    assert not (tmp_path / "billing").exists()


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> TemplateReleases:
    return older_and_current(tmp_path_factory.mktemp("releases") / "template")


@pytest.fixture
def old_project(releases: TemplateReleases, tmp_path: Path) -> Path:
    return releases.copy(tmp_path / "billing", EVERY_ANSWER, "1.0.0")


def test_check_update_quiet_exits_2_while_a_newer_release_exists(old_project: Path) -> None:
    quiet = cli(["check-update", "--quiet"], old_project)
    plain = cli(["check-update"], old_project)
    as_json = cli(["check-update", "--output-format=json"], old_project)

    assert (quiet.returncode, quiet.stdout) == (2, "")
    # Without --quiet the exit code is 0 either way: scripts must use --quiet or the JSON.
    assert plain.returncode == 0
    assert "Current version is 1.0.0, latest version is 1.1.0." in plain.stdout
    assert json.loads(as_json.stdout) == {
        "update_available": True,
        "current_version": "1.0.0",
        "latest_version": "1.1.0",
    }


def test_update_with_defaults_needs_no_terminal_and_check_update_then_exits_0(
    old_project: Path,
) -> None:
    result = cli(["update", "--defaults"], old_project)

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((old_project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"
    assert recorded_answers(old_project) == EVERY_ANSWER
    commit_all(old_project, "Update to 1.1.0")
    assert cli(["check-update", "--quiet"], old_project).returncode == 0


def test_update_without_defaults_fails_without_a_terminal_and_changes_nothing(
    old_project: Path,
) -> None:
    result = cli(["update"], old_project)

    assert result.returncode == 1
    assert "Interactive session required" in result.stderr
    assert git(old_project, "status", "--porcelain") == ""
    assert yaml.safe_load((old_project / ".copier-answers.yml").read_text())["_commit"] == "1.0.0"
