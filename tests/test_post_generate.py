"""hooks/post_generate.py: run once after `copier copy`, the project is ready for `copier update`.

It locks dependencies, makes the repository and its first commit, needs only the standard
library, and a second run changes nothing.
"""

from __future__ import annotations

import ast
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rendering import TEMPLATE_ROOT, render
from versions import GIT_ENV, TemplateReleases, cli, git, update

SCRIPT = TEMPLATE_ROOT / "hooks" / "post_generate.py"
ANSWERS = {"project_name": "Orders", "concurrency": "sync", "orm": "sqlalchemy"}


def environment(**overrides: str) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "UV_PYTHON_DOWNLOADS": "never", **overrides}


def post_generate(
    project: Path, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(project), *arguments],
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the project, the repository's own included."""
    return {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return render(tmp_path / "orders", ANSWERS)


def test_first_run_locks_initialises_and_commits_everything(project: Path) -> None:
    result = post_generate(project)

    assert result.returncode == 0, result.stderr
    assert (project / "uv.lock").is_file()
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"
    tracked = git(project, "ls-files").splitlines()
    assert {"uv.lock", ".copier-answers.yml", "pyproject.toml"} <= set(tracked)
    assert ".env" not in tracked
    assert git(project, "log", "-1", "--format=%an <%ae>").strip() == (
        "Template Tests <tests@example.invalid>"
    )


def test_second_run_changes_nothing(project: Path) -> None:
    assert post_generate(project).returncode == 0
    before = snapshot(project)

    result = post_generate(project)

    assert result.returncode == 0, result.stderr
    assert snapshot(project) == before
    assert "left as it is" in result.stdout


def test_without_a_git_identity_the_first_commit_uses_a_named_fallback(
    project: Path, tmp_path: Path
) -> None:
    # useConfigOnly stops git from guessing an identity from the host name, as on a fresh machine.
    no_identity = tmp_path / "gitconfig"
    no_identity.write_text("[user]\n\tuseConfigOnly = true\n")
    env = {
        name: value
        for name, value in environment(GIT_CONFIG_GLOBAL=str(no_identity)).items()
        if not name.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))
    }

    result = post_generate(project, "--no-lock", env=env)

    assert result.returncode == 0, result.stderr
    assert "git identity: none configured" in result.stdout
    assert git(project, "log", "-1", "--format=%an <%ae>").strip() == (
        "copier-fastapi-postgres <post-generate@localhost.invalid>"
    )
    assert "[user]" not in (project / ".git" / "config").read_text()


def git_only(tmp_path: Path) -> Path:
    """A PATH directory with git and nothing else: a machine without uv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (bin_dir / "git").symlink_to(git_path)
    return bin_dir


def test_without_uv_it_still_commits_and_says_how_to_lock(project: Path, tmp_path: Path) -> None:
    result = post_generate(project, env=environment(PATH=str(git_only(tmp_path))))

    assert result.returncode == 0, result.stderr
    assert "uv is not on PATH; run `uv lock` later" in result.stdout
    assert not (project / "uv.lock").exists()
    assert git(project, "status", "--porcelain") == ""


def test_run_before_uv_is_installed_and_again_after_leaves_nothing_for_update(
    tmp_path: Path,
) -> None:
    releases = TemplateReleases(tmp_path / "template")
    releases.release("1.0.0")
    releases.release("1.1.0")
    project = releases.copy(tmp_path / "orders", ANSWERS, "1.0.0", commit=False)
    assert post_generate(project, env=environment(PATH=str(git_only(tmp_path)))).returncode == 0

    result = post_generate(project)

    assert result.returncode == 0, result.stderr
    assert "uv.lock: written by `uv lock`" in result.stdout
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "log", "-1", "--format=%s", "--name-only").split() == [
        "Lock",
        "dependencies",
        "with",
        "uv",
        "uv.lock",
    ]
    updated = cli(["update", "--defaults"], project)
    assert updated.returncode == 0, updated.stderr
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"


def test_a_directory_that_copier_did_not_make_is_refused(tmp_path: Path) -> None:
    result = post_generate(tmp_path)

    assert result.returncode == 2
    assert "has no .copier-answers.yml" in result.stderr
    assert not (tmp_path / ".git").exists()


def test_inside_another_repository_it_makes_no_nested_one(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    project = render(tmp_path / "services" / "orders", ANSWERS)

    result = post_generate(project, "--no-lock")

    assert result.returncode == 0, result.stderr
    assert "inside the repository" in result.stdout
    assert not (project / ".git").exists()
    assert git(tmp_path, "rev-list", "--all") == ""


def test_right_after_it_copier_update_works(tmp_path: Path) -> None:
    releases = TemplateReleases(tmp_path / "template")
    releases.release("1.0.0")
    releases.release("1.1.0")
    project = releases.copy(tmp_path / "orders", ANSWERS, "1.0.0", commit=False)
    assert post_generate(project).returncode == 0

    update(project)

    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"
    assert (project / "uv.lock").is_file()


def test_the_message_after_copy_names_this_script_as_the_next_command(tmp_path: Path) -> None:
    result = cli(["copy", "--defaults", "--vcs-ref=HEAD", str(TEMPLATE_ROOT), str(tmp_path / "o")])

    assert result.returncode == 0, result.stderr
    after_copy = result.stderr[result.stderr.index("O is ready in o/.") :].splitlines()
    assert f"  python3 {SCRIPT}" in after_copy
    assert after_copy.index(f"  python3 {SCRIPT}") < after_copy.index("  make setup   # install")


def test_from_a_remote_template_the_message_points_to_the_readme(tmp_path: Path) -> None:
    # Copier's temporary clone is gone after the copy: there is no local path to show.
    source = f"git+file://{TEMPLATE_ROOT}"

    result = cli(["copy", "--defaults", "--vcs-ref=HEAD", source, str(tmp_path / "o")])

    assert result.returncode == 0, result.stderr
    assert "  uv run <the template's raw URL>/hooks/post_generate.py   # see its README" in (
        result.stderr.splitlines()
    )


def test_it_uses_the_standard_library_only() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }

    assert imported <= sys.stdlib_module_names | {"__future__"}


def test_it_is_not_a_copier_task_so_nothing_needs_trust() -> None:
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())

    assert not {"_tasks", "_migrations", "_jinja_extensions"} & set(config)


@pytest.fixture
def script_url() -> Iterator[str]:
    """The hooks directory over HTTP on loopback, standing in for the raw GitHub URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SCRIPT.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{SCRIPT.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_uv_runs_it_from_a_url_as_the_readme_shows(project: Path, script_url: str) -> None:
    result = subprocess.run(
        ["uv", "run", script_url, str(project), "--no-lock"],
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"
