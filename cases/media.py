"""Per-organisation case list served as form media of the follow-up form (offline selection).

``cases.csv`` is never stored: it is registered as per-caller form media (``cases.capability``), so a
tablet only ever holds its own organisation's open cases, pseudonymously (code, age band, site).
"""

from __future__ import annotations

import csv
import io

from sqlmodel import Session

from app.identity import Actor
from app.models import Organisation
from cases import lifecycle, queries
from forms.models import Form, FormVersion

CASES_CSV = "cases.csv"


def case_list_csv(session: Session, actor: Actor | None, form: Form, version: FormVersion) -> tuple[bytes, str] | None:
    """CSV of the caller organisation's open cases (``name`` = case code, ``label`` = code · age band · site;
    no names), or None unless the caller is a caseworker of an NGO (or one of their devices)."""
    if actor is None or actor.role != "caseworker":
        return None
    org = session.get(Organisation, actor.organisation_id)
    if org is None or org.kind != "ngo":
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "label", "age_band", "site", "status"])
    for case in queries.open_cases_of(session, org.id, lifecycle.OPEN_STATES):
        label = " · ".join(p for p in (case.code, case.age_band, case.site_code) if p)
        writer.writerow([case.code, label, case.age_band or "", case.site_code or "", case.status])
    return out.getvalue().encode("utf-8"), "text/csv"
