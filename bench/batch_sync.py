"""JSON batch sync throughput: 10,000 small submissions in batches of 500 (the default limit),
then the same batches again (every item a duplicate, as after a client retry)."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.harness import BenchEnv, bench_env, count_submissions, load_average
from tests.factories import batch_item, new_instance_id, visit_data


def batches(n: int, size: int) -> list[bytes]:
    items = [batch_item(new_instance_id(), data=visit_data(workers=i, lat=-2.5 + i * 1e-5)) for i in range(n)]
    return [json.dumps({"device": "bench", "items": items[i:i + size]}).encode() for i in range(0, n, size)]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``asmfield serve`` starts uvicorn workers under it)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (Linux ``/proc``)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(env: BenchEnv) -> float:
    """CPU seconds used so far by the server and its workers: the machine is shared, so CPU per item
    is steadier than wall time. With SQLite this is all of it; PostgreSQL's share is ``database_cpu_seconds``."""
    return _cpu_seconds(_tree(env.server.process.pid))


def database_cpu_seconds(env: BenchEnv) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends serving the bench database (its own
    database, so no other client's work is counted; the server's pool keeps them connected), or None
    on SQLite. Needs the database server on this machine, as ``bench`` starts it."""
    url = env.settings.database_url
    if not url or not url.startswith("postgresql"):
        return None
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars().all()
    finally:
        engine.dispose()
    return _cpu_seconds(list(pids))


def _cpu_now(env: BenchEnv) -> tuple[float, float | None]:
    return server_cpu_seconds(env), database_cpu_seconds(env)


def _ms_per_item(before: tuple[float, float | None], after: tuple[float, float | None], n: int) -> tuple[float, str]:
    server = round((after[0] - before[0]) * 1000 / n, 3)
    database = "" if after[1] is None or before[1] is None else round((after[1] - before[1]) * 1000 / n, 3)
    return server, database


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
            cpu = _cpu_now(env)
            created = _send(env, payloads, clients, "created")
            server_created, db_created = _ms_per_item(cpu, _cpu_now(env), n)
            stored = count_submissions(env) - before
            cpu = _cpu_now(env)
            again = _send(env, payloads, clients, "duplicate")
            server_again, db_again = _ms_per_item(cpu, _cpu_now(env), n)
            rows.append({"db": env.db_label, "case": f"{n} items, batches of {size}, {clients} client(s)",
                         "stored": stored, "created_per_second": round(n / created, 1),
                         "duplicate_per_second": round(n / again, 1), "seconds": round(created, 2),
                         "server_cpu_ms_per_created": server_created, "db_cpu_ms_per_created": db_created,
                         "server_cpu_ms_per_duplicate": server_again, "db_cpu_ms_per_duplicate": db_again,
                         "load1": load_average(), "workers": workers if workers is not None else "serve default"})
    return rows
