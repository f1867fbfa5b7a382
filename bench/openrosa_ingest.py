"""OpenRosa ingest throughput: POST /submission as tablets do, at several concurrencies.

Small submissions (instance XML only, ~1 KB) at concurrency 1, 8 and 32, and submissions with
one 200 KB photo at concurrency 8. Bodies are built before the clock starts; requests go to the
device-token URL (what our tablets use) through httpx's async client.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.harness import BenchEnv, bench_env, count_submissions, load_average
from tests.e2e.collect import CollectClient, Instance
from tests.factories import new_instance_id, photo_of_bytes, visit_xml


def bodies(env: BenchEnv, n: int, *, photo_bytes: int = 0) -> list[tuple[bytes, str]]:
    builder = CollectClient(env.url)
    out = []
    for i in range(n):
        iid = new_instance_id()
        files = {}
        if photo_bytes:
            files = {f"p{i}.jpg": photo_of_bytes(photo_bytes, seed=i % 50)}
        xml = visit_xml(env.version, iid, workers=i, photo_name=next(iter(files), None))
        out.append(builder.multipart(Instance(xml=xml, files=files, instance_id=iid), list(files), incomplete=False))
    builder.close()
    return out


async def _post_all(url: str, payloads: list[tuple[bytes, str]], concurrency: int) -> list[float]:
    queue: asyncio.Queue = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def worker() -> None:
            while not queue.empty():
                body, content_type = queue.get_nowait()
                start = time.perf_counter()
                response = await client.post(url, content=body, headers={
                    "Content-Type": content_type, "X-OpenRosa-Version": "1.0"})
                latencies.append(time.perf_counter() - start)
                if response.status_code != 201:
                    raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run_case(env: BenchEnv, *, n: int, concurrency: int, photo_bytes: int = 0) -> dict:
    payloads = bodies(env, n, photo_bytes=photo_bytes)
    url = f"{env.url}/key/{env.device_token}/submission"
    asyncio.run(_post_all(url, payloads[: min(20, n)], 4))  # warm-up (imports, caches, connections)
    before = count_submissions(env)
    start = time.perf_counter()
    latencies = asyncio.run(_post_all(url, payloads[min(20, n):], concurrency))
    elapsed = time.perf_counter() - start
    stored = count_submissions(env) - before
    latencies.sort()
    return {
        "case": f"{'photo ' + str(photo_bytes // 1000) + ' KB' if photo_bytes else 'small'} @ c={concurrency}",
        "submissions": len(latencies), "stored": stored, "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "load1": load_average(),
    }


def main(pg_url: str | None = None, *, quick: bool = False, workers: int = 2) -> list[dict]:
    n_small = 300 if quick else 2000
    n_photo = 100 if quick else 400
    rows = []
    with bench_env(pg_url=pg_url, workers=workers) as env:
        for concurrency in (1, 8, 32):
            rows.append(run_case(env, n=n_small, concurrency=concurrency) | {"db": env.db_label})
        rows.append(run_case(env, n=n_photo, concurrency=8, photo_bytes=200_000) | {"db": env.db_label})
    return rows
