"""What the sync capability brings: OpenRosa and JSON sync routes. It announces ``SubmissionStored``
and asks the record policies (``app.events``); it subscribes to nothing."""

from __future__ import annotations

from app.capability import Capability
from sync import routes, web

capability = Capability(name="sync", install=routes.install, install_web=web.install, nav=web.NAV)
