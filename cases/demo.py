"""Demo data of the cases capability for ``asmfield init --demo``: synthetic children's cases in
every lifecycle state for the two demo NGOs, so the KPI and the pages have something true to show.

Intakes, services and follow-up visits are real submissions of the bundled case forms (built with
``sync.submission_xml.build_instance_xml``, stored by ``sync.ingest.receive_submission``), so the
cases open and advance exactly as from a tablet; decisions (verify, refer, accept, approve) go
through ``cases.transitions.transition`` as the demo coordinator and caseworkers. Names are invented.
Idempotent: instance IDs are fixed, and a second run finds the cases there and changes nothing.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, select

from app.blobs import BlobStore
from app.events import Hooks
from app.identity import Actor
from app.models import Organisation, User
from app.settings import Settings
from cases import duplicates, queries, transitions
from cases.models import ChildCase
from forms.models import Form, FormVersion
from geodata.models import Site
from sync.ingest import receive_submission
from sync.submission_xml import build_instance_xml

NAMESPACE = uuid.UUID("2c6a1d4e-8b0f-4f7e-9d3c-5a1b7e2f9c40")
SEED = 2026
GIVEN = ("Mwamba", "Ilunga", "Kabange", "Mbuyi", "Ngoy", "Kalenga", "Mujinga", "Kapinga", "Nsenga", "Banza",
         "Mutombo", "Kasongo", "Ngalula", "Tshiala", "Kanku", "Mwape", "Lukusa", "Ngandu")
FAMILY = ("Kabeya", "Tshibanda", "Mulumba", "Kazadi", "Mukendi", "Kalala", "Numbi", "Kyungu", "Mpoyi", "Ilunga")
#: The state each demo case is walked to, in order; NGOs alternate. Closed cases carry the KPI.
PLAN = ("submitted", "submitted", "verified", "rejected_not_eligible", "merged_duplicate", "referred", "accepted",
        "assessment", "case_plan_pending_approval", "in_services", "in_services", "transferred", "monitoring",
        "monitoring", "withdrawn_pending_closure", "withdrawn_pending_closure", "closed", "closed", "closed",
        "closed", "closed", "closed", "closed", "reopened")


def _iid(label: str) -> str:
    return f"uuid:{uuid.uuid5(NAMESPACE, label)}"


class _Demo:
    def __init__(self, session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> None:
        self.session, self.settings, self.hooks, self.blobs = session, settings, hooks, blobs
        self.versions = {}
        for form_id in ("child_case_intake", "child_case_followup"):
            form = session.exec(select(Form).where(Form.xml_form_id == form_id)).first()
            self.versions[form_id] = session.get(FormVersion, form.published_version_id) if form else None
        self.users = {u.username: u for u in session.exec(select(User)).all()}
        self.rng = random.Random(SEED)

    def actor(self, username: str) -> Actor:
        return Actor(user=self.users[username], via="demo")

    def submit(self, username: str, form_id: str, answers: dict[str, Any], label: str) -> Any:
        version = self.versions[form_id]
        paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
        data = {paths[k]: v for k, v in answers.items() if k in paths and v is not None}
        xml = build_instance_xml(version, data, _iid(label))
        return receive_submission(self.session, blobs=self.blobs, settings=self.settings, hooks=self.hooks,
                                  actor=self.actor(username),
                                  xml=xml, files=[]).submission

    def intake(self, n: int, cw: str, site: str | None, **over: Any) -> Any:
        today = date.today()
        age = self.rng.randint(9, 17)
        answers = {
            "site_id": site, "intake_date": (today - timedelta(days=300 - n * 3)).isoformat(),
            "identified_by": self.rng.choice(("monitor_observation", "cooperative", "community", "school")),
            "consent_giver": "caregiver", "consent_services": "yes", "consent_share_partner": "yes",
            "consent_reporting": "yes", "consent_photo": "no", "immediate_danger": "no",
            "child_given_name": GIVEN[n % len(GIVEN)], "child_family_name": FAMILY[(n * 7) % len(FAMILY)],
            "sex": self.rng.choice(("female", "male")), "dob_known": "no", "age_estimated_years": age,
            "age_basis": "caregiver_statement", "caregiver_relation": self.rng.choice(("mother", "father", "grandparent")),
            "caregiver_phone": f"+2439700{n:05d}", "residence_area": self.rng.choice(("kanina", "musompo", "kasulo")),
            "activities": self.rng.sample(["carrying_ore", "washing_ore", "sorting_crushing", "digging_surface"], 2),
            "hours_per_day": self.rng.randint(4, 10), "forced_or_trafficked": ["none"],
            "school_status": self.rng.choice(("dropped_out", "not_attending", "never_enrolled")),
            "needs": ["school_kit"], "monitor_notes": "Synthetic demo case.",
        }
        answers.update(over)
        return self.submit(cw, "child_case_intake", answers, f"intake-{n}")

    def followup(self, n: int, cw: str, code: str, k: int, **answers: Any) -> Any:
        return self.submit(cw, "child_case_followup", {"case_id": code, **answers}, f"followup-{n}-{k}")


def seed(session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> dict:
    """Load demo cases; idempotent. Returns a short summary for the console."""
    demo = _Demo(session, settings, hooks, blobs)
    needed = {"coord", "cw_kipaji", "cw_nuru"}
    if not needed <= set(demo.users) or None in demo.versions.values():
        return {"skipped": "demo users or case forms missing"}
    first = _iid("intake-0")
    if session.exec(select(ChildCase).where(ChildCase.intake_root_instance_id == first)).first() is not None:
        return {"cases": len(session.exec(select(ChildCase)).all()), "created": 0}

    sites = [s.code for s in session.exec(select(Site).where(Site.kind == "asm_site").order_by(Site.code).limit(12))]
    co = demo.actor("coord")
    workers = tuple((cw, session.get(Organisation, demo.users[cw].organisation_id).name)
                    for cw in ("cw_kipaji", "cw_nuru"))  # the two demo NGOs
    today = date.today()
    created: dict[str, int] = {}
    cases: list[Any] = []

    def step(case: Any, who: Actor, action: str, **kw: Any) -> None:
        transitions.transition(session, actor=who, case=case, action=action, **kw)

    for n, target in enumerate(PLAN):
        username, org = workers[n % 2]
        cw = demo.actor(username)
        site = sites[n % len(sites)] if sites else None
        if target == "merged_duplicate" and cases:
            original = cases[0]
            intake_sub = demo.intake(n, username, site, child_given_name=GIVEN[0], child_family_name=FAMILY[0],
                                     caregiver_phone="+243970000000")
            case = queries.case_by_intake(session, intake_sub.root_instance_id)
            duplicates.merge(session, actor=co, case=case, into=original.code)
            created[target] = created.get(target, 0) + 1
            continue
        sub = demo.intake(n, username, site)
        case = queries.case_by_intake(session, sub.root_instance_id)
        if case is None:
            continue
        cases.append(case)
        order = ("verified", "referred", "accepted", "case_plan_pending_approval", "in_services", "monitoring",
                 "withdrawn_pending_closure", "closed")
        if target == "rejected_not_eligible":
            step(case, co, "reject", reason="no_child_labour")
        if target in order or target in ("assessment", "transferred", "reopened"):
            step(case, co, "verify")
        if target not in ("submitted", "verified", "rejected_not_eligible"):
            step(case, co, "refer", organisation=org)
        if target not in ("submitted", "verified", "rejected_not_eligible", "referred"):
            step(case, cw, "accept")
        if target not in ("submitted", "verified", "rejected_not_eligible", "referred", "accepted"):
            step(case, cw, "submit_plan")
        if target == "assessment":
            step(case, co, "reject_plan", reason="add a vocational training option")
        if target in ("in_services", "transferred", "monitoring", "withdrawn_pending_closure", "closed", "reopened"):
            step(case, co, "approve_plan")
        if target == "transferred":
            other = workers[(n + 1) % 2][1]
            step(case, co, "transfer", organisation=other)
        if target in ("monitoring", "withdrawn_pending_closure", "closed", "reopened"):
            demo.followup(n, username, case.code, 1, followup_date=(today - timedelta(days=240)).isoformat(),
                          followup_type="service", service_type=demo.rng.choice(("education", "vocational_training")),
                          service_implemented="yes")
            demo.followup(n, username, case.code, 2, followup_date=(today - timedelta(days=200)).isoformat(),
                          followup_type="observation", child_found="yes", in_hazardous_work="no",
                          in_school_or_training="yes")
        if target in ("withdrawn_pending_closure", "closed", "reopened"):
            demo.followup(n, username, case.code, 3, followup_date=(today - timedelta(days=95)).isoformat(),
                          followup_type="observation", child_found="yes", in_hazardous_work="no",
                          in_school_or_training="yes")
        if target in ("closed", "reopened"):
            step(case, co, "approve_closure")
        if target == "reopened":
            step(case, co, "reopen", reason="child seen again on a site")
        created[target] = created.get(target, 0) + 1

    # Two submissions the coordinator must review: an adult, and a follow-up naming no known case.
    demo.intake(len(PLAN), "cw_nuru", sites[0] if sites else None, age_estimated_years=19)
    demo.followup(len(PLAN), "cw_kipaji", "CL-0000-0000", 1, followup_date=today.isoformat(),
                  followup_type="observation", child_found="no")
    session.flush()
    return {"cases": sum(created.values()), "by_state": created, "flagged_for_review": 2}
