"""Versions agree: the copier the tests use is the one copier.yml demands, and the changelog
describes the version being released, and every release tag, with its update impact."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import yaml
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from rendering import TEMPLATE_ROOT
from versions import git

PYPROJECT = tomllib.loads((TEMPLATE_ROOT / "pyproject.toml").read_text())
CHANGELOG = (TEMPLATE_ROOT / "CHANGELOG.md").read_text()
RELEASE_HEADING = re.compile(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", re.MULTILINE)


def released_sections() -> dict[str, str]:
    """Each released version's changelog section, by version, newest first."""
    headings = list(RELEASE_HEADING.finditer(CHANGELOG))
    ends = [heading.start() for heading in headings[1:]] + [len(CHANGELOG)]
    return {h.group(1): CHANGELOG[h.end() : end] for h, end in zip(headings, ends, strict=True)}


def test_min_copier_version_is_the_lower_bound_the_tests_install() -> None:
    minimum = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())["_min_copier_version"]
    copier = next(
        requirement
        for requirement in map(Requirement, PYPROJECT["dependency-groups"]["dev"])
        if requirement.name == "copier"
    )

    assert [(s.operator, Version(s.version)) for s in copier.specifier] == [
        (">=", Version(minimum))
    ]
    assert Version(version("copier")) >= Version(minimum)


def test_the_newest_changelog_release_is_the_version_in_pyproject() -> None:
    assert next(iter(released_sections())) == PYPROJECT["project"]["version"]


def test_every_release_says_what_updating_to_it_means() -> None:
    for number, section in released_sections().items():
        Version(number)  # PEP 440, as copier compares tags
        assert "\n**Updating:** " in section, f"{number} has no **Updating:** line"


def test_every_release_tag_has_a_changelog_entry() -> None:
    tags = git(TEMPLATE_ROOT, "tag", "--list").split()
    released = set(released_sections())
    for tag in tags:
        try:
            Version(tag)
        except InvalidVersion:
            continue  # copier ignores tags that are not PEP 440 versions
        assert tag in released, f"tag {tag} has no CHANGELOG.md entry"
