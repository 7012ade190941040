"""Where the time goes: py-spy samples of an app's workers under load, summed by library.

py-spy reads the workers' stacks from outside (no code change, no restart) and keeps only
samples of threads that are running or ready to run. With few requests in flight no thread
waits for a core, so the samples divide CPU time; their shares are scaled to the CPU per
request measured from /proc meanwhile.
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
# Samples whose last Python frame is the loop's run(): uvloop's C code and the socket calls.
EVENT_LOOP = "event loop + socket I/O (uvloop, C)"
# Libraries below this share of every profile's samples are summed up as "other".
MINOR_SHARE = 0.01
REFERENCE = "reference app"


@dataclass
class Profile:
    label: str
    samples: Counter[tuple[str, ...]]
    # The workers' CPU per request, measured from /proc while the samples were taken.
    cpu_ms_per_request: float

    def milliseconds_per_request(self, count: int) -> float:
        """The CPU per request that `count` samples stand for."""
        return count / max(sum(self.samples.values()), 1) * self.cpu_ms_per_request


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


def load(raw: list[Path], label: str, cpu_ms_per_request: float, package: str) -> Profile:
    """Samples of every worker of one app, from py-spy's raw (collapsed stacks) files."""
    samples: Counter[tuple[str, ...]] = Counter()
    for line in (line for path in raw for line in path.read_text().splitlines()):
        stack, _, count = line.rpartition(" ")
        frames = tuple(
            f"{match['function']} ({short_path(match['path'])})\t{group_of(match['path'], package)}"
            for frame in stack.split(";")
            if (match := FRAME.match(frame))
        )
        if frames and frames[-1].startswith("Runner.run (asyncio/runners.py)"):
            frames = (*frames[:-1], f"{frames[-1].split(chr(9))[0]}\t{EVENT_LOOP}")
        if frames:
            samples[frames] += int(count)
    return Profile(label, samples, cpu_ms_per_request)


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
    """CPU milliseconds per request by library, by self time (where the CPU actually was)."""
    by_group: list[Counter[str]] = [Counter() for _ in profiles]
    for counter, profile in zip(by_group, profiles, strict=True):
        for frames, count in profile.samples.items():
            counter[frames[-1].split("\t")[1]] += count
    shown = sorted(
        {
            group
            for counter, profile in zip(by_group, profiles, strict=True)
            for group, count in counter.items()
            if count >= MINOR_SHARE * sum(profile.samples.values())
        },
        key=lambda group: -by_group[0][group],
    )
    header = " | ".join(f"{p.label}" for p in profiles)
    lines = [f"| library (self time) | {header} |", "| --- |" + " ---: |" * len(profiles)]
    for group in [*shown, "other"]:
        cells = []
        for profile, counter in zip(profiles, by_group, strict=True):
            count = (
                counter[group]
                if group != "other"
                else sum(n for g, n in counter.items() if g not in shown)
            )
            cells.append(f"{profile.milliseconds_per_request(count):.2f}")
        lines.append(f"| {group} | {' | '.join(cells)} |")
    totals = " | ".join(f"**{p.cpu_ms_per_request:.2f}**" for p in profiles)
    lines.append(f"| **CPU per request (from /proc)** | {totals} |")
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
            f"## Profile: {stack}, the stack with the lowest throughput",
            "",
            "Milliseconds of worker CPU per request, GET and POST together: the total measured "
            "from /proc, divided among libraries by py-spy samples of the code that was running "
            "(with 2 requests in flight, so that no thread waits for a core):",
            "",
            groups_table(profiles),
            "",
            "Where the rendered app's time goes: the functions of SQLAlchemy, SQLModel and the "
            "rendered project that samples pass through (inclusive time):",
            "",
            hot_functions_table(rendered, {"SQLAlchemy", "SQLModel", OURS}),
        ]
    )
