"""Demo data for ``asmfield init --demo``: organisations, users (credentials printed), then each
capability's own demo data in capability order (forms, sites and visits, cases). Running it twice
changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from app import accounts
from app.blobs import BlobStore
from app.composition import CAPABILITIES
from app.events import Hooks
from app.models import Device, Organisation, User
from app.settings import Settings
from app.timeutil import utcnow

#: Invented organisations (no real company or NGO is named in demo data).
COORDINATOR_ORG = "Programme ASM Katanga (démo)"
NGO_ORGS = ("ONG Kipaji Kolwezi (démo)", "ONG Nuru Likasi (démo)")
#: (username, role, organisation, full name). Demo passwords are printed by ``init --demo``.
DEMO_USERS = (
    ("admin", "admin", COORDINATOR_ORG, "Administratrice"),
    ("coord", "coordinator", COORDINATOR_ORG, "Coordinateur programme"),
    ("monitor1", "monitor", COORDINATOR_ORG, "Moniteur terrain Kolwezi"),
    ("monitor2", "monitor", COORDINATOR_ORG, "Monitrice terrain Likasi"),
    ("cw_kipaji", "caseworker", NGO_ORGS[0], "Travailleuse sociale Kipaji"),
    ("cw_kipaji2", "caseworker", NGO_ORGS[0], "Superviseur Kipaji"),
    ("cw_nuru", "caseworker", NGO_ORGS[1], "Travailleur social Nuru"),
    ("cw_nuru2", "caseworker", NGO_ORGS[1], "Superviseure Nuru"),
)
DEMO_PASSWORD = "demo-{username}-2026"
#: (device name, owner, time since its last sync): tablets that synced lately and tablets gone quiet
#: (stale after 14 days on the dashboard). Their tokens are never shown: add a device to try Collect.
DEMO_DEVICES = (
    ("Tablette Kolwezi 01", "monitor1", timedelta(hours=3)),
    ("Tablette Likasi 01", "monitor2", timedelta(days=1, hours=2)),
    ("Tablette Kolwezi 02 (réserve)", "monitor1", timedelta(days=38)),
    ("Tablette Likasi 02", "monitor2", timedelta(days=19)),
)


def seed_accounts(session: Session) -> dict[str, Any]:
    for name, kind in ((COORDINATOR_ORG, "coordinator"), *((n, "ngo") for n in NGO_ORGS)):
        if not session.exec(select(Organisation).where(Organisation.name == name)).first():
            accounts.create_organisation(session, name=name, kind=kind)
    credentials = []
    for username, role, org, full_name in DEMO_USERS:
        password = DEMO_PASSWORD.format(username=username)
        if not session.exec(select(User).where(User.username == username)).first():
            accounts.create_user(session, username=username, password=password, role=role, organisation=org,
                                 full_name=full_name)
        credentials.append({"username": username, "password": password, "role": role, "organisation": org})
    return {"users": credentials}


def seed_devices(session: Session) -> dict[str, Any]:
    """The monitors' tablets (created once), with a recent or a stale last sync."""
    created = 0
    for name, username, ago in DEMO_DEVICES:
        if session.exec(select(Device).where(Device.name == name)).first() is not None:
            continue
        device, _token = accounts.create_device(session, name=name, user=username, operator="demo")
        # Written directly on purpose: a last sync is only ever recorded by a device's own requests.
        device.last_seen_at = utcnow() - ago
        session.add(device)
        created += 1
    return {"devices": len(DEMO_DEVICES), "created": created}


def seed_demo(session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> dict[str, Any]:
    """Load every capability's demo data (summary keyed by its CLI group name); idempotent."""
    summary = seed_accounts(session)
    session.flush()
    summary["devices"] = seed_devices(session)
    for capability in CAPABILITIES:
        if capability.seed_demo is not None:
            session.flush()
            summary[capability.cli_name or capability.name] = capability.seed_demo(session, settings, hooks, blobs)
    return summary


def describe_demo(summary: dict[str, Any]) -> str:
    lines = ["Demo data loaded. Log in at http://127.0.0.1:8000/login with:"]
    for cred in summary["users"]:
        lines.append(f"  {cred['username']:<15} {cred['password']:<28} {cred['role']:<12} {cred['organisation']}")
    for key in ("devices", "forms", "sites", "cases"):
        if summary.get(key):
            lines.append(f"{key}: {summary[key]}")
    return "\n".join(lines)
