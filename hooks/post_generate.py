# /// script
# requires-python = ">=3.11"
# dependencies = []
# ///
"""Make a freshly copied project ready for `copier update`: lock file, git repository, first commit.

Run it once, right after `copier copy`:

    python3 path/to/copier-fastapi-postgres/hooks/post_generate.py my-service

It is not a copier task on purpose: tasks would make every `copier copy` and `copier update`
demand `--trust`. It uses the standard library only and is safe to run again: a project that
already has a lock file and a commit is left exactly as it is, and a lock file written by a
later run (once uv is installed) is committed on its own.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS_FILE = ".copier-answers.yml"
# Used for the first commit only when git has no identity of its own (user.name/user.email).
FALLBACK_NAME = "copier-fastapi-postgres"
FALLBACK_EMAIL = "post-generate@localhost.invalid"
IDENTITIES = ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")


def git(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *arguments], cwd=project, capture_output=True, text=True, check=False
    )


def checked(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        command = " ".join(result.args)
        raise SystemExit(f"`{command}` failed:\n{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def template_version(project: Path) -> str:
    for line in (project / ANSWERS_FILE).read_text().splitlines():
        if line.startswith("_commit:"):
            return line.partition(":")[2].strip().strip("'\"")
    return "unknown"


def lock_dependencies(project: Path, *, skip: bool) -> None:
    if (project / "uv.lock").exists():
        print("uv.lock: present, left as it is")
    elif skip:
        print("uv.lock: skipped (--no-lock)")
    elif shutil.which("uv") is None:
        print("uv.lock: uv is not on PATH; run `uv lock` later and commit uv.lock")
    else:
        result = subprocess.run(
            ["uv", "lock"], cwd=project, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            # Nothing is committed yet, so running the script again starts over cleanly.
            raise SystemExit(
                f"`uv lock` failed (rerun when it works, or pass --no-lock):\n{result.stderr}"
            )
        print("uv.lock: written by `uv lock`")


def enclosing_repository(project: Path) -> Path | None:
    result = git(project, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def fallback_identity(project: Path) -> list[str]:
    """`-c` options for the commit when git would otherwise refuse it for lack of an identity."""
    if all(git(project, "var", ident).returncode == 0 for ident in IDENTITIES):
        return []
    print(
        f"git identity: none configured; committing as {FALLBACK_NAME} <{FALLBACK_EMAIL}>"
        " (set user.name and user.email, then `git commit --amend --reset-author`)"
    )
    return ["-c", f"user.name={FALLBACK_NAME}", "-c", f"user.email={FALLBACK_EMAIL}"]


def first_commit(project: Path) -> None:
    repository = enclosing_repository(project)
    if repository is not None and repository != project:
        print(f"git: the project is inside the repository {repository}; commit it there yourself")
        return
    if repository is None:
        checked(git(project, "init", "--quiet"))
        print("git: initialised a repository")
    if git(project, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        checked(git(project, "add", "--all"))
        commit(project, f"Generate from copier-fastapi-postgres {template_version(project)}")
    elif git(project, "status", "--porcelain", "--", "uv.lock").stdout.startswith("??"):
        # A run before uv was installed made the first commit without it; `copier update`
        # refuses a repository with untracked files.
        checked(git(project, "add", "uv.lock"))
        commit(project, "Lock dependencies with uv")
    else:
        print("git: the repository already has commits, left as it is")


def commit(project: Path, message: str) -> None:
    checked(git(project, *fallback_identity(project), "commit", "--quiet", "-m", message))
    print(f"git: commit {checked(git(project, 'rev-parse', '--short', 'HEAD'))}: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "project", nargs="?", default=".", type=Path, help="the copied project (default: .)"
    )
    parser.add_argument("--no-lock", action="store_true", help="do not run `uv lock`")
    arguments = parser.parse_args(argv)
    project: Path = arguments.project.resolve()
    if not (project / ANSWERS_FILE).is_file():
        parser.error(f"{project} has no {ANSWERS_FILE}: run this in a project made by copier copy")
    if shutil.which("git") is None:
        parser.error("git is not on PATH; copier update needs it")

    lock_dependencies(project, skip=arguments.no_lock)
    first_commit(project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
