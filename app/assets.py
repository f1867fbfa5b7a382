"""Front-end libraries (Leaflet, Swagger UI for ``/docs``) installed from the npm registry at install time
and served by us under ``/static/vendor/<name>-<version>/`` — field users are offline, and the pages'
Content-Security-Policy allows scripts from our own origin only, so never a CDN.

    python -m app.assets install   # npm ci, then copy the distribution files
    python -m app.assets copy      # only copy (node_modules already installed, e.g. in a Docker stage)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = Path(__file__).resolve().parent / "web" / "static" / "vendor"
#: package -> folder of its distribution files inside node_modules (default ``dist``)
DIST = {"leaflet": "dist", "swagger-ui-dist": "."}
#: package -> the only files to copy (default: the whole folder); swagger-ui-dist also ships an
#: ``index.html`` with an inline script and an OAuth redirect page that we do not serve.
FILES = {"swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"]}


def versions() -> dict[str, str]:
    """The packages we serve (``dependencies``; ``devDependencies`` such as axe-core are for the tests only)."""
    return json.loads((ROOT / "package.json").read_text())["dependencies"]


def vendor_url(package: str) -> str:
    return f"/static/vendor/{package}-{versions()[package]}"


def install() -> None:
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: web maps and /docs will be unavailable (install Node.js 20 and re-run make install)", file=sys.stderr)
        return
    lock = ROOT / "package-lock.json"
    # --ignore-scripts: the packages we serve need no install step (swagger-ui-dist's telemetry dependency
    # would otherwise phone home).
    cmd = [npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund", "--ignore-scripts", "--silent"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    copy()


def copy() -> None:
    """Copy each package's distribution files from node_modules to the versioned static folder."""
    for package, version in versions().items():
        source = ROOT / "node_modules" / package / DIST.get(package, "dist")
        target = VENDOR / f"{package}-{version}"
        if target.exists():
            shutil.rmtree(target)
        if package in FILES:
            target.mkdir(parents=True)
            for name in FILES[package]:
                shutil.copy2(source / name, target / name)
        else:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
    print(f"web assets installed in {VENDOR}")


if __name__ == "__main__":
    {"install": install, "copy": copy}[sys.argv[1] if sys.argv[1:] else "install"]()
