"""The capability list: the one place that names every capability, in dependency order.

``app.main`` (routes), ``app.cli`` (sub-commands), ``app.demo`` (demo data) and ``build_hooks``
(events, record policies, generated form media) iterate ``CAPABILITIES``. A capability may import
those before it in this list, never one after it, and no package imports this module (see
``tests/test_architecture.py``). A new capability is one package with a ``capability`` object
plus one line here.
"""

from __future__ import annotations

from app.blobs import BlobStore, FilesystemBlobStore
from app.capability import Capability
from app.events import Hooks
from app.settings import Settings
from cases.capability import capability as cases
from forms.capability import capability as forms
from geodata.capability import capability as geodata
from reports.capability import capability as reports
from sync.capability import capability as sync
from webhooks.capability import capability as webhooks

CAPABILITIES: tuple[Capability, ...] = (forms, sync, geodata, cases, reports, webhooks)


def build_hooks(capabilities: tuple[Capability, ...] = CAPABILITIES) -> Hooks:
    """A fresh ``Hooks`` with every capability's subscriptions, policies and media, in list order."""
    hooks = Hooks()
    for capability in capabilities:
        capability.register(hooks)
    return hooks


def make_blob_store(settings: Settings) -> BlobStore:
    """The one place that builds the blob store (``create_app`` and the CLI entry point call it)."""
    return FilesystemBlobStore(settings.media_path)
