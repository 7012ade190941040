"""With observability=opentelemetry, every uvicorn worker exports its own traces and pool figures.

Per driver, a project rendered with OpenTelemetry serves with 2 workers, exporting over OTLP to
a collector stand-in (otlp_collector.py), the load coming from another process. Each worker
must export under its own service.instance.id, so that their figures add up instead of
overwriting each other: the sum over the workers must agree with the server's own sessions.
Each statement's span must belong to the trace of the request that ran it. With the rendered
defaults (metrics every 60 s, spans in batches), stopping the app must still deliver both
workers' figures: the shutdown flushes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from otlp_collector import Collector
from test_metrics_across_workers import app_sessions

from faults.app import WORKERS
from faults.fixtures import as_params
from faults.load import run_load
from faults.project import Case, cases
from faults.serve import served_app
from rendering import ProjectEnvironments

CASES = as_params(
    Case(replace(case.combination, observability="opentelemetry"), "otel")
    for case in cases(profiles=("managed",))
)
EXPORT_MILLISECONDS = 300
STATEMENT_KEYS = {"db.statement", "db.query.text"}
INSTANCE = "service.instance.id"


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.close()


@pytest.fixture
def serve(
    postgres: Any,
    tmp_path: Path,
    fault_environments: ProjectEnvironments,
    collector: Collector,
) -> Callable[..., Any]:
    """`make serve`'s steps for a case: the OTEL_* check, then uvicorn with 2 workers."""

    def serving(case: Case, **overrides: Any) -> Any:
        return served_app(
            case,
            postgres,
            tmp_path,
            fault_environments,
            database=case.database,
            before_serving=[["python", "-m", f"{case.combination.package_name}.telemetry"]],
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            **overrides,
        )

    return serving


def latest_pool_figures(collector: Collector) -> dict[str, dict[str, int]]:
    """Each worker's last export of db.client.connection.count, by state, for the primary."""
    figures: dict[str, dict[str, int]] = {}
    for export in collector.metrics():
        for resource in export.resource_metrics:
            attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
            for metric in (m for scope in resource.scope_metrics for m in scope.metrics):
                if metric.name == "db.client.connection.count":
                    figures[attributes[INSTANCE]] = by_state(metric)
    return figures


def by_state(metric: Metric) -> dict[str, int]:
    states = {}
    for point in metric.sum.data_points:
        attributes = {a.key: a.value.string_value for a in point.attributes}
        if attributes["db.client.connection.pool.name"] == "primary":
            states[attributes["db.client.connection.state"]] = point.as_int
    return states


def spans(collector: Collector) -> list[tuple[str, Any]]:
    """(the exporting worker's instance id, span) for every span received."""
    return [
        ({a.key: a.value.string_value for a in resource.resource.attributes}[INSTANCE], span)
        for export in collector.traces()
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


@pytest.mark.parametrize("case", CASES)
def test_both_workers_export_their_own_figures_which_sum_to_the_servers_sessions(
    case: Case, serve: Callable[..., Any], collector: Collector
) -> None:
    shortened = {
        "OTEL_METRIC_EXPORT_INTERVAL": EXPORT_MILLISECONDS,
        "OTEL_BSP_SCHEDULE_DELAY": EXPORT_MILLISECONDS,
    }
    with serve(case, **shortened) as served:
        result = run_load(served.app, concurrency=32, duration=3, item_ids=served.item_ids)
        time.sleep(3 * EXPORT_MILLISECONDS / 1000)
        figures = latest_pool_figures(collector)
        sessions = app_sessions(served)
        per_worker = served.app.pool_limit() // WORKERS

    assert result.failures == [], result.summary()
    assert len(figures) == WORKERS, figures
    # Each worker reports its own pool, which served part of the load.
    assert all(states["used"] == 0 < states["idle"] for states in figures.values()), figures
    connections = sum(states["used"] + states["idle"] for states in figures.values())
    assert connections <= WORKERS * per_worker, figures
    # The server's sessions: the pools' connections, and a readiness connection per worker.
    assert connections <= sessions <= connections + WORKERS
    received = spans(collector)
    requests = {span.trace_id for _, span in received if span.kind == span.SPAN_KIND_SERVER}
    statements = [
        span
        for _, span in received
        if any(attribute.key in STATEMENT_KEYS for attribute in span.attributes)
    ]
    assert len({instance for instance, _ in received}) == WORKERS
    assert len(requests) >= len(result.requests)
    assert statements and all(span.trace_id in requests for span in statements)
    assert all(span.parent_span_id for span in statements)


@pytest.mark.parametrize("case", CASES)
def test_with_the_rendered_defaults_stopping_the_app_delivers_both_workers_figures(
    case: Case, serve: Callable[..., Any], collector: Collector
) -> None:
    """The defaults export metrics once a minute: a 2 s run is delivered by the shutdown."""
    with serve(case) as served:
        result = run_load(served.app, concurrency=8, duration=2, item_ids=served.item_ids)
        exported_while_serving = collector.metrics()
    figures = latest_pool_figures(collector)

    assert result.failures == [], result.summary()
    assert exported_while_serving == []
    assert len(figures) == WORKERS, figures
    assert all(states["used"] == 0 for states in figures.values()), figures
    assert len({instance for instance, _ in spans(collector)}) == WORKERS
