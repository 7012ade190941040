"""Serve a rendered project against a throwaway database, directly or through PgBouncer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rendering import ProjectEnvironments, run

from . import server
from .app import RunningApp
from .netns import NetworkNamespace
from .pgbouncer import POOL_SIZE, PgBouncer
from .project import Case, database_env, migrate, prepare
from .proxy import StallingProxy

SEED_ITEMS = 5


@dataclass
class Served:
    case: Case
    app: RunningApp
    postgres: Any
    database: str
    item_ids: list[int]
    pgbouncer: PgBouncer | None
    proxy: StallingProxy | None = None

    def backends(self) -> int:
        return len(server.backend_states(self.postgres, self.database))

    def sessions_started_before(self, epoch_seconds: float) -> int:
        return server.sessions_started_before(self.postgres, self.database, epoch_seconds)

    def assert_no_leaks(self) -> None:
        """No session left `idle in transaction`; no more connections than the pools allow."""
        stuck = server.idle_in_transaction(self.postgres, self.database)
        assert stuck == 0, f"{stuck} sessions idle in transaction"
        limit = self.app.connection_limit()
        if self.pgbouncer is None:
            backends = self.backends()
            assert backends <= limit, f"{backends} server sessions for a pool of {limit}"
        else:
            clients = self.pgbouncer.clients(self.app.env["APP_NAME"])
            assert clients <= limit, f"{clients} PgBouncer clients for a pool of {limit}"
            backends = self.backends()
            assert backends <= POOL_SIZE, f"{backends} server sessions for PgBouncer's {POOL_SIZE}"

    def wait_until_clean(self, timeout: float) -> None:
        """assert_no_leaks once the server has ended what a fault abandoned (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.assert_no_leaks()
                return
            except AssertionError:
                time.sleep(0.25)
        self.assert_no_leaks()

    def diagnostics(self) -> str:
        text = f"--- app log\n{self.app.log_tail(20)}"
        if self.pgbouncer is not None:
            text += f"\n--- pgbouncer log\n{self.pgbouncer.log_tail(8)}"
        return text


@contextmanager
def served_app(
    case: Case,
    postgres: Any,
    workdir: Path,
    environments: ProjectEnvironments,
    *,
    database: str,
    namespace: NetworkNamespace | None = None,
    through_proxy: bool = False,
    before_serving: Sequence[Sequence[str]] = (),
    pgbouncer_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[Served]:
    """Render, migrate and serve; behind PgBouncer for the Neon pooled profile.

    With a namespace the app runs inside it and reaches the server (or PgBouncer) at the
    namespace's host address, where the cluster must listen too. With through_proxy a
    StallingProxy sits between the app and the server (or PgBouncer). The `before_serving`
    commands run in the project with the app's environment before it starts, as `make serve`'s
    steps before uvicorn do. `pgbouncer_options` go to PgBouncer (another executable, settings).
    """
    project, env = prepare(case, workdir, environments)
    direct_url = postgres.create_database(database)
    migrate(project, env | database_env(case, direct_url))
    host = namespace.host_address if namespace else "127.0.0.1"
    with ExitStack() as stack:
        # A case's app may be started again (pytest -k, reruns): its database goes with it.
        stack.callback(postgres.execute, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        pgbouncer = proxy = None
        upstream = ("127.0.0.1", postgres.port)
        if case.pooled:
            listen = ("127.0.0.1", host) if namespace else ("127.0.0.1",)
            pgbouncer = stack.enter_context(
                PgBouncer(postgres, listen, **(pgbouncer_options or {}))
            )
            upstream = ("127.0.0.1", pgbouncer.port)
        address = (host, upstream[1])
        if through_proxy:
            proxy = stack.enter_context(StallingProxy(host, *upstream))
            address = (host, proxy.port)
        url = direct_url.replace(f"@127.0.0.1:{postgres.port}/", "@{}:{}/".format(*address))
        app_env = env | database_env(case, url, direct_url=direct_url, **overrides)
        for command in before_serving:
            run(list(command), project, app_env)
        log_file = workdir / f"{database}.app.log"
        app = stack.enter_context(
            RunningApp(project, case.combination.package_name, app_env, log_file, namespace)
        )
        item_ids = []
        for number in range(SEED_ITEMS):
            status, body = app.post("/items", {"name": f"seed-{number}"})
            assert status == 201, (status, body, app.log_tail())
            item_ids.append(body["id"])
        yield Served(case, app, postgres, database, item_ids, pgbouncer, proxy)
