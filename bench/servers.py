"""Start an app under uvicorn with its own workers, wait until it serves, stop it for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One uvicorn process group; `ready_path` must answer 200 once the app can serve."""

    def __init__(
        self, command: list[str], cwd: Path, env: Mapping[str, str], port: int, log: Path
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as output:
            # A session of its own, so that stop() reaches the workers too.
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
