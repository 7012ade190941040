"""Serve an app with uvicorn processes, wait until they answer, stop them for sure."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class Server:
    """One uvicorn process (and any it starts); `ready_path` answers 200 once it can serve."""

    def __init__(
        self, command: list[str], cwd: Path, env: Mapping[str, str], port: int, log: Path
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as output:
            # A session of its own, so that stop() reaches any process it starts too.
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, ready_path: str) -> None:
        # Uvicorn restarts a worker that dies at import, forever: a deadline ends that.
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None or b"Traceback" in self.log.read_bytes():
                break
            try:
                with urllib.request.urlopen(self.base_url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{self.base_url}{ready_path} did not answer 200; log tail:\n{tail}")

    def stop(self) -> None:
        """End the whole process group: uvicorn's supervisor and every worker."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
                return
            except subprocess.TimeoutExpired:
                continue


class Service:
    """One app served by several uvicorn processes, one worker each, on a port each.

    `uvicorn --workers N` shares one socket, and the kernel often hands every keep-alive
    connection of a burst to one worker (measured here: 0.0 and 1.7 CPU seconds in one 2 s
    run), which makes each measurement a coin toss. With a port per worker the load driver
    splits its connections evenly.
    """

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    @property
    def base_urls(self) -> list[str]:
        return [server.base_url for server in self.servers]

    @property
    def pids(self) -> list[int]:
        return [server.process.pid for server in self.servers]

    def wait_ready(self, ready_path: str) -> None:
        for server in self.servers:
            server.wait_ready(ready_path)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
