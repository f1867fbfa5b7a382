"""Run the benchmarks: ``python -m bench [name ...] [--pg URL] [--quick] [--before REV]`` (``make bench`` runs all).

Benchmarks are never part of the test suite. Each prints a table; copy the numbers, with the
machine line, into bench/RESULTS.md. Names: openrosa, batch, memory, central_load (issue 13: the
reference load generator, with the ratio to ODK Central's figures), and every other
``bench/<name>.py`` module that has a ``main(pg_url, quick)`` (geodata_*, cases_kpi, ...).
PostgreSQL runs too when ``--pg URL`` is given or ``ASMFIELD_BENCH_PG`` names a server.

``--before REV`` (a git revision, e.g. ``HEAD~5``, or a directory holding an older checkout) measures
that code and this one back to back, benchmark by benchmark and database by database (before
first), so both sides see the same machine load; every row says which side it is.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SYNC_BENCHMARKS = {"openrosa": "bench.openrosa_ingest", "batch": "bench.batch_sync", "memory": "bench.memory",
                   "central_load": "bench.central_load"}


#: Modules of bench/ that are helpers, not benchmarks.
HELPERS = {"__init__", "__main__", "harness"}


def registry() -> dict[str, str]:
    """Our sync benchmarks, then every other ``bench/<name>.py`` with a ``main(pg_url, quick)``
    (e.g. geodata_*.py, cases_kpi.py), by module name."""
    found = dict(SYNC_BENCHMARKS)
    taken = set(SYNC_BENCHMARKS.values())
    for path in sorted(BENCH_DIR.glob("*.py")):
        module = f"bench.{path.stem}"
        if path.stem not in HELPERS and module not in taken and "\ndef main(" in path.read_text():
            found[path.stem] = module
    return found


def print_table(name: str, rows: list[dict] | None) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    print(f"\n## {name}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


def main(argv: list[str] | None = None) -> int:
    names = registry()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"which benchmarks (default: all): {', '.join(names)}")
    parser.add_argument("--pg", metavar="URL", default=os.environ.get("ASMFIELD_BENCH_PG") or None,
                        help="also/instead run on PostgreSQL: a server URL whose user may create databases, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test (default: $ASMFIELD_BENCH_PG)")
    parser.add_argument("--pg-only", action="store_true", help="run only on PostgreSQL (needs --pg)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for checking the harness")
    parser.add_argument("--workers", type=int, default=None,
                        help="uvicorn worker processes (default: each benchmark's own; central_load and batch: "
                        "what `asmfield serve` picks for the database)")
    parser.add_argument("--json", metavar="FILE", help="also write all rows as JSON")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision (or older checkout "
                        "directory), each benchmark before this code's, and mark every row before/after")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    databases = ([] if args.pg_only else [None]) + ([args.pg] if args.pg else [])
    from bench.harness import machine

    print(f"machine: {machine()}")
    everything: dict[str, list] = {}
    with _before_tree(args.before) as before:
        for name in args.names or list(names):
            run = importlib.import_module(names[name]).main
            params = inspect.signature(run).parameters
            for pg_url in databases:
                label = f"{name} ({'PostgreSQL' if pg_url else 'SQLite'})"
                rows = []
                if before is not None:
                    rows += [row | {"tree": f"before {args.before}"}
                             for row in _run_in(before, name, pg_url, quick=args.quick, workers=args.workers)]
                kwargs = {}
                if "quick" in params:
                    kwargs["quick"] = args.quick
                if "workers" in params and args.workers is not None:
                    kwargs["workers"] = args.workers
                after = (run(pg_url, **kwargs) if params else run()) or []
                rows += [row | {"tree": "after (this checkout)"} for row in after] if before is not None else after
                print_table(label, rows)
                everything[label] = rows
                sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": everything}, indent=2))
    return 0


@contextmanager
def _before_tree(rev: str | None) -> Iterator[Path | None]:
    """An older checkout to measure: a directory as given, or ``git archive REV`` unpacked into a
    temporary ``main/`` beside a link to ``../shared`` (where the reference load generator lives)."""
    if rev is None:
        yield None
        return
    if Path(rev).is_dir():
        yield Path(rev).resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-before-"))
    try:
        tree = tmp / "main"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (tmp / "shared").symlink_to(ROOT.parent / "shared")
        yield tree
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_in(tree: Path, name: str, pg_url: str | None, *, quick: bool, workers: int | None) -> list[dict]:
    """Run one benchmark of an older checkout (its own code, this Python) and return its rows."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "bench", name, "--json", out.name]
        command += ["--pg", pg_url, "--pg-only"] if pg_url else []
        command += ["--quick"] if quick else []
        command += ["--workers", str(workers)] if workers is not None else []
        env = {k: v for k, v in os.environ.items() if k != "ASMFIELD_BENCH_PG"}
        subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        results = json.loads(Path(out.name).read_text())["results"]
    return next(iter(results.values()), [])


if __name__ == "__main__":
    sys.exit(main())
