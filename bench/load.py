"""The load driver: a separate process that runs one load job per line of standard input.

Each job keeps a fixed number of HTTP/1.1 keep-alive connections busy for a bounded time and
answers with one JSON line: requests, errors, elapsed time and latency percentiles. Running
apart from the bench keeps the driver's own work out of the process that starts the servers,
and one long-lived process avoids paying its start-up for every measurement. aiohttp, not
httpx: on this 2-core machine httpx's client used about 1.3 ms of CPU per request and aiohttp's
0.2 ms, CPU the apps under test would otherwise lose.

    {"base_urls": ["http://127.0.0.1:8000", "http://127.0.0.1:8001"], "endpoint": "get",
     "concurrency": 16, "duration": 4, "item_ids": 1000, "label": "job7"}

The connections are split evenly between the base URLs (one per worker process of the app).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REQUEST_TIMEOUT_SECONDS = 10.0
EXPECTED_STATUS = {"get": 200, "post": 201}
KEPT_ERROR_SAMPLES = 3


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < KEPT_ERROR_SAMPLES:
            self.error_samples.append(text[:300])


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    endpoint: str = job["endpoint"]
    expected = EXPECTED_STATUS[endpoint]
    deadline = time.perf_counter() + float(job["duration"])
    names = (f"{job['label']}-{n}" for n in itertools.count())
    tally = Tally()

    def request(session: aiohttp.ClientSession, base_url: str) -> Any:
        if endpoint == "get":
            return session.get(f"{base_url}/items/{random.randint(1, job['item_ids'])}")
        return session.post(f"{base_url}/items", json={"name": next(names), "description": "x"})

    async def user(session: aiohttp.ClientSession, base_url: str) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with request(session, base_url) as response:
                    body = await response.read()
                    if response.status != expected:
                        tally.error(f"{response.status} {body.decode(errors='replace')}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as error:
                tally.error(f"{type(error).__name__}: {error}")
                continue
            tally.latencies.append(time.perf_counter() - started)

    base_urls: list[str] = job["base_urls"]
    concurrency = int(job["concurrency"])
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    # The connection pool has no limit: each user holds one connection.
    connector = aiohttp.TCPConnector(limit=0)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        users = [user(session, base_urls[n % len(base_urls)]) for n in range(concurrency)]
        await asyncio.gather(*users)
    elapsed = time.perf_counter() - started
    return summarise(tally, elapsed)


def summarise(tally: Tally, elapsed: float) -> dict[str, Any]:
    latencies = tally.latencies
    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    return {
        "requests": len(latencies),
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentiles[49] * 1000,
        "p99_ms": percentiles[98] * 1000,
    }


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            result = asyncio.run(run_job(json.loads(line)))
            print(json.dumps(result), flush=True)


class LoadDriver:
    """The bench's handle on the driver process: one job in, one result out."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, **job: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load driver exited ({self.process.wait()}) during {job}")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    main()
