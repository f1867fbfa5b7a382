"""Cases at scale: intakes through the real ingest, then the KPI, the duplicate candidates and the
case list over 10,000 cases (SQLite or PostgreSQL), in process.

    .venv/bin/python -m bench.cases_kpi [--pg URL] [--quick]

Intakes go through ``sync.ingest.receive_submission`` (parse, store, case opening, dedup keys).
The 10,000 cases of the KPI are then written directly (persons, cases, services, follow-ups,
withdrawal events): the KPI reads exactly those rows.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

SECRET = "bench-secret-key-0123456789abcdef"


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    from app import accounts
    from app.blobs import FilesystemBlobStore
    from app.composition import build_hooks
    from app.db import make_engine, migrate, session_scope
    from app.identity import Actor
    from app.settings import Settings
    from app.timeutil import utcnow
    from bench.harness import _pg, load_average
    from cases import codes, duplicates, kpi, reading
    from cases.models import CaseDedupKey, CaseEvent, CaseFollowup, CaseService, ChildCase, ChildPerson
    from forms.service import add_form
    from sync.ingest import receive_submission
    from sync.submission_xml import build_instance_xml
    from tests.cases.conftest import BUNDLED, eligible_answers

    n_intakes = 100 if quick else 500
    n_cases = 1_000 if quick else 10_000
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-casebench-"))
    db_name = None
    rows: list[dict] = []
    try:
        database_url = None
        if pg_url:
            db_name = f"asmfield_casebench_{uuid.uuid4().hex[:10]}"
            _pg(pg_url, f'CREATE DATABASE "{db_name}"')
            database_url = pg_url.rsplit("/", 1)[0] + f"/{db_name}"
        label = "PostgreSQL" if pg_url else "SQLite"
        settings = Settings(data_dir=tmp / "data", secret_key=SECRET, database_url=database_url)
        engine = make_engine(settings)
        migrate(engine)
        blobs = FilesystemBlobStore(settings.media_path)
        with session_scope(engine) as s:
            coord_org = accounts.create_organisation(s, name="Coordination", kind="coordinator")
            ngos = [accounts.create_organisation(s, name=f"NGO {i}", kind="ngo") for i in range(4)]
            coord = accounts.create_user(s, username="coord", password="bench-Password-2026!", role="coordinator",
                                         organisation=coord_org.id)
            cws = [accounts.create_user(s, username=f"cw{i}", password="bench-Password-2026!", role="caseworker",
                                        organisation=o.id) for i, o in enumerate(ngos)]
            path = BUNDLED / "child_case_intake.md"
            version = add_form(s, blobs=blobs, settings=settings, actor=None, content=path.read_bytes(),
                               filename=path.name, kind="case_intake").version
        paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
        rng = random.Random(7)

        timings = []
        for i in range(n_intakes):
            name = "".join(rng.choice("bcdfgklmnpstvz") + rng.choice("aeiou") for _ in range(3)).title()
            answers = eligible_answers(child_given_name=name, caregiver_phone=f"+243970{i:06d}",
                                       age_estimated_years=rng.randint(6, 17))
            xml = build_instance_xml(version, {paths[k]: v for k, v in answers.items()}, f"uuid:{uuid.uuid4()}")
            start = time.perf_counter()
            with session_scope(engine) as s:
                receive_submission(s, blobs=blobs, settings=settings, hooks=build_hooks(), actor=Actor(user=cws[i % 4]), xml=xml, files=[])
            timings.append(time.perf_counter() - start)
        timings.sort()
        rows.append({"db": label, "what": f"{n_intakes} intakes via receive_submission (one transaction each)",
                     "median ms": round(1000 * timings[len(timings) // 2], 1),
                     "p95 ms": round(1000 * timings[int(len(timings) * 0.95)], 1),
                     "load": load_average()})

        today = date.today()
        with session_scope(engine) as s:
            for i in range(n_cases):
                person = ChildPerson(code=codes.new_person_code())
                s.add(person)
                s.flush()
                withdrawn = i % 3 == 0
                case = ChildCase(
                    code=codes.new_case_code(), person_id=person.id, status="closed" if withdrawn else "in_services",
                    organisation_id=ngos[i % 4].id, intake_root_instance_id=f"uuid:bench-{i}", site_code=f"S-{i % 300}",
                    province=("Lualaba", "Haut-Katanga")[i % 2], classification="wfcl_hazardous",
                    classifier_version="2026.1", sex="female", age_at_identification=12, age_band="12-14",
                    date_identified=today - timedelta(days=400), consent_services=True, consent_share_partner=True,
                    consent_reporting=True, verified_at=utcnow() - timedelta(days=390),
                    first_withdrawn_on=(today - timedelta(days=i % 300)) if withdrawn else None,
                    closed_at=utcnow() if withdrawn else None,
                    closure_reason="withdrawn_and_supported" if withdrawn else None)
                s.add(case)
                s.flush()
                s.add(CaseService(case_id=case.id, service_type="education", implemented=True,
                                  implemented_on=today - timedelta(days=350)))
                s.add(CaseFollowup(case_id=case.id, observed_on=today - timedelta(days=300), in_hazardous_work=False,
                                   in_school_or_training=True))
                s.add(CaseDedupKey(case_id=case.id, kind="phone", value=f"{i % (n_cases - 50):064d}"))
                if withdrawn:
                    s.add(CaseEvent(case_id=case.id, action="criteria_met", from_status="monitoring",
                                    to_status="withdrawn_pending_closure", actor_role="system",
                                    details={"withdrawn_on": case.first_withdrawn_on.isoformat()}))
        actor = Actor(user=coord)
        for what, call in (
            ("KPI over all cases, one year", lambda s: kpi.child_labour_kpi(
                s, actor=actor, date_from=date(today.year - 1, today.month, 1),
                date_to=kpi.month_window(None, today.strftime("%Y-%m"), today=today)[1])),
            ("duplicate candidates (coordinator)", lambda s: duplicates.duplicate_candidates(s, actor=actor)),
            ("case list, first 100 (coordinator)", lambda s: reading.list_cases(s, actor=actor, limit=100)),
        ):
            runs = []
            for _ in range(3):
                with session_scope(engine) as s:
                    start = time.perf_counter()
                    result = call(s)
                    runs.append(time.perf_counter() - start)
            size = result["value"] if isinstance(result, dict) else len(result)
            rows.append({"db": label, "what": f"{what}, {n_cases + n_intakes} cases", "median ms":
                         round(1000 * sorted(runs)[1], 1), "p95 ms": "", "load": load_average(), "result": size})
        engine.dispose()
    finally:
        if db_name:
            _pg(pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_table
    from bench.harness import machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", metavar="URL")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_table("cases (SQLite)", main(None, args.quick))
    if args.pg:
        print_table("cases (PostgreSQL)", main(args.pg, args.quick))
