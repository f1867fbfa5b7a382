"""What each way of authenticating costs per request, against the real server (``python -m bench auth``).

Sequential requests (one client, keep-alive) to the OpenRosa form list and to ``/api/v1/me``:
a device token in the path, an API token, Basic (argon2 once, then the per-process cache),
Digest (httpx reuses the nonce with a rising nonce-count: one database write per request for
replay protection), and Basic with the cache defeated (a full argon2 verification each time).
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.harness import PASSWORD, bench_env, load_average


def _timed(client: httpx.Client, n: int, request) -> tuple[float, float]:  # noqa: ANN001
    for _ in range(5):  # warm-up (the first Basic call fills the cache, Digest fetches its nonce)
        assert request(client).status_code == 200
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = request(client)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main(pg_url: str | None = None, quick: bool = False, workers: int = 1) -> list[dict]:
    n = 50 if quick else 300
    rows = []
    with bench_env(pg_url=pg_url, workers=workers) as env:
        cases = {
            "device token in path (formList)": lambda c: c.get(f"/key/{env.device_token}/formList"),
            "Basic, cached (formList)": lambda c: c.get("/formList", auth=("bench", PASSWORD)),
            "Digest, nonce reused (formList)": lambda c: c.get("/formList"),
            "API token (me)": lambda c: c.get("/api/v1/me", headers={"Authorization": f"Bearer {env.api_token}"}),
            "Basic, cached (me)": lambda c: c.get("/api/v1/me", auth=("bench", PASSWORD)),
        }
        for name, request in cases.items():
            auth = httpx.DigestAuth("bench", PASSWORD) if name.startswith("Digest") else None
            with httpx.Client(base_url=env.url, auth=auth, timeout=30) as client:
                p50, p95 = _timed(client, n, request)
            rows.append({"db": env.db_label, "auth": name, "requests": n, "p50 ms": round(p50, 1),
                         "p95 ms": round(p95, 1), "load1": load_average()})
        # A full argon2 verification (what an uncached Basic request costs): the JSON login.
        with httpx.Client(base_url=env.url, timeout=30) as client:
            p50, p95 = _timed(client, max(10, n // 10),
                              lambda c: c.post("/api/v1/login", json={"username": "bench", "password": PASSWORD}))
        rows.append({"db": env.db_label, "auth": "password login (argon2 verify + session row)",
                     "requests": max(10, n // 10), "p50 ms": round(p50, 1), "p95 ms": round(p95, 1),
                     "load1": load_average()})
    return rows
