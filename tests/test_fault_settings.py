"""The fault suite's DEFAULT_TIMEOUTS are the rendered project's defaults, in code and README.

The fault rig runs an app with the rendered defaults and derives its bounds from
DEFAULT_TIMEOUTS: if a default changed without it, those bounds would test something else.
"""

from __future__ import annotations

import re
from pathlib import Path

from faults.fixtures import DEFAULT_TIMEOUTS
from rendering import Combination, all_combinations, render

SETTING_DEFAULT = re.compile(r"^    (\w+): [^=\n]+= Field\(([\d.]+)", re.MULTILINE)
README_ROW = re.compile(r"^\| ((?:`[A-Z_]+`(?:, )?)+) \| ((?:`[\d.]+`(?:, )?)+) \|", re.MULTILINE)


def test_the_fault_suites_defaults_are_the_rendered_ones(tmp_path: Path) -> None:
    combination: Combination = next(all_combinations())
    project = render(tmp_path / combination.id, combination.answers)
    settings = (project / "src" / combination.package_name / "settings.py").read_text()
    in_code = {name.upper(): float(value) for name, value in SETTING_DEFAULT.findall(settings)}
    in_readme: dict[str, float] = {}
    for names, values in README_ROW.findall((project / "README.md").read_text()):
        pairs = zip(re.findall(r"`(\w+)`", names), re.findall(r"`([\d.]+)`", values), strict=True)
        in_readme |= {name: float(value) for name, value in pairs}

    expected = {name: float(value) for name, value in DEFAULT_TIMEOUTS.items()}
    assert {name: in_code.get(name) for name in expected} == expected
    assert {name: in_readme.get(name) for name in expected} == expected
