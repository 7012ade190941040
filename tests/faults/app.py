"""A rendered app served by uvicorn with 2 workers, as a subprocess with its own environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rendering import free_port

from .netns import NetworkNamespace

WORKERS = 2
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class RunningApp:
    """`uvicorn <package>.main:app --workers 2`, started on enter and stopped on exit.

    With a namespace the app runs inside it and listens on the namespace's address, which the
    test reaches over the veth link while the link is up.
    """

    def __init__(
        self,
        project: Path,
        package: str,
        env: Mapping[str, str],
        log_file: Path,
        namespace: NetworkNamespace | None = None,
    ) -> None:
        self.project = project
        self.package = package
        self.env = dict(env)
        self.log_file = log_file
        self.namespace = namespace
        self.host = namespace.inner_address if namespace else "127.0.0.1"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def command_prefix(self) -> list[str]:
        """Run a command where the app runs (inside its namespace, if any)."""
        return self.namespace.exec_prefix if self.namespace else []

    @property
    def python(self) -> str:
        return str(Path(self.env["VIRTUAL_ENV"]) / "bin" / "python")

    def __enter__(self) -> RunningApp:
        command = [
            *self.command_prefix,
            str(Path(self.env["VIRTUAL_ENV"]) / "bin" / "uvicorn"),
            f"{self.package}.main:app",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(WORKERS),
            "--timeout-graceful-shutdown",
            "5",
            # A new worker of a rolling restart imports the app on 2 busy cores: slower than
            # uvicorn's default 5 s readiness wait, after which it keeps the old worker.
            "--timeout-worker-healthcheck",
            "30",
            # The app's own log lines (503 causes) are the evidence; access lines would bury them.
            "--no-access-log",
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.project,
                env={**os.environ, **self.env, "WEB_CONCURRENCY": str(WORKERS)},
                stdout=log,
                stderr=subprocess.STDOUT,
                # A group of its own: the workers are stopped with the supervisor, never others.
                start_new_session=True,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def restart_workers(self) -> None:
        """uvicorn's rolling restart (SIGHUP): each new worker serves before its old one drains."""
        assert self._process is not None, "enter the RunningApp first"
        os.kill(self._process.pid, signal.SIGHUP)

    def worker_pids(self) -> set[int]:
        """The supervisor's children: the uvicorn workers serving now."""
        assert self._process is not None, "enter the RunningApp first"
        children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children")
        # Workers are spawned processes; the supervisor's other child tracks shared resources.
        return {
            int(pid)
            for pid in children.read_text().split()
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        """GET from the test process; (status, JSON body)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def post(self, path: str, body: Mapping[str, Any], timeout: float = 10) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def pool_limit(self) -> int:
        """Connections the app's pools may hold: pool_size + max_overflow in each worker."""
        status, body = self.get("/health/ready")
        assert status == 200, body
        return WORKERS * (body["pool"]["size"] + body["pool"]["max_overflow"])

    def connection_limit(self) -> int:
        """Connections the app may hold: its pools, and each worker's readiness connection."""
        return self.pool_limit() + WORKERS

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"uvicorn exited {self._process.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/health/live", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"uvicorn not serving after {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}"
        )
