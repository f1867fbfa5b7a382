"""What the forms capability brings: form routes, ``asmfield forms``, the bundled forms as demo data."""

from __future__ import annotations

from app.capability import Capability
from forms import cli, demo, routes, web

capability = Capability(name="forms", install=routes.install, install_web=web.install, nav=web.NAV, cli=cli.cli,
                        cli_name="forms", seed_demo=demo.seed)
