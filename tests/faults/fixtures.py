"""Fixtures shared by the resilience tests (a pytest plugin; tests/conftest.py loads it)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rendering import ProjectEnvironments

from .load import Load
from .netns import NetworkNamespace, network_namespace
from .pgbouncer import INSTALL_HINT as PGBOUNCER_INSTALL_HINT
from .pgbouncer import find_pgbouncer
from .project import Case
from .serve import Served, served_app


def as_params(cases: Iterable[Case], group: str = "") -> list[Any]:
    """Cases as test parameters, marked `faults` (`pytest -m "not faults"` leaves them out).

    The tests of one case form an xdist group, so that they run in one worker and share its
    app (or rig).
    """
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.faults, pytest.mark.xdist_group(group + case.id)],
        )
        for case in cases
    ]


SHARED_FIXTURES = ("served", "fault_rig")
LEAVE_OUT = 'Without it, leave the fault suite out: pytest -m "not faults".'


def _shared_case(item: pytest.Item) -> str | None:
    params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    for name in SHARED_FIXTURES:
        if name in params:
            return f"{name}:{params[name].id}"
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests of one case back to back, so that its app or rig starts once.

    pytest's own reordering interleaves cases across modules; this sorts only the tests that
    share these fixtures, among the places they already hold (stable, so a case's tests keep
    their order), the same way in every xdist worker.
    """
    keyed = [(index, key) for index, item in enumerate(items) if (key := _shared_case(item))]
    moved = [items[index] for index, _ in sorted(keyed, key=lambda pair: pair[1])]
    for (index, _), item in zip(keyed, moved, strict=True):
        items[index] = item


@pytest.fixture(scope="session")
def fault_environments(tmp_path_factory: pytest.TempPathFactory) -> ProjectEnvironments:
    """One virtual environment per dependency set for every rendered app of this process."""
    return ProjectEnvironments(tmp_path_factory.mktemp("fault-venvs"))


@pytest.fixture(scope="session")
def served(
    request: pytest.FixtureRequest,
    postgres: Any,
    tmp_path_factory: pytest.TempPathFactory,
    fault_environments: ProjectEnvironments,
) -> Iterator[Served]:
    """The app of one case (indirect parameter), shared by the tests of that case."""
    case: Case = request.param
    if case.pooled and find_pgbouncer() is None:
        # A failure, not a skip: a skipped fault test would pass without testing anything.
        pytest.fail(f"{PGBOUNCER_INSTALL_HINT}. {LEAVE_OUT}")
    workdir = tmp_path_factory.mktemp(case.id)
    with served_app(case, postgres, workdir, fault_environments, database=case.database) as app:
        yield app


# Client timeouts shortened through the rendered settings' environment, so that each fault
# outlasts them: a request must end by a deadline, not when the fault ends.
SHORT_TIMEOUTS = {
    "DB_CONNECT_TIMEOUT": 2,
    "DB_POOL_TIMEOUT": 2,
    "DB_STATEMENT_TIMEOUT": 2,
    "DB_IDLE_IN_TRANSACTION_TIMEOUT": 5,
    "DB_TCP_USER_TIMEOUT": 3,
    "DB_KEEPALIVES_IDLE": 1,
    "DB_KEEPALIVES_INTERVAL": 1,
    "DB_KEEPALIVES_COUNT": 3,
    "HEALTH_TIMEOUT": 1,
}


# The rendered defaults of the same settings (settings.py); test_fault_settings.py checks them
# against the rendered README. The fault rig runs an app with these beside the shortened one.
DEFAULT_TIMEOUTS = {
    "DB_CONNECT_TIMEOUT": 5,
    "DB_POOL_TIMEOUT": 5,
    "DB_STATEMENT_TIMEOUT": 5,
    "DB_IDLE_IN_TRANSACTION_TIMEOUT": 60,
    "DB_TCP_USER_TIMEOUT": 8,
    "DB_KEEPALIVES_IDLE": 60,
    "DB_KEEPALIVES_INTERVAL": 10,
    "DB_KEEPALIVES_COUNT": 5,
    "HEALTH_TIMEOUT": 2,
    "DB_CHECKOUT_TEST_TIMEOUT": 2,
    "DB_CHECKOUT_TEST_AFTER": 1,
}
# With the defaults no request waits longer than this for the database, whatever the fault
# (issue 16); the tests allow 1 s more for the HTTP round trip and a loaded machine.
DEFAULT_REQUEST_BOUND_SECONDS = 10
# The rendered settings.py's DEADLINE_MARGIN_SECONDS.
DEADLINE_MARGIN_SECONDS = 2


def command_timeout(timeouts: dict[str, float] = SHORT_TIMEOUTS) -> float:
    """The client-side deadline for one answer (the rendered deadline.py)."""
    return timeouts["DB_STATEMENT_TIMEOUT"] + DEADLINE_MARGIN_SECONDS


def request_bound(timeouts: dict[str, float], derived: float) -> float:
    """`derived` from the timeouts; with the defaults, at most the promised 10 s plus 1 s."""
    if timeouts is DEFAULT_TIMEOUTS:
        return min(derived, DEFAULT_REQUEST_BOUND_SECONDS + 1.0)
    return derived


@dataclass
class FaultRig:
    """A cluster of its own, a network namespace, and two apps of one project inside it: one
    with short timeouts (`served`), one with the rendered defaults (`defaults`)."""

    case: Case
    namespace: NetworkNamespace
    cluster: Any
    served: Served
    defaults: Served
    workdir: Path
    environments: ProjectEnvironments

    def apps(self) -> list[tuple[Served, dict[str, float]]]:
        """Each app with the timeouts it runs with, to be put under the same fault at once."""
        return [(self.served, SHORT_TIMEOUTS), (self.defaults, DEFAULT_TIMEOUTS)]

    @contextmanager
    def under_load(self, *, concurrency: int, duration: float) -> Iterator[list[Load]]:
        """Load from other processes on both apps at once, in the order of apps(); the app with
        the defaults gets half the concurrency, to spare the machine's cores."""
        with ExitStack() as stack:
            loads = []
            for (served, _), share in zip(self.apps(), (1, 2), strict=True):
                load = Load(
                    served.app,
                    concurrency=max(concurrency // share, 1),
                    duration=duration,
                    item_ids=served.item_ids,
                )
                loads.append(stack.enter_context(load))
            yield loads

    @contextmanager
    def app_through_proxy(self, timeouts: dict[str, float] = SHORT_TIMEOUTS) -> Iterator[Served]:
        """A second app of the same project whose every connection passes a StallingProxy.

        Its timeouts are SHORT_TIMEOUTS unless given; {} leaves the rendered defaults.
        """
        name = "proxied" if timeouts else "proxied_defaults"
        with served_app(
            self.case, self.cluster, self.workdir / name, self.environments,
            database=f"{self.case.database}_{name}", namespace=self.namespace,
            through_proxy=True, **timeouts,
        ) as served:  # fmt: skip
            yield served


@pytest.fixture(scope="session")
def fault_rig(
    request: pytest.FixtureRequest,
    local_postgres_module: Any,
    tmp_path_factory: pytest.TempPathFactory,
    fault_environments: ProjectEnvironments,
) -> Iterator[FaultRig]:
    """The full fault set's rig for one case (indirect parameter): restarts hit only it."""
    case: Case = request.param
    if os.geteuid() != 0:
        pytest.fail(
            f"the fault rig needs root (network namespaces, PostgreSQL as `postgres`). {LEAVE_OUT}"
        )
    workdir = tmp_path_factory.mktemp(f"full-{case.id}")
    with network_namespace() as namespace:
        cluster = local_postgres_module.LocalPostgres(
            ssl=True, settings={"listen_addresses": f"127.0.0.1,{namespace.host_address}"}
        )
        try:
            cluster.start()
            hba = cluster.data_dir / "pg_hba.conf"
            hba.write_text(
                hba.read_text() + f"hostssl all all {namespace.inner_address}/32 scram-sha-256\n"
            )
            cluster.execute("SELECT pg_reload_conf()")
            with served_app(
                case, cluster, workdir / "app", fault_environments, database=case.database,
                namespace=namespace, **SHORT_TIMEOUTS,
            ) as served, served_app(
                case, cluster, workdir / "defaults", fault_environments,
                database=f"{case.database}_defaults", namespace=namespace,
            ) as defaults:  # fmt: skip
                yield FaultRig(
                    case, namespace, cluster, served, defaults, workdir, fault_environments
                )
        finally:
            cluster.stop()
