"""Run the load driver in a process of its own and read what happened to every request."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .app import RunningApp

DRIVER = Path(__file__).with_name("load_driver.py")
# No request may take longer than this; the driver records it as unanswered (status 0).
REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Request:
    start: float
    end: float
    status: int
    method: str

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class LoadResult:
    requests: Sequence[Request]

    @property
    def failures(self) -> list[Request]:
        return [request for request in self.requests if not request.ok]

    @property
    def statuses(self) -> Counter[int]:
        return Counter(request.status for request in self.requests)

    @property
    def per_second(self) -> float:
        """Requests answered per second, from the first start to the last end."""
        if not self.requests:
            return 0.0
        first = min(request.start for request in self.requests)
        last = max(request.end for request in self.requests)
        return len(self.requests) / max(last - first, 1e-9)

    @property
    def max_latency(self) -> float:
        return max((request.latency for request in self.requests), default=0.0)

    def recovery_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the end of the first success that ended after it."""
        ends = [request.end for request in self.requests if request.ok and request.end > moment]
        return min(ends) - moment if ends else None

    def overlapping(self, start: float, end: float) -> LoadResult:
        """Requests that were running at some moment between start and end."""
        return LoadResult([r for r in self.requests if r.start < end and r.end > start])

    def started_between(self, start: float, end: float) -> LoadResult:
        return LoadResult([r for r in self.requests if start <= r.start < end])

    def failures_outside(self, start: float, end: float) -> list[Request]:
        """Failures of requests that did not overlap the window [start, end]."""
        return [r for r in self.failures if r.end < start or r.start > end]

    def summary(self) -> str:
        first = min((request.start for request in self.requests), default=0.0)
        slowest = sorted(self.requests, key=lambda request: -request.latency)[:5]
        return (
            f"{len(self.requests)} requests, statuses {dict(sorted(self.statuses.items()))}, "
            f"max latency {self.max_latency:.2f} s; slowest (status, start s, latency s): "
            + ", ".join(f"({r.status}, {r.start - first:.2f}, {r.latency:.2f})" for r in slowest)
        )


class Load:
    """A bounded load in the background: enter to start it, result() to wait for it."""

    def __init__(
        self,
        app: RunningApp,
        *,
        concurrency: int,
        duration: float,
        requests_per_client: int = 1_000_000,
        item_ids: Sequence[int] = (),
        writes: bool = True,
    ) -> None:
        self.duration = duration
        self._command = [
            *app.command_prefix,
            app.python,
            str(DRIVER),
            f"--url={app.url}",
            f"--concurrency={concurrency}",
            f"--duration={duration}",
            f"--requests-per-client={requests_per_client}",
            f"--request-timeout={REQUEST_TIMEOUT_SECONDS}",
            f"--item-ids={','.join(str(item) for item in item_ids)}",
            *(["--writes"] if writes else []),
        ]
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Load:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.communicate(timeout=30)

    def result(self) -> LoadResult:
        assert self._process is not None, "enter the Load first"
        stdout, stderr = self._process.communicate(
            timeout=self.duration + REQUEST_TIMEOUT_SECONDS + 30
        )
        if self._process.returncode != 0:
            raise RuntimeError(f"load driver exited {self._process.returncode}:\n{stderr}")
        requests = [Request(*json.loads(line)) for line in stdout.splitlines()]
        return LoadResult(requests)


def run_load(app: RunningApp, **options: Any) -> LoadResult:
    """A load run in the foreground."""
    with Load(app, **options) as load:
        return load.result()
