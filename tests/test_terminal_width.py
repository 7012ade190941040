"""Everything copier shows fits an 80-column terminal: each prompt, help, choice and message.

Each example answer file is copied interactively (`--ask='*'` asks every question, its answer
from the file being the default), in a terminal wide enough that nothing is cut, and every line
that was on the screen is measured. Refusals are measured as copier shows them: on one line,
after "Validation error for question '<name>': ".
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendering import TEMPLATE_ROOT, render
from terminal import Terminal, columns
from test_questions import REFUSALS

WIDTH = 80
EXAMPLES = sorted((TEMPLATE_ROOT / "examples").glob("*.yml"))
# Prompts the examples do not show: Neon's direct endpoint, psycopg2 (asyncpg greyed out).
NEON_DIRECT_SYNC = {
    "project_name": "Ledger",
    "concurrency": "sync",
    "db_driver": "psycopg2",
    "orm": "sqlmodel",
    "deployment": "neon",
    "neon_endpoint": "direct",
}
QUESTIONS = [
    name
    for name, question in yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text()).items()
    if not name.startswith("_") and question.get("when") is not False
]


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """The template under a short path: the message after copy shows where post_generate.py is,
    and a tester's long checkout path is not the template's text."""
    with tempfile.TemporaryDirectory(prefix="t") as short:
        link = Path(short) / "template"
        link.symlink_to(TEMPLATE_ROOT)
        yield link


def asked(answers: dict[str, Any]) -> list[str]:
    neon = answers["deployment"] == "neon"
    pooled = (
        answers.get("neon_endpoint", "pooled") == "pooled"
        if neon
        else answers.get("pooler", "none") != "none"
    )
    skipped = {"cloud_provider", "pooler"} if neon else {"neon_endpoint"}
    if not pooled:
        skipped.add("pooler_client_limit")
    return [question for question in QUESTIONS if question not in skipped]


def too_wide(lines: list[str]) -> list[str]:
    return [f"{columns(line)}: {line}" for line in lines if columns(line) > WIDTH]


@pytest.mark.parametrize(
    "example",
    [*EXAMPLES, NEON_DIRECT_SYNC],
    ids=lambda example: example.stem if isinstance(example, Path) else "neon-direct-sync",
)
def test_every_prompt_and_the_message_after_copy_fit_80_columns(
    example: Path | dict[str, str], template: Path, tmp_path: Path
) -> None:
    data_file = example if isinstance(example, Path) else tmp_path / "answers.yml"
    if isinstance(example, dict):
        data_file.write_text(yaml.safe_dump(example))
    answers = yaml.safe_load(data_file.read_text())
    terminal = Terminal(
        tmp_path / "project",
        "--ask=*",
        f"--data-file={data_file}",
        template=template,
        rows=60,
        columns=200,
    )

    for question in asked(answers):
        terminal.answer(question)

    assert terminal.exit_status() == 0, terminal.text()
    assert "is ready in project/." in terminal.text()
    shown = terminal.seen + terminal.lines()
    assert [line for line in shown if line.startswith("🎤 ")], "the prompts were read"
    assert too_wide(shown) == []
    if answers.get("neon_endpoint") == "pooled":
        # The prompt says which number sizes the pools, as the message after copy does.
        assert "🎤 db_max_connections: the compute's; pools count the pooler's 10,000 clients" in (
            shown
        )


@pytest.mark.parametrize(("bad", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_every_refusal_fits_80_columns_after_copiers_prefix(
    bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError) as refusal:
        render(tmp_path / "project", {"project_name": "Orders Service", **bad})

    assert message in str(refusal.value)
    assert too_wide(str(refusal.value).splitlines()) == []
    assert "\n" not in str(refusal.value)
