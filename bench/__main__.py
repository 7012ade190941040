"""`python -m bench`: render every stack, measure it against its two references, report.

One run: a throwaway PostgreSQL (TLS, SCRAM), each driver x concurrency stack rendered with
`copier copy` and installed, its own test suite timed, three apps per stack served by uvicorn
and loaded in turn from a separate process for several rounds, and a py-spy profile of the
slowest stack. The report is printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from local_postgres import LocalPostgres
from otlp_collector import Collector

from bench import REPOSITORY_ROOT, profile
from bench.cpu import machine_busy_seconds, tree_cpu_seconds
from bench.load import LoadDriver
from bench.projects import (
    SEED_ITEMS,
    Project,
    library_versions,
    migrate_and_seed,
    render_and_install,
    time_test_suite,
)
from bench.report import ENDPOINTS, Measurement, Row, summarise, write_report
from bench.servers import Server, Service
from bench.stacks import APP_KINDS, RENDERED, STACK_NAMES, App, Stack
from rendering import OBSERVABILITY, ORMS, ProjectEnvironments, free_port

# At least; more when every app's workers may hold a full pool at once (see max_connections).
MAX_CONNECTIONS = 500
PROFILE_RATE = 500
# py-spy samples threads that run or wait for a core. With the cores saturated, waiting ones
# pile up where a worker hands the core to PostgreSQL; with one request per worker they do not.
PROFILE_CONCURRENCY = 2
OBSERVABILITY_CHOICES = [answer for answer in OBSERVABILITY if answer != "none"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--stacks", default=",".join(STACK_NAMES), help="comma-separated (default: all)"
    )
    parser.add_argument("--orm", choices=ORMS, default="sqlmodel")
    parser.add_argument(
        "--pooler",
        action="store_true",
        help="also run each stack as if behind a transaction pooler (DB_BEHIND_POOLER=true: "
        "timeouts by SET LOCAL in every transaction, no prepared statements)",
    )
    parser.add_argument(
        "--observability",
        default="",
        help="also run each stack rendered with these observability answers, comma-separated: "
        f"{', '.join(OBSERVABILITY_CHOICES)} (opentelemetry exports to a local OTLP endpoint)",
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per app and endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes per app")
    parser.add_argument("--no-suites", action="store_true", help="skip the projects' own tests")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.stacks = args.stacks.split(",")
    if unknown := set(args.stacks) - set(STACK_NAMES):
        parser.error(f"unknown stacks {sorted(unknown)}; choose from {', '.join(STACK_NAMES)}")
    args.observability = [answer for answer in args.observability.split(",") if answer]
    if unknown := set(args.observability) - set(OBSERVABILITY_CHOICES):
        parser.error(
            f"unknown observability {sorted(unknown)}; choose from "
            f"{', '.join(OBSERVABILITY_CHOICES)}"
        )
    return args


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """Everything one run starts, stopped by `cleanup` whatever happens."""

    def __init__(self, args: argparse.Namespace, cleanup: ExitStack, stacks: int) -> None:
        self.args = args
        # Apps keep their pools between rounds: every worker of every app may hold
        # `concurrency` connections, and one for readiness.
        apps = stacks * len(APP_KINDS) * args.workers
        self.max_connections = max(MAX_CONNECTIONS, apps * (args.concurrency + 1) + 20)
        self.cleanup = cleanup
        self.workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        (self.workdir / "logs").mkdir()
        progress("starting PostgreSQL")
        self.cluster = cleanup.enter_context(
            LocalPostgres(
                ssl=True,
                settings={
                    "max_connections": str(self.max_connections),
                    # Counts the statements each request costs the server (round trips).
                    "shared_preload_libraries": "pg_stat_statements",
                    # Counts the connections each app opens under load (churn).
                    "log_connections": "on",
                },
            )
        )
        self.cluster.execute("CREATE EXTENSION pg_stat_statements")
        self.environments = ProjectEnvironments(self.workdir / "venvs")
        self.projects: dict[str, Project] = {}
        self.servers: dict[App, Service] = {}
        self.databases: dict[App, str] = {}
        self.driver: LoadDriver | None = None
        self.collector: Collector | None = None
        self.labels = (f"job{n}" for n in itertools.count())
        # Cores that programs outside this run kept busy while it measured (noise).
        self.other_programs_cores = 0.0

    def prepare(self, stacks: list[Stack]) -> None:
        for stack in stacks:
            name = stack.project_key
            if name in self.projects:
                continue
            progress(f"{name}: copier copy, uv sync")
            project = render_and_install(stack, self.workdir, self.environments)
            if not self.args.no_suites:
                progress(f"{name}: the project's own test suite")
                time_test_suite(project, self.cluster, f"suite_{name.replace('-', '_')}")
            self.projects[name] = project

    def serve(self, stacks: list[Stack]) -> None:
        """Start every app at once (they start faster side by side), then wait for each."""
        for stack in stacks:
            project = self.projects[stack.project_key]
            database = "bench_" + stack.label.replace("-", "_")
            url = migrate_and_seed(project, self.cluster, database)
            for kind in APP_KINDS:
                app = App(stack, kind, project.path)
                progress(f"starting {app.label}")
                self.servers[app] = self.start(app, project, url)
                self.databases[app] = database
        for service in self.servers.values():
            service.wait_ready("/items/1")
        self.driver = LoadDriver(REPOSITORY_ROOT)
        self.cleanup.callback(self.driver.close)

    def start(self, app: App, project: Project, url: str) -> Service:
        env = {
            **project.env,
            "DATABASE_URL": url,
            "APP_INSTANCES": "1",
            "WEB_CONCURRENCY": str(self.args.workers),
            # Stopped between rounds: no load balancer to drain for.
            "DRAIN_SECONDS": "0",
            "DB_MAX_CONNECTIONS": str(self.max_connections),
            # Every app gets the same pool, big enough for all requests in flight even if
            # they all reach one worker: the pool never decides the result.
            "DB_POOL_SIZE": str(self.args.concurrency),
            "DB_MAX_OVERFLOW": "0",
            "LOG_LEVEL": "WARNING",
            **app.environment(),
        }
        if app.stack.observability == "opentelemetry":
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint()
        servers = []
        for worker in range(self.args.workers):
            port = free_port()
            log = self.workdir / "logs" / f"{app.label.replace(' ', '_')}-{worker}.log"
            servers.append(Server(app.command(port), project.path, env, port, log))
            self.cleanup.callback(servers[-1].stop)
        return Service(servers)

    def otlp_endpoint(self) -> str:
        if self.collector is None:
            self.collector = Collector(keep=False)
            self.cleanup.callback(self.collector.close)
        return self.collector.endpoint

    def load(
        self, app: App, endpoint: str, seconds: float, concurrency: int | None = None
    ) -> dict[str, Any]:
        """Drive load at one app; add the app's and the database's CPU per request."""
        assert self.driver is not None
        service = self.servers[app]
        postmaster = self.postmaster()
        app_cpu, db_cpu = sum(map(tree_cpu_seconds, service.pids)), tree_cpu_seconds(postmaster)
        statements = self.statements_run(self.databases[app])
        connections = self.connections_opened(self.databases[app])
        result = self.driver.run(
            base_urls=service.base_urls,
            endpoint=endpoint,
            concurrency=concurrency or self.args.concurrency,
            duration=seconds,
            item_ids=SEED_ITEMS,
            label=next(self.labels),
        )
        answered = max(result["requests"] + result["errors"], 1)
        app_cpu = sum(map(tree_cpu_seconds, service.pids)) - app_cpu
        result["app_cpu_ms"] = app_cpu * 1000 / answered
        result["db_cpu_ms"] = (tree_cpu_seconds(postmaster) - db_cpu) * 1000 / answered
        result["statements"] = (self.statements_run(self.databases[app]) - statements) / answered
        opened = self.connections_opened(self.databases[app]) - connections
        result["connections_per_1000"] = 1000 * opened / answered
        return result

    def connections_opened(self, database: str) -> int:
        """Connections made to `database` so far, from the server's log: it writes each line as
        the connection is made (pg_stat_database counts them only when it next flushes)."""
        log = self.cluster.log_file.read_text(errors="replace")
        return log.count(f" database={database} ") + log.count(f" database={database}\n")

    def statements_run(self, database: str) -> int:
        """Statements the server has executed in `database` so far (BEGIN and COMMIT count)."""
        total = self.cluster.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}')"
        )
        return int(total.strip())

    def our_cpu_seconds(self) -> float:
        """CPU of everything this run started: apps, PostgreSQL, the load driver, itself."""
        assert self.driver is not None
        roots = [pid for service in self.servers.values() for pid in service.pids]
        roots += [self.postmaster(), self.driver.process.pid]
        # Itself and the commands it ran and reaped (psql); not its live children, counted above.
        own = sum(os.times()[:4])
        return own + sum(tree_cpu_seconds(root) for root in roots)

    def postmaster(self) -> int:
        return int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])

    def measure(self) -> list[Measurement]:
        busy, ours, started = machine_busy_seconds(), self.our_cpu_seconds(), time.monotonic()
        progress("warming up")
        apps = list(self.servers)
        for app in apps:
            for endpoint in ENDPOINTS:
                self.load(app, endpoint, self.args.warmup)
        stacks = list(dict.fromkeys(app.stack for app in apps))
        measurements = []
        for round_index in range(self.args.rounds):
            progress(f"round {round_index + 1} of {self.args.rounds}")
            # The apps of a stack run back to back, so the ratios compare like with like;
            # each round starts at another stack and another app, so drift hits all alike.
            for stack in rotate(stacks, round_index):
                for endpoint in ENDPOINTS:
                    for app in rotate([a for a in apps if a.stack == stack], round_index):
                        result = self.load(app, endpoint, self.args.duration)
                        measurements.append(
                            Measurement(stack.label, app.kind, endpoint, round_index, result)
                        )
        others = (machine_busy_seconds() - busy) - (self.our_cpu_seconds() - ours)
        self.other_programs_cores = max(others, 0) / (time.monotonic() - started)
        return measurements

    def profile_slowest(self, rows: list[Row]) -> str:
        """Profile the three apps of the slowest stack (the rendered app's lowest throughput)."""
        rendered = [r for r in rows if r.kind == RENDERED]
        slowest = min(
            {r.stack for r in rendered},
            key=lambda s: sum(r.rps for r in rendered if r.stack == s),
        )
        profiles = []
        for app in self.servers:
            if app.stack.label == slowest:
                progress(f"profiling {app.label}")
                profiles.append(self.profile_app(app))
        return profile.report(slowest, profiles)

    def profile_app(self, app: App) -> profile.Profile:
        seconds = 2 * self.args.duration  # fewer requests in flight: sample a while longer
        name = f"profile-{app.label.replace(' ', '_')}"
        raw = [self.args.out / f"{name}-{n}.txt" for n in range(len(self.servers[app].pids))]
        recorders = [
            profile.start_recording(pid, math.ceil(2 * seconds + 2), output, PROFILE_RATE)
            for pid, output in zip(self.servers[app].pids, raw, strict=True)
        ]
        time.sleep(1)  # py-spy attaches to every worker before the load starts
        results = [self.load(app, endpoint, seconds, PROFILE_CONCURRENCY) for endpoint in ENDPOINTS]
        for recorder in recorders:
            _, errors = recorder.communicate(timeout=60)
            if recorder.returncode != 0:
                raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
        requests = sum(r["requests"] for r in results)
        cpu_ms = sum(r["app_cpu_ms"] * r["requests"] for r in results) / max(requests, 1)
        package = app.stack.combination.package_name
        return profile.load(raw, app.kind, cpu_ms, package)


def rotate(items: list[Any], by: int) -> list[Any]:
    by %= len(items)
    return items[by:] + items[:by]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    stacks = [Stack(name, args.orm) for name in args.stacks]
    if args.pooler:
        stacks += [Stack(name, args.orm, behind_pooler=True) for name in args.stacks]
    for answer in args.observability:
        stacks += [Stack(name, args.orm, observability=answer) for name in args.stacks]
    args.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        bench = Bench(args, cleanup, len(stacks))
        bench.prepare(stacks)
        bench.serve(stacks)
        measurements = bench.measure()
        if bench.collector is not None:
            progress(f"the OpenTelemetry apps sent {bench.collector.exports} OTLP exports")
        rows = summarise(measurements)
        profile_section = "" if args.no_profile else bench.profile_slowest(rows)
        projects = list(bench.projects.values())
        versions = {"PostgreSQL": bench.cluster.execute("SHOW server_version").strip()}
        for project in projects:
            versions |= library_versions(project)
    report = write_report(
        args,
        rows,
        projects,
        versions,
        profile_section,
        bench.other_programs_cores,
        time.perf_counter() - started,
    )
    (args.out / "results.json").write_text(json.dumps([m.__dict__ for m in measurements]))
    print(report)
    progress(f"written to {args.out}")
    return 1 if any(row.errors for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
