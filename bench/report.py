"""Medians over rounds, and the markdown tables the bench prints and writes."""

from __future__ import annotations

import os
import platform
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.cpu import cpu_model
from bench.projects import Project
from bench.stacks import APP_KINDS, RAW_DRIVER_APP, RENDERED, SAFETY_OFF_APP

ENDPOINTS = {"get": "GET /items/{id}", "post": "POST /items"}


@dataclass
class Measurement:
    stack: str
    kind: str
    endpoint: str
    round: int
    result: dict[str, Any]


@dataclass
class Row:
    stack: str
    endpoint: str
    kind: str
    rps: float
    p50_ms: float
    p99_ms: float
    app_cpu_ms: float
    db_cpu_ms: float
    statements: float
    connections_per_1000: float
    errors: int
    # Medians over the rounds of this app's req/s ÷ the reference's in the same round.
    vs_safety_off: float | None
    vs_raw_driver: float | None
    error_samples: list[str] = field(default_factory=list)


def summarise(measurements: Iterable[Measurement]) -> list[Row]:
    """One row per stack, endpoint and app: the median of each figure over the rounds."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    rps: dict[tuple[str, str, str, int], float] = {}
    for m in measurements:
        grouped[(m.stack, m.endpoint, m.kind)].append(m.result)
        rps[(m.stack, m.endpoint, m.kind, m.round)] = m.result["rps"]

    def ratio(stack: str, endpoint: str, kind: str, reference: str) -> float | None:
        ratios = [
            value / rps[(stack, endpoint, reference, round_)]
            for (s, e, k, round_), value in rps.items()
            if (s, e, k) == (stack, endpoint, kind)
            and rps.get((stack, endpoint, reference, round_))
        ]
        return statistics.median(ratios) if ratios else None

    rows = []
    for (stack, endpoint, kind), results in grouped.items():
        rows.append(
            Row(
                stack,
                endpoint,
                kind,
                statistics.median(r["rps"] for r in results),
                statistics.median(r["p50_ms"] for r in results),
                statistics.median(r["p99_ms"] for r in results),
                statistics.median(r["app_cpu_ms"] for r in results),
                statistics.median(r["db_cpu_ms"] for r in results),
                statistics.median(r["statements"] for r in results),
                statistics.median(r["connections_per_1000"] for r in results),
                sum(r["errors"] for r in results),
                ratio(stack, endpoint, kind, SAFETY_OFF_APP),
                ratio(stack, endpoint, kind, RAW_DRIVER_APP),
                [sample for r in results for sample in r["error_samples"]][:3],
            )
        )
    order = {kind: index for index, kind in enumerate(APP_KINDS)}
    endpoints = list(ENDPOINTS)
    rows.sort(key=lambda r: (r.stack, endpoints.index(r.endpoint), order[r.kind]))
    return rows


def throughput_table(rows: list[Row]) -> str:
    lines = [
        "| stack | endpoint | app | req/s | ÷ (a) | ÷ (b) | p50 ms | p99 ms "
        "| app CPU ms/req | db CPU ms/req | statements/req | new connections/1000 req | errors |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratios = [f"{x:.2f}" if x is not None else "-" for x in (r.vs_safety_off, r.vs_raw_driver)]
        lines.append(
            f"| {r.stack} | {ENDPOINTS[r.endpoint]} | {r.kind} | {r.rps:.0f} | {ratios[0]} "
            f"| {ratios[1]} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.app_cpu_ms:.2f} "
            f"| {r.db_cpu_ms:.2f} | {r.statements:.1f} | {r.connections_per_1000:.1f} "
            f"| {r.errors} |"
        )
    return "\n".join(lines)


def safety_table(rows: list[Row]) -> str:
    """What the safety features cost: the rendered app against (a), per stack and endpoint."""
    by_key = {(r.stack, r.endpoint, r.kind): r for r in rows}
    lines = [
        "| stack | endpoint | throughput lost (1 - rendered ÷ (a)) "
        "| extra app CPU per request | extra CPU per request, app + db "
        "| extra statements per request |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        off = by_key.get((r.stack, r.endpoint, SAFETY_OFF_APP))
        if r.kind != RENDERED or off is None or r.vs_safety_off is None:
            continue
        extra_cpu = r.app_cpu_ms + r.db_cpu_ms - off.app_cpu_ms - off.db_cpu_ms
        lines.append(
            f"| {r.stack} | {ENDPOINTS[r.endpoint]} | {1 - r.vs_safety_off:.1%} "
            f"| {r.app_cpu_ms - off.app_cpu_ms:+.2f} ms "
            f"| {extra_cpu:+.2f} ms ({extra_cpu / (off.app_cpu_ms + off.db_cpu_ms):+.0%}) "
            f"| {r.statements - off.statements:+.1f} |"
        )
    return "\n".join(lines)


def timings_table(projects: list[Project]) -> str:
    lines = [
        "| stack | `copier copy` s | install s | own test suite s | tests |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for p in projects:
        suite = f"{p.suite_seconds:.1f}" if p.suite_seconds is not None else "not run"
        lines.append(
            f"| {p.stack.name} | {p.copier_seconds:.1f} | {p.install_seconds:.1f} | {suite} "
            f"| {p.suite_result} |"
        )
    return "\n".join(lines)


def write_report(
    args: Any,
    rows: list[Row],
    projects: list[Project],
    versions: dict[str, str],
    profile_section: str,
    other_programs_cores: float,
    wall_seconds: float,
) -> str:
    """The whole report as markdown, also written to args.out/results.md."""
    lines = [
        f"# Benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"PostgreSQL over TLS on 127.0.0.1. Other programs kept {other_programs_cores:.2f} "
        f"cores busy on average while this run measured. Whole run: {wall_seconds / 60:.1f} min.",
        "",
        f"Load: {args.concurrency} requests in flight, {args.rounds} rounds of "
        f"{args.duration:g} s per app and endpoint (medians; the ratios are medians of the "
        f"ratios within a round), {args.workers} uvicorn processes per app, ORM {args.orm}, "
        f"a pool of {args.concurrency} per process for every app.",
        "",
        throughput_table(rows),
        "",
    ]
    lines += ["What the safety features cost (target: at most 5% of throughput):", ""]
    lines += [safety_table(rows), ""]
    lines += [
        timings_table(projects),
        "",
        "Versions: "
        + ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        + ".",
        "",
    ]
    if profile_section:
        lines += [profile_section, ""]
    report = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report)
    return report
