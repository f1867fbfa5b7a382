"""The formalisation ladder (domain.md §2.9): a site's stage from the evidence of its visits.

Pure and deterministic: no database, no clock (``as_of`` is passed in). The rules' field names,
choice values and thresholds live in a versioned data file (``geodata/ladder/v1.json``); this
module only knows the *shape* of the ladder: stages 0–6 built on each other, sticky documents,
red-flag cap, inactive status and staleness after 12 months.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

LADDER_DIR = Path(__file__).resolve().parent / "ladder"
CURRENT_VERSION = "v1"


@lru_cache(maxsize=8)
def load_rules(version: str = CURRENT_VERSION) -> dict[str, Any]:
    """The ladder rules of ``version`` (a JSON file in geodata/ladder/)."""
    path = LADDER_DIR / f"{version}.json"
    rules = json.loads(path.read_text(encoding="utf-8"))
    if rules.get("version") != version:
        raise ValueError(f"{path.name} declares version {rules.get('version')!r}")
    return rules


@dataclass
class Visit:
    """One visit's evidence: answers by XLSForm name (``sync.submission_xml.by_name``)."""

    submission_id: int | None
    on: date
    answers: dict[str, Any]
    located: bool = True


@dataclass
class SiteContext:
    """What the site record contributes: legal polygons containing it and its attestation."""

    legal_codes: list[str] = field(default_factory=list)
    assurance_type: str | None = None
    assurance_valid_until: date | None = None


@dataclass
class StageResult:
    stage: int
    last_known_stage: int
    status: str  # assessed | unassessed | inactive
    red_flag: bool
    reasons: list[str]
    submission_id: int | None
    ladder_version: str

    @property
    def key(self) -> tuple[int, int, str, bool]:
        return (self.stage, self.last_known_stage, self.status, self.red_flag)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split() if v]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def normalise_ref(value: str | None) -> str:
    """``"ZEA 360"``, ``"zea-360"`` and ``"360"`` all become ``"360"``; ``"PE 1234"`` → ``"1234"``."""
    if not value:
        return ""
    text = "".join(ch for ch in str(value).upper() if ch.isalnum())
    for prefix in ("ZEA", "PEPM", "PER", "PE", "PR"):
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix):].lstrip("0") or "0"
    return text.lstrip("0") or text


def is_stale(last_on_site: date, as_of: date, rules: dict[str, Any] | None = None) -> bool:
    """The staleness rule, the only place it is written: an on-site visit counts for
    ``valid_visit_days`` days; after that the site's stage is 0 ("unassessed") until the next one
    (its last known stage is kept). Used by ``evaluate`` and by every reader of stored stages."""
    days = (rules or load_rules())["valid_visit_days"]
    return (as_of - last_on_site).days > days


def is_on_site(visit: Visit, rules: dict[str, Any]) -> bool:
    spec = rules["on_site"]
    value = visit.answers.get(spec["field"])
    return value not in spec["not_in"]


def serious_abuse(answers: dict[str, Any], rules: dict[str, Any]) -> list[str]:
    """Reasons why a visit shows an OECD Annex II serious abuse (empty when none)."""
    r = rules["serious_abuse"]
    reasons = []
    if set(_list(answers.get(r["armed_field"]))) & set(r["armed_any"]):
        reasons.append("non-state armed group present")
    if set(_list(answers.get(r["interference_field"]))) & set(r["interference_any"]):
        reasons.append("forced labour by armed actors")
    fl = _list(answers.get(r["forced_labour_field"]))
    if [v for v in fl if v != r["forced_labour_none"]]:
        reasons.append("forced-labour indicators reported")
    if answers.get(r["sgbv_field"]) == r["sgbv_value"]:
        reasons.append("sexual violence reported")
    children = sum(_int(answers.get(f)) or 0 for f in r["children_fields"])
    if children > 0 and set(_list(answers.get(r["children_tasks_field"]))) & set(r["hazardous_tasks"]):
        reasons.append("children in hazardous work")
    return reasons


def _clean_for_stage5(visit: Visit, rules: dict[str, Any]) -> list[str]:
    """What keeps one visit from counting towards stage 5 (empty when it is clean)."""
    r = rules["stage5"]
    a = visit.answers
    problems = list(serious_abuse(a, rules))
    if sum(_int(a.get(f)) or 0 for f in rules["serious_abuse"]["children_fields"]) > 0:
        problems.append("children seen on site")
    armed = set(_list(a.get(r["armed_field"])))
    if not armed or not armed <= set(r["armed_allowed"]):
        problems.append("armed actors present or not reported")
    if a.get(r["ppe_field"]) not in r["ppe_in"]:
        problems.append("PPE below threshold")
    if _int(a.get(r["fatalities_field"])) not in (0,):
        problems.append("fatalities reported or not answered")
    corrective = a.get(r["corrective_field"])
    if corrective is not None and corrective not in r["corrective_in"]:
        problems.append("corrective actions open")
    return problems


def evaluate(visits: list[Visit], context: SiteContext, as_of: date, version: str = CURRENT_VERSION) -> StageResult:
    """The stage of a site as of ``as_of`` from the visits made on or before that day.

    :param visits: all visits of the site (any order); later ones are ignored.
    :param context: the site's legal polygons (codes of ZEA/PE/PR containing it) and attestation.
    :param as_of: the day the stage is computed for (today, or a visit's date when replaying).
    """
    rules = load_rules(version)
    seen = sorted((v for v in visits if v.on <= as_of), key=lambda v: (v.on, v.submission_id or 0))
    on_site = [v for v in seen if is_on_site(v, rules)]
    if not on_site:
        return StageResult(0, 0, "unassessed", False, ["no on-site visit"], seen[-1].submission_id if seen else None,
                           version)
    latest = on_site[-1]
    window_start = as_of - timedelta(days=rules["valid_visit_days"])
    if is_stale(latest.on, as_of, rules):
        # stale: 0 for KPIs; the last known stage is what the site had on its last visit
        known = evaluate(visits, context, latest.on, version)
        reason = f"no on-site visit since {latest.on.isoformat()} (over {rules['valid_visit_days']} days)"
        return StageResult(0, known.stage, "unassessed", known.red_flag, [*known.reasons, reason],
                           latest.submission_id, version)
    stage, reasons = _ladder(on_site, context, as_of, rules)
    abuse = serious_abuse(latest.answers, rules)
    cap = rules["overrides"]["serious_abuse_cap"]
    # The cap stays until stage-5 evidence is re-established after the last abusive visit.
    abusive = [v for v in on_site if v.on >= window_start and serious_abuse(v.answers, rules)]
    if abusive and stage > cap:
        after = [v for v in on_site if (v.on, v.submission_id or 0) > (abusive[-1].on, abusive[-1].submission_id or 0)]
        if not _stage5_pair(after, rules):
            stage = cap
            reasons.append(f"capped at {cap}: serious abuse on {abusive[-1].on.isoformat()}")
    red_flag = bool(abuse)
    if abuse:
        reasons.extend(f"red flag: {a}" for a in abuse)
    status = "assessed"
    ov = rules["overrides"]
    if latest.answers.get(ov["inactive_field"]) in ov["inactive_values"]:
        status = "inactive"
        reasons.append(f"activity status {latest.answers.get(ov['inactive_field'])}")
    return StageResult(stage, stage, status, red_flag, reasons, latest.submission_id, version)


def _stage5_pair(on_site: list[Visit], rules: dict[str, Any]) -> bool:
    """The latest on-site visit and an earlier one ≥ N days before it are clean, and so is every visit between."""
    r = rules["stage5"]
    if not on_site:
        return False
    latest = on_site[-1]
    if _clean_for_stage5(latest, rules):
        return False
    for v in reversed(on_site[:-1]):
        if _clean_for_stage5(v, rules):
            return False
        if (latest.on - v.on).days >= r["min_days_between_visits"]:
            return True
    return False


def _ladder(on_site: list[Visit], context: SiteContext, as_of: date, rules: dict[str, Any]) -> tuple[int, list[str]]:
    """Climb the ladder on the latest on-site visit; return the stage and why it stops there."""
    latest = on_site[-1]
    a = latest.answers
    r1 = rules["stage1"]
    missing = [f for f in r1["answered"] if a.get(f) in (None, "", [])]
    if r1.get("located") and not latest.located:
        missing.append("location")
    if missing:
        return 0, [f"stage 1 needs {', '.join(missing)}"]

    # Sticky documents: seen on any on-site visit within the document validity window.
    r2 = rules["stage2"]
    doc_start = as_of - timedelta(days=rules["document_validity_days"])
    documents: set[str] = set()
    for v in on_site:
        if v.on < doc_start:
            continue
        if r2.get("require_document_photo") and v.answers.get(r2["document_photo_field"]) in (None, "", []):
            continue
        documents |= set(_list(v.answers.get(r2["documents_field"])))

    if a.get(r2["cooperative_field"]) != r2["cooperative_value"]:
        return 1, ["stage 2 needs an approved cooperative"]
    if not set(r2["documents_all"]) <= documents:
        return 1, ["stage 2 needs the cooperative approval seen (with a document photo)"]
    recent = on_site[-r2["services_last_visits"]:]
    if not any(set(_list(v.answers.get(r2["services_field"]))) & set(r2["services_any"]) for v in recent):
        return 1, ["stage 2 needs SAEMAPE or the Division des Mines present at one of the last visits"]

    r3 = rules["stage3"]
    if a.get(r3["legal_zone_field"]) not in r3["legal_zone_in"]:
        return 2, ["stage 3 needs the site inside a ZEA or a title with an ASM agreement"]
    ref = normalise_ref(a.get(r3["reference_field"]))
    if not ref or ref not in {normalise_ref(c) for c in context.legal_codes}:
        return 2, ["stage 3 needs the ZEA/title number to match a ZEA/PE/PR polygon containing the site"]
    if not documents & set(r3["documents_any"]):
        return 2, ["stage 3 needs a site authorisation or an agreement with the title holder"]

    r4 = rules["stage4"]
    checks = [
        (a.get(r4["access_control_field"]) in r4["access_control_in"], "controlled access"),
        (a.get(r4["miner_cards_field"]) in r4["miner_cards_in"], "at least 25 % of miners with cards"),
        (a.get(r4["traceability_field"]) not in (None, *r4["traceability_not_in"]), "traceability"),
        (bool(set(_list(a.get(r4["programmes_field"]))) & set(r4["programmes_any"])), "a monitoring programme"),
        (a.get(r4["grievance_field"]) not in (None, *r4["grievance_not_in"]), "a grievance mechanism"),
    ]
    lacking = [label for ok, label in checks if not ok]
    if lacking:
        return 3, [f"stage 4 needs {', '.join(lacking)}"]

    if not _stage5_pair(on_site, rules):
        problems = _clean_for_stage5(latest, rules)
        detail = "; ".join(problems) if problems else "two clean on-site visits at least " \
            f"{rules['stage5']['min_days_between_visits']} days apart"
        return 4, [f"stage 5 needs {detail}"]

    r6 = rules["stage6"]
    if context.assurance_type not in r6["assurance_types"]:
        return 5, ["stage 6 needs a third-party attestation on the site record"]
    if context.assurance_valid_until is None or context.assurance_valid_until < as_of:
        return 5, ["stage 6 needs an unexpired attestation"]
    return 6, []


def history(visits: list[Visit], context: SiteContext, today: date, version: str = CURRENT_VERSION) -> list[tuple[date, StageResult]]:
    """Replay the visits in date order: each change of stage with the day it took effect.

    A lapse into "unassessed" (12 months without an on-site visit) is a change too, dated
    the day the last visit expired, with no submission.
    """
    rules = load_rules(version)
    changes: list[tuple[date, StageResult]] = []
    ordered = sorted(visits, key=lambda v: (v.on, v.submission_id or 0))
    days = sorted({v.on for v in ordered if v.on <= today})
    # check points: each visit day, and the day after the last on-site visit before it expires
    checkpoints: list[date] = []
    for i, d in enumerate(days):
        checkpoints.append(d)
        expiry = d + timedelta(days=rules["valid_visit_days"] + 1)
        nxt = days[i + 1] if i + 1 < len(days) else today + timedelta(days=1)
        if expiry < nxt and expiry <= today:
            checkpoints.append(expiry)
    last_key = None
    for d in checkpoints:
        result = evaluate(ordered, context, d, version)
        if result.key != last_key:
            if d not in days:
                result.submission_id = None
            changes.append((d, result))
            last_key = result.key
    return changes
