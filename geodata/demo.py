"""Demo data of the geodata capability for ``asmfield init --demo``: synthetic ZEA/PE polygons,
ASM sites and site visits (domain.md §1.7), deterministic with a seed.

Visits are real submissions of the bundled ``asm_site_visit`` form, built with
``sync.submission_xml.build_instance_xml`` and stored through ``sync.ingest.receive_submission``
(so mapping, stages and cases run exactly as for a tablet). Idempotent: sites are upserted by
code and visits have fixed instance IDs, so a second run changes nothing.
"""

from __future__ import annotations

import io
import random
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw
from sqlmodel import Session, col, select

from app.blobs import BlobStore
from app.events import Hooks
from app.identity import Actor
from app.models import Device, User
from app.settings import Settings
from forms.models import Form, FormVersion
from geodata import importers, synthetic, upsert
from sync import review
from sync.ingest import receive_submission
from sync.media import IncomingFile
from sync.models import Submission
from sync.submission_xml import build_instance_xml

SEED = 2026
FORM_ID = "asm_site_visit"
DEMO_SOURCE = "synthetic demo (domain.md §1.7)"
NAMESPACE = uuid.UUID("6f1c1f0e-3c55-4d0a-9a61-2b1f0c5e7a10")


def answers_to_data(version: Any, answers: dict[str, Any]) -> dict[str, Any]:
    """Answers by XLSForm name → the contract's data dict by path; drops names and choice values
    the form version does not have (so generated data always fits the form)."""
    fields = [f for f in version.fields if f.get("kind") in ("field", "repeat")]

    def convert(values: dict[str, Any], repeat: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        by_name = {f["name"]: f for f in fields if f.get("repeat") == repeat}
        for name, value in values.items():
            spec = by_name.get(name)
            if spec is None or value is None:
                continue
            if spec["kind"] == "repeat":
                items = [convert(item, spec["path"]) for item in value]
                items = [i for i in items if i]
                if items:
                    out[spec["path"]] = items
                continue
            choices = spec.get("choices")
            if choices and spec.get("type") == "select":
                value = [v for v in value if v in choices]
                if not value:
                    continue
            elif choices and spec.get("type") == "select1" and value not in choices:
                continue
            out[spec["path"]] = value
        return out

    return convert(answers, None)


#: Visits are dated over the two years before the demo's last day, so sites climb the ladder (and
#: some lapse) month by month; fixed dates keep the demo deterministic.
VISITS_FROM = date(2024, 11, 1)
VISITS_TO = date(2026, 11, 20)
#: Visits away from every site (unmapped), and visits whose photo never arrived (waiting for attachments).
UNMAPPED_POINTS = ((24.92, -10.21), (26.05, -11.45), (27.05, -12.25))
LATE_PHOTOS = 2
#: Visits a coordinator flags for review ("has issues" in ODK Central's words) and approves.
FLAGGED = 4
APPROVED = 6
PHOTO_POOL = 10
FORCED_LABOUR = (["debt_bondage"], ["withheld_pay", "threats_violence"], ["confiscated_documents"])


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 120, 60)).save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def site_photo(k: int) -> bytes:
    """A generated photo of a mining site (sky, red earth, pits, tarpaulins), different for each ``k``."""
    rnd = random.Random(k)
    width, height = 400, 300
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = rnd.randint(90, 150)
    for y in range(horizon):  # sky, lighter towards the horizon
        t = y / horizon
        draw.line([(0, y), (width, y)], fill=(int(110 + 90 * t), int(160 + 60 * t), int(215 + 25 * t)))
    earth = (rnd.randint(150, 185), rnd.randint(80, 105), rnd.randint(40, 60))
    draw.rectangle([0, horizon, width, height], fill=earth)
    for _ in range(rnd.randint(3, 5)):  # spoil heaps
        x, w, h = rnd.randint(-40, width), rnd.randint(80, 200), rnd.randint(20, 60)
        draw.pieslice([x, horizon - h, x + w, horizon + h], 180, 360, fill=tuple(max(0, c - 25) for c in earth))
    for _ in range(rnd.randint(4, 9)):  # pits
        x, y, r = rnd.randint(0, width), rnd.randint(horizon + 30, height), rnd.randint(8, 22)
        draw.ellipse([x - 2 * r, y - r, x + 2 * r, y + r], fill=(50, 35, 25))
    for _ in range(rnd.randint(1, 3)):  # tarpaulin shelters
        x, y = rnd.randint(0, width - 60), rnd.randint(horizon - 10, horizon + 40)
        draw.polygon([(x, y + 30), (x + 30, y), (x + 60, y + 30)], fill=rnd.choice([(30, 90, 170), (220, 120, 30)]))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _visits(data: synthetic.SyntheticData) -> list[dict[str, Any]]:
    """The synthetic visits, with the red flags and cases a lived-in server has: forced-labour indicators
    on some high-risk visits, site photos on on-site visits, a few visits away from every site and a few
    whose photo never arrived."""
    visits = sorted(data.visits, key=lambda v: (v["on"], v["site_code"]))
    for i, visit in enumerate(visits):
        answers = visit["answers"]
        armed = answers.get("armed_presence") not in (None, ["none"])
        if (armed and i % 2 == 0) or (answers.get("summary_risk") == "high" and i % 4 == 0):
            answers["forced_labour_indicators"] = FORCED_LABOUR[i % len(FORCED_LABOUR)]
        if answers.get("visit_type") != "remote" and i % 3 == 0:  # every file costs an fsync: one visit in three
            answers["site_photos"] = [{"photo_site": f"site-{j}.jpg"} for j in range(1 + (i % 15 == 0))]
    for k, (lon, lat) in enumerate(UNMAPPED_POINTS if visits else ()):
        source = visits[(len(visits) - 10 - 7 * k) % len(visits)]
        answers = {key: value for key, value in source["answers"].items()
                   if key not in ("site_id", "zea_or_title_ref", "document_photos", "site_photos")}
        answers["visit_location"] = f"{lat} {lon} 1250 12"
        answers["notes"] = "Nouveau site, pas encore sur la carte"
        visits.append({"site_code": None, "on": source["on"], "lon": lon, "lat": lat, "answers": answers})
    for visit in visits[-(len(UNMAPPED_POINTS) + 1 + LATE_PHOTOS * 5)::5][:LATE_PHOTOS]:
        visit["answers"]["site_photos"] = [{"photo_site": "site-late.jpg"}]
        visit["late"] = True
    return visits


def _monitors(session: Session, username: str | None) -> dict[str, Actor]:
    """Who submits: ``username`` for every visit, else monitor1 (Lualaba) and monitor2 (Haut-Katanga)
    through their first tablet, else the first monitor or admin."""
    if username:
        user = session.exec(select(User).where(User.username == username)).first()
        return {"*": Actor(user=user, via="demo")} if user else {}
    out: dict[str, Actor] = {}
    for key, name in (("CD-LU", "monitor1"), ("CD-HK", "monitor2")):
        user = session.exec(select(User).where(User.username == name)).first()
        if user is not None:
            device = session.exec(select(Device).where(Device.user_id == user.id, col(Device.revoked_at).is_(None))
                                  .order_by(col(Device.id))).first()
            out[key] = Actor(user=user, device=device, via="demo")
    if not out:
        stmt = select(User).where(col(User.role).in_(("monitor", "admin")))
        user = session.exec(stmt.order_by(col(User.role).desc(), col(User.id))).first()  # monitors before admins
        if user is not None:
            out["*"] = Actor(user=user, via="demo")
    return out


def _review(session: Session, hooks: Hooks, instance_ids: list[str]) -> dict[str, int]:
    """A coordinator flags a few visits for review and approves others (once: only records still received)."""
    coordinator = session.exec(select(User).where(User.role == "coordinator").order_by(col(User.id))).first()
    done = {"needs_review": 0, "approved": 0}
    if coordinator is None:
        return done
    actor = Actor(user=coordinator, via="demo")
    plan = [(iid, "needs_review", "Photos floues et site à confirmer : revoir à la prochaine visite.")
            for iid in instance_ids[-40::10][:FLAGGED]]
    plan += [(iid, "approved", None) for iid in instance_ids[-45::7][:APPROVED]]
    for instance_id, state, comment in plan:
        row = session.exec(select(Submission).where(Submission.instance_id == instance_id)).first()
        if row is None or not row.current or row.review_state != "received":
            continue
        review.set_state(session, actor=actor, hooks=hooks, instance_id=instance_id, state=state, comment=comment)
        done[state] += 1
    return done


def load(session: Session, settings: Settings, *, hooks: Hooks, blobs: BlobStore, seed: int = SEED, n_sites: int = 150, visits_per_site=(3, 5),  # noqa: ANN001
         username: str | None = None, with_visits: bool = True) -> dict[str, Any]:
    """Import synthetic polygons and sites, then submit their visits; returns counts."""
    data = synthetic.generate(seed, n_sites=n_sites, visits_per_site=visits_per_site if with_visits else (0, 0),
                              start=VISITS_FROM, end=VISITS_TO)
    frame = pd.concat([data.legal, data.sites], ignore_index=True)
    read = importers.ReadResult(frame=frame, format="synthetic", rows_read=len(frame))
    report = upsert.upsert_sites(session, read=read, settings=settings, blobs=blobs, source=DEMO_SOURCE)
    summary: dict[str, Any] = {"sites": len(data.sites), "legal_polygons": len(data.legal),
                               "created": report["created"], "visits": 0}
    if not with_visits:
        return summary
    form = session.exec(select(Form).where(Form.xml_form_id == FORM_ID)).first()
    if form is None or form.published_version_id is None:
        return summary
    version = session.get(FormVersion, form.published_version_id)
    monitors = _monitors(session, username)
    if not monitors:
        return summary
    document = _jpeg()
    photos = [site_photo(k) for k in range(PHOTO_POOL)]
    created = 0
    instance_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="asmfield-demo-") as tmp:
        for i, visit in enumerate(_visits(data)):
            instance_id = f"uuid:{uuid.uuid5(NAMESPACE, f'{seed}:2y:{i}')}"
            code = visit["site_code"] or ""
            actor = monitors.get(code[:5]) or monitors.get("*") or next(iter(monitors.values()))
            payload = answers_to_data(version, visit["answers"])
            xml = build_instance_xml(version, payload, instance_id)
            files = []
            if "document_photos" in visit["answers"]:
                files.append(_file(tmp, f"{i}-documents.jpg", "documents.jpg", document))
            if not visit.get("late"):
                for j, item in enumerate(visit["answers"].get("site_photos", ())):
                    files.append(_file(tmp, f"{i}-site-{j}.jpg", item["photo_site"], photos[(i + 3 * j) % PHOTO_POOL]))
            result = receive_submission(session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, xml=xml,
                                        files=files, client_device_id="demo:geodata", user_agent="asmfield-demo")
            created += result.status == "created"
            if visit["site_code"]:
                instance_ids.append(instance_id)
    summary["visits"] = created
    summary["reviewed"] = _review(session, hooks, instance_ids)
    return summary


def _file(tmp: str, disk_name: str, name: str, content: bytes) -> IncomingFile:
    path = Path(tmp) / disk_name
    path.write_bytes(content)
    return IncomingFile(name=name, path=path, size=len(content), media_type="image/jpeg")


def seed(session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> dict:
    """Load demo sites and visits; idempotent. Returns a short summary for the console."""
    return load(session, settings, hooks=hooks, blobs=blobs)
