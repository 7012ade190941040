"""Tagged releases of this template in a throwaway git repository, and git in rendered projects.

`copier update` needs PEP 440 tags on the template and a clean git repository around the
project. `TemplateReleases` copies this template's working tree (uncommitted changes included,
as `rendering.render` does) into a new repository, and tags it as one or more versions, each
optionally edited first: an older release is the current tree with a few edits undone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import copier
from copier import Settings

from rendering import TEMPLATE_ROOT, run

# Commits made by the tests never depend on the developer's git configuration or identity.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}

CONFLICT_MARKER = re.compile(r"^(<<<<<<< before updating|>>>>>>> after updating)$", re.MULTILINE)


def git(repository: Path, *arguments: str) -> str:
    return run(["git", *arguments], repository, GIT_ENV, timeout=60).stdout


def tracked_files(repository: Path) -> list[str]:
    listing = git(repository, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted({name for name in listing.split("\0") if (repository / name).is_file()})


class TemplateReleases:
    """A git repository holding this template, tagged as the versions a test needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "--quiet", "--initial-branch=main")

    def release(self, version: str, edit: Callable[[Path], None] | None = None) -> str:
        """Commit the current template, changed by `edit`, and tag it; return the version."""
        for name in tracked_files(self.path):
            (self.path / name).unlink()
        for name in tracked_files(TEMPLATE_ROOT):
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / name, target)
        if edit is not None:
            edit(self.path)
        git(self.path, "add", "--all")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", f"Release {version}")
        git(self.path, "tag", version)
        return version

    def copy(
        self, destination: Path, answers: Mapping[str, Any], version: str, *, commit: bool = True
    ) -> Path:
        """`copier copy` at `version`, then (unless told not to) the first commit."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(
                str(self.path),
                destination,
                data=dict(answers),
                vcs_ref=version,
                defaults=True,
                unsafe=False,
                quiet=True,
                settings=Settings(),
            )
        if commit:
            git(destination, "init", "--quiet", "--initial-branch=main")
            commit_all(destination, "Generated from the template")
        return destination


def update(project: Path, data: Mapping[str, Any] | None = None, **options: Any) -> None:
    """`copier update --defaults` to the newest release, as automation runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(
            project,
            data=dict(data or {}),
            defaults=True,
            overwrite=True,
            unsafe=False,
            quiet=True,
            conflict="inline",
            settings=Settings(),
            **options,
        )


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", message)


def unmerged_paths(project: Path) -> list[str]:
    """The documented check after an update: paths `git status` reports as `UU`."""
    status = git(project, "status", "--porcelain")
    return [line[3:] for line in status.splitlines() if line.startswith("UU ")]


def files_with_conflict_markers(project: Path) -> list[str]:
    return [
        name
        for name in tracked_files(project)
        if CONFLICT_MARKER.search((project / name).read_text(errors="replace"))
    ]


def edit_file(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old`; fail loudly if the template no longer has it."""
    text = path.read_text()
    assert text.count(old) == 1, f"expected exactly one {old!r} in {path}"
    path.write_text(text.replace(old, new))


def cli(arguments: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Copier's CLI with stdin closed, as in CI: nothing can be prompted."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *arguments],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **GIT_ENV},
    )


MAIN_MODULE = "template/src/{{package_name}}/main.py.jinja"
OLD_MAIN_SUMMARY = '"""The application (wording of 1.0.0)."""'
ADDED_IN_NEWER = "template/.gitattributes"
REMOVED_IN_NEWER = "template/src/{{package_name}}/legacy.py"


def older_release(template: Path) -> None:
    """The current tree as an older release: main.py's first line differs, one file is not
    there yet, and one file that the current tree dropped is still there."""
    main = template / MAIN_MODULE
    first_line, rest = main.read_text().split("\n", 1)
    assert first_line.startswith('"""'), f"{MAIN_MODULE} no longer starts with a docstring"
    main.write_text(f"{OLD_MAIN_SUMMARY}\n{rest}")
    (template / ADDED_IN_NEWER).unlink()
    (template / REMOVED_IN_NEWER).write_text('"""Dropped by the newer release."""\n')


def older_and_current(path: Path) -> TemplateReleases:
    """1.0.0 (`older_release`) and 1.1.0 (the current tree)."""
    releases = TemplateReleases(path)
    releases.release("1.0.0", older_release)
    releases.release("1.1.0")
    return releases
