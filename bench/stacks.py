"""What is measured: each driver x concurrency stack, and the three apps compared on it.

For every stack the bench runs the same endpoints on the same table with three apps:
the rendered project as generated, the same project with its safety features switched off
through settings (reference a), and a hand-written app on the raw driver's pool (reference b).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rendering import Combination

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

# (concurrency, driver): every pairing the template offers.
STACK_NAMES = ("async-asyncpg", "async-psycopg", "sync-psycopg", "sync-psycopg2")
REFERENCE_MODULES = {
    "async-asyncpg": "asyncpg_app",
    "async-psycopg": "psycopg_async_app",
    "sync-psycopg": "psycopg_sync_app",
    "sync-psycopg2": "psycopg2_app",
}
# Packages the reference apps need beyond what the rendered project installs.
REFERENCE_EXTRAS = {"async-psycopg": ["psycopg-pool>=3.2"], "sync-psycopg": ["psycopg-pool>=3.2"]}

# Settings that switch the safety features off: pre-ping on checkout, the server-side timeouts
# (startup options, or SET LOCAL per transaction behind a pooler) and the concurrency cap.
SAFETY_OFF = {
    "DB_POOL_PRE_PING": "false",
    "DB_STATEMENT_TIMEOUT": "0",
    "DB_IDLE_IN_TRANSACTION_TIMEOUT": "0",
    "DB_LIMIT_CONCURRENCY": "false",
}

RENDERED = "rendered"
SAFETY_OFF_APP = "(a) safety off"
RAW_DRIVER_APP = "(b) raw driver"
APP_KINDS = (RENDERED, SAFETY_OFF_APP, RAW_DRIVER_APP)


@dataclass(frozen=True)
class Stack:
    name: str
    orm: str
    # Behave as behind a transaction pooler (DB_BEHIND_POOLER=true): timeouts by SET LOCAL
    # in every transaction, no prepared statements. The connection itself stays direct.
    behind_pooler: bool = False
    # The observability answer: its per-request cost is measured against "none".
    observability: str = "none"

    @property
    def label(self) -> str:
        label = f"{self.name}-pooler" if self.behind_pooler else self.name
        return label if self.observability == "none" else f"{label}-{self.observability}"

    @property
    def project_key(self) -> str:
        """Stacks behind a pooler share the project; another observability answer does not."""
        return self.name if self.observability == "none" else f"{self.name}-{self.observability}"

    @property
    def combination(self) -> Combination:
        concurrency, driver = self.name.split("-")
        deployment = {"deployment": "managed", "cloud_provider": "aws"}
        return Combination(
            concurrency, driver, self.orm, deployment, observability=self.observability
        )


@dataclass(frozen=True)
class App:
    stack: Stack
    kind: str
    project: Path

    @property
    def label(self) -> str:
        return f"{self.stack.label} {self.kind}"

    def command(self, port: int) -> list[str]:
        """One uvicorn worker (explicitly: uvicorn reads WEB_CONCURRENCY as its default)."""
        if self.kind == RAW_DRIVER_APP:
            target = ["--app-dir", str(REFERENCE_DIR), f"{REFERENCE_MODULES[self.stack.name]}:app"]
        else:
            target = [f"{self.stack.combination.package_name}.main:app"]
        return [
            "uvicorn",
            *target,
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers=1",
            "--no-access-log",
            "--log-level=warning",
        ]

    def environment(self) -> dict[str, str]:
        env = {"DB_BEHIND_POOLER": str(self.stack.behind_pooler).lower()}
        if self.kind == SAFETY_OFF_APP:
            env |= SAFETY_OFF
        return env
