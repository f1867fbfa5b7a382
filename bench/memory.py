"""Peak server memory (RSS) while receiving ever larger submissions.

One OpenRosa POST per size with a single attachment of 1, 5, 20 and 45 MB — a JPEG (checked and
scaled by Pillow) and an opaque binary file (stored as it is); a thread samples
the server's RSS (every process of it) every 5 ms during the upload. Streaming multipart to disk
and decoding JPEGs at reduced scale for the derived sizes should keep the peak flat.
"""

from __future__ import annotations

import random
import threading
import time

import httpx

from bench.harness import bench_env, load_average
from tests.e2e.collect import CollectClient, Instance
from tests.factories import new_instance_id, photo_of_bytes, visit_xml

SIZES_MB = (1, 5, 20, 45)


def _peak_during(server, action) -> tuple[int, object]:  # noqa: ANN001
    peak = server.rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss_bytes())
            done.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = action()
    finally:
        done.set()
        thread.join()
    return peak, result


def main(pg_url: str | None = None, *, quick: bool = False, workers: int = 1) -> list[dict]:
    sizes = SIZES_MB[:3] if quick else SIZES_MB
    rows = []
    with bench_env(pg_url=pg_url, workers=1, max_attachment_bytes=60_000_000) as env:
        url = f"{env.url}/key/{env.device_token}/submission"
        builder = CollectClient(env.url)
        # Warm up the process (imports, first request) so the baseline is comparable.
        warm = Instance(xml=visit_xml(env.version, new_instance_id()), instance_id="warm")
        body, ctype = builder.multipart(warm, [], incomplete=False)
        httpx.post(url, content=body, headers={"Content-Type": ctype})
        for mb in sizes:
            for kind in ("photo", "binary"):
                content = photo_of_bytes(mb * 1_000_000, seed=mb) if kind == "photo" else random.randbytes(mb * 1_000_000)
                name = "big.jpg" if kind == "photo" else "big.bin"
                iid = new_instance_id()
                instance = Instance(xml=visit_xml(env.version, iid, photo_name=name), files={name: content},
                                    instance_id=iid)
                body, ctype = builder.multipart(instance, [name], incomplete=False)
                baseline = env.server.rss_bytes()
                start = time.perf_counter()
                peak, response = _peak_during(env.server, lambda b=body, c=ctype: httpx.post(
                    url, content=b, headers={"Content-Type": c}, timeout=300))
                if response.status_code != 201:
                    raise RuntimeError(f"{mb} MB upload answered {response.status_code}: {response.text[:300]}")
                rows.append({"db": env.db_label, "attachment": kind, "attachment_mb": round(len(content) / 1e6, 1),
                             "seconds": round(time.perf_counter() - start, 2),
                             "rss_before_mb": round(baseline / 2**20, 1), "rss_peak_mb": round(peak / 2**20, 1),
                             "growth_mb": round((peak - baseline) / 2**20, 1), "load1": load_average()})
        builder.close()
    return rows
