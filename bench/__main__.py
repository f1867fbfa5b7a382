"""Run the benchmarks: ``python -m bench [name ...] [--pg URL] [--quick]`` (``make bench`` runs all).

Benchmarks are never part of the test suite. Each prints a table; copy the numbers, with the
machine line, into bench/RESULTS.md. Names: openrosa, batch, memory, and every other
``bench/<name>.py`` module that has a ``main(pg_url, quick)`` (geodata_*, cases_kpi, ...).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
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
    parser.add_argument("--pg", metavar="URL", help="also/instead run on PostgreSQL: a server URL whose "
                        "user may create databases, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pg-only", action="store_true", help="run only on PostgreSQL (needs --pg)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for checking the harness")
    parser.add_argument("--workers", type=int, default=None,
                        help="uvicorn worker processes (default: each benchmark's own, 2 for openrosa/batch)")
    parser.add_argument("--json", metavar="FILE", help="also write all rows as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    databases = ([] if args.pg_only else [None]) + ([args.pg] if args.pg else [])
    from bench.harness import machine

    print(f"machine: {machine()}")
    everything: dict[str, list] = {}
    for name in args.names or list(names):
        run = importlib.import_module(names[name]).main
        params = inspect.signature(run).parameters
        for pg_url in databases:
            kwargs = {}
            if "quick" in params:
                kwargs["quick"] = args.quick
            if "workers" in params and args.workers is not None:
                kwargs["workers"] = args.workers
            rows = run(pg_url, **kwargs) if params else run()
            label = f"{name} ({'PostgreSQL' if pg_url else 'SQLite'})"
            print_table(label, rows)
            everything[label] = rows
            sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": everything}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
