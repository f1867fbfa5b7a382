"""Run the real server in a child uvicorn process (end-to-end tests and benchmarks).

Settings reach the child only through ``ASMFIELD_*`` environment variables, as in production.
Readiness is awaited by polling ``/readyz`` until a deadline; between polls we wait on the child
process itself, so a server that dies on start-up is reported at once with its output.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """The ``ASMFIELD_*`` variables that reproduce ``settings`` (plus overrides) in another process."""
    env = {
        "ASMFIELD_DATA_DIR": str(settings.data_dir),
        "ASMFIELD_DATABASE_URL": settings.db_url,
        "ASMFIELD_SECRET_KEY": settings.secret,
        "ASMFIELD_MEDIA_DIR": str(settings.media_path),
        "ASMFIELD_MAX_SUBMISSION_BYTES": str(settings.max_submission_bytes),
        "ASMFIELD_MAX_ATTACHMENT_BYTES": str(settings.max_attachment_bytes),
        "ASMFIELD_MAX_BATCH_ITEMS": str(settings.max_batch_items),
        "ASMFIELD_LOG_LEVEL": "warning",
    }
    env.update({f"ASMFIELD_{key.upper()}": str(value) for key, value in overrides.items()})
    return env


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux), for the memory benchmark."""
        total = 0
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except FileNotFoundError:
                continue
        return total


@contextmanager
def live_server(env: dict[str, str], *, workers: int = 1, startup_timeout: float = 60.0,
                cli: bool = False) -> Iterator[LiveServer]:
    """Start ``uvicorn app.main:asgi_app`` with ``env`` on a free port; stop it afterwards.

    :param cli: start it as operators do, with ``asmfield serve`` (its uvicorn options), instead.
    """
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="asmfield-server-", suffix=".log", delete=False)  # noqa: SIM115
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ASMFIELD_")} | env
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:asgi_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", env.get("ASMFIELD_LOG_LEVEL", "warning"), "--no-access-log"]
    if cli:
        command = [sys.executable, "-c", "from app.cli import main; main()", "serve", "--host", "127.0.0.1",
                   "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=Path(log_file.name))
    try:
        _wait_ready(server, startup_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        Path(log_file.name).unlink(missing_ok=True)


def _wait_ready(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            try:
                if client.get(f"{server.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{server.log()}")
            try:
                code = server.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"server exited with {code} on start-up:\n{server.log()}")
