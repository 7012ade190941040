"""Where the time goes: py-spy samples of an app's workers under load, summed by library.

py-spy reads the workers' stacks from outside (no code change, no restart) and by default
keeps only samples of threads that are running, so a sample is a slice of CPU time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*):\d+\)$")
# Libraries grouped by the role they play in a request.
GROUPS = {
    "sqlalchemy": "SQLAlchemy",
    "sqlmodel": "SQLModel",
    "greenlet": "SQLAlchemy",
    "pydantic": "Pydantic",
    "pydantic_core": "Pydantic",
    "fastapi": "FastAPI + Starlette",
    "starlette": "FastAPI + Starlette",
    "anyio": "AnyIO (threads, limits)",
    "uvicorn": "uvicorn + httptools",
    "httptools": "uvicorn + httptools",
    "uvloop": "uvicorn + httptools",
    "asyncpg": "driver",
    "psycopg": "driver",
    "psycopg_pool": "driver",
    "psycopg2": "driver",
}
OURS = "rendered project (ours)"
REFERENCE = "reference app"


@dataclass
class Profile:
    label: str
    samples: Counter[tuple[str, ...]]
    requests: int
    rate: int

    def milliseconds_per_request(self, count: int) -> float:
        return count / self.rate * 1000 / max(self.requests, 1)


def start_recording(pid: int, seconds: float, output: Path, rate: int) -> subprocess.Popen[bytes]:
    """Sample pid and its worker processes for `seconds`; the caller drives load meanwhile."""
    command = [
        str(PY_SPY),
        "record",
        f"--pid={pid}",
        "--subprocesses",
        f"--rate={rate}",
        "--format=raw",
        "--full-filenames",
        "--nonblocking",
        f"--duration={round(seconds)}",
        f"--output={output}",
    ]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )


def load(raw: Path, label: str, requests: int, rate: int, package: str) -> Profile:
    samples: Counter[tuple[str, ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = tuple(
            f"{match['function']} ({short_path(match['path'])})\t{group_of(match['path'], package)}"
            for frame in stack.split(";")
            if (match := FRAME.match(frame))
        )
        if frames:
            samples[frames] += int(count)
    return Profile(label, samples, requests, rate)


def short_path(path: str) -> str:
    """sqlalchemy/orm/session.py rather than the whole path into the environment."""
    for marker in ("/site-packages/", "/src/", "/bench/reference/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def group_of(path: str, package: str) -> str:
    if f"/src/{package}/" in path:
        return OURS
    if "/bench/reference/" in path:
        return REFERENCE
    if "/site-packages/" in path:
        library = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        return GROUPS.get(library, library)
    if match := re.search(r"/lib/python3\.\d+/(\w+)", path):
        return f"Python stdlib: {match[1]}"  # ssl is TLS; asyncio, threading, ...
    return path


def groups_table(profiles: list[Profile]) -> str:
    """CPU milliseconds per request by library: self time (where the CPU actually was)."""
    by_group = [Counter() for _ in profiles]
    for counter, profile in zip(by_group, profiles, strict=True):
        for frames, count in profile.samples.items():
            counter[frames[-1].split("\t")[1]] += count
    groups = sorted(set().union(*by_group), key=lambda g: -by_group[0][g])
    header = " | ".join(f"{p.label} ms/request" for p in profiles)
    lines = [f"| library | {header} |", "| --- |" + " ---: |" * len(profiles)]
    for group in groups:
        cells = " | ".join(
            f"{p.milliseconds_per_request(c[group]):.2f}"
            for p, c in zip(profiles, by_group, strict=True)
        )
        lines.append(f"| {group} | {cells} |")
    totals = " | ".join(
        f"**{p.milliseconds_per_request(sum(p.samples.values())):.2f}**" for p in profiles
    )
    lines.append(f"| **total CPU per request** | {totals} |")
    return "\n".join(lines)


def hot_functions_table(profile: Profile, groups: set[str], limit: int = 20) -> str:
    """The functions of `groups` that the most samples pass through (inclusive time)."""
    inclusive: Counter[str] = Counter()
    for frames, count in profile.samples.items():
        for frame in set(frames):
            if frame.split("\t")[1] in groups:
                inclusive[frame] += count
    total = sum(profile.samples.values())
    lines = [
        "| function | library | share of samples | ms/request |",
        "| --- | --- | ---: | ---: |",
    ]
    for frame, count in inclusive.most_common(limit):
        function, group = frame.split("\t")
        lines.append(
            f"| `{function}` | {group} | {count / total:.0%} "
            f"| {profile.milliseconds_per_request(count):.2f} |"
        )
    return "\n".join(lines)


def report(stack: str, profiles: list[Profile]) -> str:
    """Markdown: CPU per request by library for each app, and the rendered app's hot spots."""
    rendered = profiles[0]
    return "\n".join(
        [
            f"## Profile: {stack} (the slowest stack), py-spy at {rendered.rate} Hz",
            "",
            "Milliseconds per request that a worker thread was running (or ready to run, "
            "waiting for a core) in each library's own code, GET and POST load together:",
            "",
            groups_table(profiles),
            "",
            "Where the rendered app's time goes (functions of SQLAlchemy, SQLModel and the "
            "rendered project that samples pass through):",
            "",
            hot_functions_table(rendered, {"SQLAlchemy", "SQLModel", OURS}),
        ]
    )
