"""The measured figures of every fault, as one table in the terminal summary and in a file.

A pytest plugin (tests/conftest.py loads it). Tests call the `figures` fixture; under xdist
each worker hands its rows to the controller through `workeroutput`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .load import LoadResult
from .project import Case

COLUMNS = (
    "fault", "driver", "profile", "timeouts", "requests", "failed", "max s", "recovery s",
    "bound s", "req/s",
)  # fmt: skip
ROWS = pytest.StashKey[list[dict[str, Any]]]()
REPORT_NAME = "resilience-figures.md"


def _rows(config: pytest.Config) -> list[dict[str, Any]]:
    return config.stash.setdefault(ROWS, [])


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record one row: figures(fault=..., case=..., result=..., recovery=..., bound=...,
    defaults=..., throughput=...), `defaults` saying the app ran with the rendered default
    timeouts, `throughput` that the load ran flat out, so its requests per second mean something."""

    def record(
        *, fault: str, case: Case, result: LoadResult, recovery: float | None = None,
        bound: float | None = None, defaults: bool = False, throughput: bool = False,
    ) -> None:  # fmt: skip
        row = {
            "fault": fault,
            "driver": case.driver,
            "profile": case.profile,
            "timeouts": "defaults" if defaults else "short",
            "requests": len(result.requests),
            "failed": len(result.failures),
            "max s": result.max_latency,
            "recovery s": "" if recovery is None else recovery,
            "bound s": "" if bound is None else bound,
            "req/s": round(result.per_second) if throughput else "",
        }
        _rows(request.config).append(row)

    return record


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["resilience_figures"] = json.dumps(_rows(session.config))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    rows = getattr(node, "workeroutput", {}).get("resilience_figures")
    if rows:
        _rows(node.config).extend(json.loads(rows))


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    ordered = sorted(
        rows, key=lambda row: tuple(str(row.get(column, "")) for column in COLUMNS[:4])
    )
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell(row.get(c, "")) for c in COLUMNS) + " |" for row in ordered),
    ]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = _rows(config)
    if not rows or hasattr(config, "workerinput"):
        return
    text = table(rows)
    path = Path(config._tmp_path_factory.getbasetemp()) / REPORT_NAME  # type: ignore[attr-defined]
    path.write_text(text + "\n")
    terminalreporter.write_sep("=", "what the rendered project survives (measured)")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"(also in {path})")
