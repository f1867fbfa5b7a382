"""Read models of the site pages: the filterable site list and one site with its evidence.

Both are built on what the sites API reads (``read.site_detail``, ``queries.site_rows``), so a page
shows what ``GET /api/v1/sites…`` answers the same person: monitors see their own visits only,
stages are read through the staleness rule. Child figures are aggregated over the visits the
reader may see and suppressed below ``SUPPRESS_BELOW`` (small numbers can point at a child).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from app.identity import Actor
from app.models import User
from app.timeutil import utcnow
from geodata import ladder, queries, read
from geodata.schemas import SiteDetail
from geodata.stages import site_stage, to_visit

#: Child figures under this many are shown as "< 5", never as the number.
SUPPRESS_BELOW = 5
PER_PAGE = 30
#: answers summed into the site's child figures (names of the site-visit form's fields)
CHILD_FIELDS = ("children_u15_seen", "children_15_17_seen", "children_referred")


def suppressed(value: int) -> str:
    """A count as shown on pages: "< 5" below the threshold, else the number."""
    return f"< {SUPPRESS_BELOW}" if value < SUPPRESS_BELOW else str(value)


def _fold(text: str | None) -> str:
    """For matching as people type: no case, no accents ("kasai-central" finds "Kasaï-Central")."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class SiteList:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    by_stage: dict[int, int]
    provinces: list[str]


def site_list(session: Session, *, stage: int | None = None, province: str | None = None, kind: str | None = None,
              visited_days: int | None = None, q: str | None = None, page: int = 1,
              per_page: int = PER_PAGE, today: date | None = None) -> SiteList:
    """Sites filtered like ``GET /api/v1/sites`` (stage: today's effective stage), searched by code or
    name, one page of them; ``by_stage`` counts the filtered sites per stage before the stage filter."""
    today = today or utcnow().date()
    since = today - timedelta(days=visited_days) if visited_days else None
    rows = queries.site_rows(session, kind=kind or None, visited_since=since)  # active sites (legal areas never)
    provinces = sorted({r.province for r in rows if r.province})
    if province:
        wanted = _fold(province)
        rows = [r for r in rows if wanted in (_fold(r.province), _fold(r.province_iso))]
    if q:
        needle = _fold(q.strip())
        rows = [r for r in rows if needle in _fold(r.code) or needle in _fold(r.name)]
    shown = []
    by_stage = {s: 0 for s in range(7)}
    for r in rows:
        stage_now, status = site_stage(r, today)
        by_stage[stage_now] += 1
        if stage is None or stage_now == stage:
            shown.append({"code": r.code, "name": r.name, "kind": r.kind, "province": r.province, "stage": stage_now,
                          "status": status, "red_flag": r.red_flag, "last_visit": r.last_visit_on,
                          "visit_count": r.visit_count})
    pages = max(1, math.ceil(len(shown) / per_page))
    page = min(max(page, 1), pages)
    return SiteList(rows=shown[(page - 1) * per_page:page * per_page], total=len(shown), page=page, pages=pages,
                    by_stage=by_stage, provinces=provinces)


@dataclass
class SitePage:
    """One site as its page shows it (``detail`` is exactly what the API answers this reader)."""

    detail: SiteDetail
    stage_names: dict[str, str]
    history_labels: list[str] = field(default_factory=list)
    history_values: list[int] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, str] = field(default_factory=dict)
    visits_with_children: int = 0
    evidence_visit: dict[str, Any] | None = None
    #: (visit, photo) of every received photo, newest visit first
    photos: list[tuple[Any, Any]] = field(default_factory=list)
    map_visits: str = "[]"
    map_geometry: str = "null"


def _person(session: Session, user_id: int | None, cache: dict[int, str]) -> str:
    if user_id is None:
        return "—"
    if user_id not in cache:
        user = session.get(User, user_id)
        cache[user_id] = (user.full_name or user.username) if user else "—"
    return cache[user_id]


def site_page(session: Session, *, actor: Actor, code: str, today: date | None = None) -> SitePage:
    """The site page of ``code`` for ``actor`` (404 ``sites.not_found`` for an unknown code)."""
    today = today or utcnow().date()
    detail = read.site_detail(session, actor=actor, code=code)
    props = detail.properties
    version = props.ladder_version or ladder.CURRENT_VERSION
    try:
        rules = ladder.load_rules(version)
    except (OSError, ValueError):  # an old ladder version no longer shipped: name stages by the current one
        rules = ladder.load_rules()
    out = SitePage(detail=detail, stage_names=dict(rules["stages"]),
                   map_geometry=json.dumps(detail.geometry, separators=(",", ":")))
    if detail.visits is None:
        return out
    history = detail.stage_history or []
    out.history_labels = [h.effective_on.isoformat()[:7] for h in history]  # months: short axis labels
    out.history_values = [h.stage for h in history]
    if history and props.stage is not None and history[-1].effective_on < today:
        out.history_labels.append(today.isoformat()[:7])
        out.history_values.append(props.stage)
    # who sent each visit, and its child counts: from the same rows read.site_detail reads
    own = actor.user.id if actor.role == "monitor" else None
    site_id = queries.site_id_by_code(session, code)
    rows = {r.instance_id: r for r in queries.visits_of(session, [site_id] if site_id else [], user_id=own)}
    setting_stage = {h.submission_id: h for h in history if h.submission_id is not None}
    names: dict[int, str] = {}
    totals = dict.fromkeys(CHILD_FIELDS, 0)
    for v in detail.visits:
        row = rows.get(v.instance_id)
        answers = to_visit(row).answers if row is not None else {}
        counts = {f: _count(answers.get(f)) for f in CHILD_FIELDS}
        for f, n in counts.items():
            totals[f] += n
        if counts["children_u15_seen"] + counts["children_15_17_seen"] > 0:
            out.visits_with_children += 1
        change = setting_stage.get(v.submission_id)
        item = {"visit": v, "monitor": _person(session, row.submitted_by_user_id if row else None, names),
                "stage_set": change.stage if change else None,
                "evidence": v.submission_id == getattr(_last_change(history), "submission_id", None),
                "photos": [p for p in v.photos if p.url]}
        out.visits.append(item)
        out.photos.extend((v, p) for p in item["photos"])
        if item["evidence"]:
            out.evidence_visit = item
    out.children = {f: suppressed(n) for f, n in totals.items()}
    out.map_visits = json.dumps([[v.lon, v.lat, v.visit_date.isoformat()] for v in detail.visits
                                 if v.lon is not None and v.lat is not None], separators=(",", ":"))
    return out


def _last_change(history: list[Any]) -> Any:
    return history[-1] if history else None


def _count(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return max(n, 0)
