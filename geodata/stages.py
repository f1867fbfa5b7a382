"""Stages: the formalisation ladder applied to each site's visits, the stage history, attestation.

``recompute_stages`` evaluates ``geodata.ladder`` over a site's current on-site visits and stores
the result on the site and its ``SiteStage`` history (rewritten only when it changed). A stored
stage is read through ``effective_stage`` (``ladder.is_stale``: a stage whose last on-site visit
expired counts as 0).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from app import audit
from app.events import announce
from app.identity import Actor
from app.settings import Settings
from app.timeutil import utcnow
from geodata import ladder, placement, queries
from geodata.errors import AssuranceWithoutExpiry, BadAssuranceType, SiteNotFound
from geodata.index import SiteIndexCache
from geodata.models import Site, SiteStage
from sync.submission_xml import by_name

ASSURANCE_TYPES = tuple(ladder.load_rules()["stage6"]["assurance_types"])


def effective_stage(stage: int, status: str, last_visit_on: date | None, today: date) -> tuple[int, str]:
    """A stored stage and status as of ``today``: 0 and "unassessed" once its last visit is stale."""
    if status != "unassessed" and last_visit_on and ladder.is_stale(last_visit_on, today):
        return 0, "unassessed"
    return stage, status


def site_stage(site: Any, today: date) -> tuple[int, str]:
    """``effective_stage`` of a site (or a site row with stage, stage_status, last_visit_on)."""
    return effective_stage(site.stage, site.stage_status, site.last_visit_on, today)


def _visit_date(data: dict[str, Any], received_at: datetime | None) -> date:
    field = ladder.load_rules()["visit_date_field"]
    for path, value in data.items():
        if path.rsplit("/", 1)[-1] == field and isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                break
    return (received_at or utcnow()).date()


def to_visit(row: Any) -> ladder.Visit:
    """A submission row as ladder evidence: answers by name, repeats by name (list of instances)."""
    data = row.data or {}
    answers = by_name(data)
    for path, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            answers[path.rsplit("/", 1)[-1]] = value
    return ladder.Visit(submission_id=row.id, on=_visit_date(data, row.received_at), answers=answers,
                        located=row.lon is not None and row.lat is not None)


def recompute_stages(session: Session, site_ids: list[int] | None = None, *, today: date | None = None) -> int:
    """Recompute the stage and stage history of these sites (all mappable sites when None).

    :returns: how many sites changed stage.
    """
    today = today or utcnow().date()
    if site_ids is None:
        # only sites with visits, history or a non-default state can need work
        ids = queries.sites_needing_stage_work(session)
    else:
        ids = sorted({i for i in site_ids if i is not None})
    if not ids:
        return 0
    sites = queries.sites_for_restage(session, ids)
    if not sites:
        return 0
    ids = [s.id for s in sites]
    visits: dict[int, list[ladder.Visit]] = {}
    for row in queries.visits_of(session, ids):
        visits.setdefault(row.site_id, []).append(to_visit(row))
    existing = queries.stage_history(session, ids)
    changed = 0
    now = utcnow()
    for site in sites:
        site_visits = visits.get(site.id, [])
        context = ladder.SiteContext(legal_codes=[*site.zea_codes, *site.permit_codes],
                                     assurance_type=site.assurance_type,
                                     assurance_valid_until=site.assurance_valid_until)
        hist = ladder.history(site_visits, context, today)
        current = ladder.evaluate(site_visits, context, today)
        wanted = [(d, r.stage, r.last_known_stage, r.status, r.red_flag, r.submission_id, r.ladder_version)
                  for d, r in hist]
        have = [(h.effective_on, h.stage, h.last_known_stage, h.status, h.red_flag, h.submission_id, h.ladder_version)
                for h in existing.get(site.id, [])]
        if wanted != have:
            queries.replace_stage_history(session, site.id, [
                SiteStage(site_id=site.id, stage=r.stage, last_known_stage=r.last_known_stage, status=r.status,
                          red_flag=r.red_flag, submission_id=r.submission_id, effective_on=d,
                          ladder_version=r.ladder_version, reasons=r.reasons, computed_at=now)
                for d, r in hist])
        dates = sorted(site_visits, key=lambda v: (v.on, v.submission_id or 0))
        last = dates[-1] if dates else None
        new_state = (current.stage, current.last_known_stage, current.status, current.red_flag, current.ladder_version,
                     len(site_visits), last.on if last else None, last.submission_id if last else None)
        old_state = (site.stage, site.last_known_stage, site.stage_status, site.red_flag, site.ladder_version,
                     site.visit_count, site.last_visit_on, site.last_visit_submission_id)
        if new_state != old_state or (site.properties or {}).get("stage_reasons") != current.reasons:
            if (site.stage, site.stage_status) != (current.stage, current.status):
                changed += 1
                announce(session, "site.stage_changed", {"site_id": site.id, "from": [site.stage, site.stage_status], "to": [current.stage, current.status]})
            (site.stage, site.last_known_stage, site.stage_status, site.red_flag, site.ladder_version,
             site.visit_count, site.last_visit_on, site.last_visit_submission_id) = new_state
            site.stage_computed_at = now
            site.properties = {**(site.properties or {}), "stage_reasons": current.reasons}
            session.add(site)
    session.flush()
    return changed


def recompute_all(session: Session, *, settings: Settings, remap: bool = True,
                  cache: SiteIndexCache | None = None) -> dict[str, int]:
    """``asmfield sites recompute``: legal overlaps, (re-map,) every site's stage and history."""
    placement.derive_legal_codes(session, cache)
    remapped = placement.remap_all(session, settings=settings, cache=cache) if remap else 0
    return {"remapped": remapped, "stage_changes": recompute_stages(session)}


# -- attestation -------------------------------------------------------------------------


def require_site(session: Session, code: str) -> Site:
    site = queries.site_by_code(session, code)
    if site is None:
        raise SiteNotFound(f"no site with code {code!r}")
    return site


def set_assurance(session: Session, *, code: str, assurance_type: str | None, valid_until: date | None,
                  actor: Actor | None = None) -> Site:
    """Record (or clear, with ``assurance_type=None``) a site's third-party attestation; restage it."""
    site = require_site(session, code)
    if assurance_type is not None:
        if assurance_type not in ASSURANCE_TYPES:
            raise BadAssuranceType(f"unknown assurance type {assurance_type!r}; use one of {', '.join(ASSURANCE_TYPES)}")
        if valid_until is None:
            raise AssuranceWithoutExpiry("an attestation needs valid_until (YYYY-MM-DD)")
    site.assurance_type = assurance_type
    site.assurance_valid_until = valid_until if assurance_type else None
    site.updated_at = utcnow()
    session.add(site)
    session.flush()
    recompute_stages(session, [site.id])
    audit.record(session, "site.set_assurance", actor=actor, object_type="site", object_id=site.code,
                 assurance_type=assurance_type, valid_until=valid_until.isoformat() if valid_until else None)
    return site
