"""Demo data of the geodata capability for ``asmfield init --demo``: synthetic ZEA/PE polygons,
ASM sites and site visits (domain.md §1.7), deterministic with a seed.

Visits are real submissions of the bundled ``asm_site_visit`` form, built with
``sync.submission_xml.build_instance_xml`` and stored through ``sync.ingest.receive_submission``
(so mapping, stages and cases run exactly as for a tablet). Idempotent: sites are upserted by
code and visits have fixed instance IDs, so a second run changes nothing.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from app.blobs import BlobStore
from app.events import Hooks
from app.identity import Actor
from app.models import User
from app.settings import Settings
from forms.models import Form, FormVersion
from geodata import importers, synthetic, upsert
from sync.ingest import receive_submission
from sync.media import IncomingFile
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


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 120, 60)).save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def load(session: Session, settings: Settings, *, hooks: Hooks, blobs: BlobStore, seed: int = SEED, n_sites: int = 150, visits_per_site=(3, 5),  # noqa: ANN001
         username: str | None = None, with_visits: bool = True) -> dict[str, Any]:
    """Import synthetic polygons and sites, then submit their visits; returns counts."""
    data = synthetic.generate(seed, n_sites=n_sites, visits_per_site=visits_per_site if with_visits else (0, 0))
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
    stmt = select(User).where(User.role.in_(("monitor", "admin")))  # type: ignore[attr-defined]
    if username:
        stmt = select(User).where(User.username == username)
    user = session.exec(stmt.order_by(User.role.desc(), User.id)).first()  # monitors before admins
    if user is None:
        return summary
    actor = Actor(user=user, via="demo")
    photo = _jpeg()
    created = 0
    with tempfile.TemporaryDirectory(prefix="asmfield-demo-") as tmp:
        for i, visit in enumerate(sorted(data.visits, key=lambda v: (v["on"], v["site_code"]))):
            instance_id = f"uuid:{uuid.uuid5(NAMESPACE, f'{seed}:{i}')}"
            payload = answers_to_data(version, visit["answers"])
            xml = build_instance_xml(version, payload, instance_id)
            files = []
            if "document_photos" in visit["answers"]:
                path = Path(tmp) / f"{i}.jpg"
                path.write_bytes(photo)
                files.append(IncomingFile(name="documents.jpg", path=path, size=len(photo), media_type="image/jpeg"))
            result = receive_submission(session, blobs=blobs, settings=settings, hooks=hooks, actor=actor, xml=xml, files=files,
                                        client_device_id="demo:geodata", user_agent="asmfield-demo")
            created += result.status == "created"
    summary["visits"] = created
    return summary


def seed(session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> dict:
    """Load demo sites and visits; idempotent. Returns a short summary for the console."""
    return load(session, settings, hooks=hooks, blobs=blobs)
