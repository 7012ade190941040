"""The answers file records every answer given and nothing computed or secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rendering import render

COMMON = {
    "project_name",
    "project_slug",
    "package_name",
    "description",
    "concurrency",
    "db_driver",
    "orm",
    "deployment",
    "worker_count",
    "app_instances",
    "db_max_connections",
    "read_replica",
    "observability",
    "include_docker",
    "include_kubernetes",
}


@pytest.mark.parametrize(
    ("deployment", "asked_for_it"),
    [
        ({"deployment": "neon"}, {"neon_endpoint", "pooler_client_limit"}),
        ({"deployment": "managed"}, {"cloud_provider", "pooler"}),
        (
            {"deployment": "managed", "pooler": "pgbouncer"},
            {"cloud_provider", "pooler", "pooler_client_limit"},
        ),
    ],
    ids=["neon", "managed", "managed-pgbouncer"],
)
def test_answers_file_holds_exactly_the_asked_answers(
    deployment: dict[str, str], asked_for_it: set[str], tmp_path: Path
) -> None:
    project = render(tmp_path / "project", {"project_name": "Orders", **deployment})

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert {key for key in recorded if not key.startswith("_")} == COMMON | asked_for_it
    assert {"_commit", "_src_path"} <= set(recorded)
    assert Path(recorded["_src_path"]).is_absolute()
    assert "pool" not in recorded and "target" not in recorded
