"""Drive a bounded concurrent load against the app; print one JSON record per request.

Runs as a script in the rendered project's virtual environment (it needs only httpx), so the
load is generated in a process of its own, apart from the app and from the test.

    python load_driver.py --url http://127.0.0.1:8000 --concurrency 16 --duration 5 \
        --requests-per-client 1000 --item-ids 1,2,3

Each record: [start, end, status, method] with monotonic clock times (shared by every process
on the machine); status 0 means no HTTP answer (refused, reset, or the client's own timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx


async def client(
    number: int,
    http: httpx.AsyncClient,
    args: argparse.Namespace,
    deadline: float,
    records: list[list[object]],
) -> None:
    item_ids = [int(part) for part in args.item_ids.split(",") if part]
    for sequence in range(args.requests_per_client):
        if time.monotonic() >= deadline:
            return
        method, path, body = "GET", "/items?limit=5", None
        # Mostly reads, some writes: every fourth request of a client creates an item.
        if args.writes and sequence % 4 == 3:
            method, path = "POST", "/items"
            body = {"name": f"load-{os.getpid()}-{number}-{sequence}", "description": "load"}
        elif item_ids and sequence % 2 == 1:
            path = f"/items/{item_ids[(number + sequence) % len(item_ids)]}"
        started = time.monotonic()
        try:
            response = await http.request(method, path, json=body)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        records.append([started, time.monotonic(), status, method])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--requests-per-client", type=int, default=1_000_000)
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--item-ids", default="")
    parser.add_argument("--writes", action="store_true")
    args = parser.parse_args()

    records: list[list[object]] = []
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=args.url, timeout=args.request_timeout, limits=limits
    ) as http:
        deadline = time.monotonic() + args.duration
        await asyncio.gather(
            *(client(n, http, args, deadline, records) for n in range(args.concurrency))
        )
    for record in sorted(records, key=lambda record: record[0]):
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
