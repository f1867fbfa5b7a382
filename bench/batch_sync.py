"""JSON batch sync throughput: 10,000 small submissions in batches of 500 (the default limit),
then the same batches again (every item a duplicate, as after a client retry)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import BenchEnv, bench_env, count_submissions, load_average
from tests.factories import batch_item, new_instance_id, visit_data


def batches(n: int, size: int) -> list[bytes]:
    items = [batch_item(new_instance_id(), data=visit_data(workers=i, lat=-2.5 + i * 1e-5)) for i in range(n)]
    return [json.dumps({"device": "bench", "items": items[i:i + size]}).encode() for i in range(0, n, size)]


def _send(env: BenchEnv, payloads: list[bytes], clients: int, expect: str) -> float:
    headers = {"Authorization": f"Bearer {env.device_token}", "Content-Type": "application/json"}

    def post(body: bytes) -> None:
        with httpx.Client(base_url=env.url, timeout=300, headers=headers) as client:
            response = client.post("/api/v1/sync/batches", content=body)
        if response.status_code != 200:
            raise RuntimeError(f"batch answered {response.status_code}: {response.text[:300]}")
        statuses = {r["status"] for r in response.json()["results"]}
        if statuses != {expect}:
            raise RuntimeError(f"expected only {expect}, got {statuses}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, payloads))
    return time.perf_counter() - start


def main(pg_url: str | None = None, *, quick: bool = False, workers: int | None = None) -> list[dict]:
    """``workers`` None: ``asmfield serve`` with the worker count it picks for the database."""
    n, size = (2000, 500) if quick else (10_000, 500)
    rows = []
    with bench_env(pg_url=pg_url, workers=workers) as env:
        _send(env, batches(50, 50), 1, "created")  # warm-up
        for clients in (1, 2):
            payloads = batches(n, size)
            before = count_submissions(env)
            created = _send(env, payloads, clients, "created")
            stored = count_submissions(env) - before
            again = _send(env, payloads, clients, "duplicate")
            rows.append({"db": env.db_label, "case": f"{n} items, batches of {size}, {clients} client(s)",
                         "stored": stored, "created_per_second": round(n / created, 1),
                         "duplicate_per_second": round(n / again, 1), "seconds": round(created, 2),
                         "load1": load_average(), "workers": workers if workers is not None else "serve default"})
    return rows
