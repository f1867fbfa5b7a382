"""The coordinators' dashboard (issue 11): the programme's KPIs the data supports, each with its
trend, and the health of sync — computed from the same services as the JSON API.

* children taken out of the worst forms of child labour and supported: ``cases.kpi.child_labour_kpi``,
  exactly as ``GET /api/v1/kpis/child-labour`` (this year by default; disclosure control included),
  and the same call per month for the trend (a month shown as "<5" or hidden is a gap);
* sites per formalisation stage, now and at the end of each month: ``geodata.read.stats``, as
  ``GET /api/v1/sites/stats``; the share of sites at stage 3 or above is read from it;
* red flags reported per month and sites visited: SQL aggregates over site-visit answers
  (``reports.queries``);
* sync health: each device's last sync (stale after ``STALE_DAYS``), submissions waiting for their
  attachments, not mapped onto a site, flagged for review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.identity import Actor
from app.timeutil import as_utc
from cases import kpi
from geodata import read
from reports import queries

STALE_DAYS = 14
VISITED_DAYS = 90
TREND_MONTHS = 12
STAGE_MONTHS = 24
FLAGS = ("armed_presence", "forced_labour", "children_seen", "fatalities")
DEVICES_SHOWN = 20


@dataclass
class DeviceSync:
    name: str
    username: str
    last_seen_at: datetime | None
    stale: bool


@dataclass
class Dashboard:
    today: date
    #: the child-labour KPI as the API publishes it (value may be "<5" or "suppressed")
    kpi: dict[str, Any]
    #: (month, published value or None when not shown) for the last ``TREND_MONTHS`` months
    kpi_trend: list[tuple[str, int | None]]
    sites: int
    by_stage: dict[str, int]
    stage_months: list[str]
    stage_series: dict[str, list[int]]
    share_stage3: float | None
    share_stage3_trend: list[float | None]
    visited_recently: int
    visited_by_month: list[tuple[str, int]]
    flag_months: list[str]
    flags_by_month: dict[str, list[int]]
    flag_totals: dict[str, int]
    devices: list[DeviceSync] = field(default_factory=list)
    device_count: int = 0
    stale_devices: int = 0
    health: dict[str, int] = field(default_factory=dict)
    visit_form: str | None = None

    @property
    def period_from(self) -> str:
        return self.kpi["from"]

    @property
    def period_to(self) -> str:
        return self.kpi["to"]


def months_back(today: date, n: int) -> list[tuple[date, date]]:
    """(first day, last day) of each of the last ``n`` calendar months, oldest first (this one included)."""
    out: list[tuple[date, date]] = []
    y, m = today.year, today.month
    for _ in range(n):
        first = date(y, m, 1)
        last = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        out.append((first, last))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def _published(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def build(session: Session, *, actor: Actor, today: date, now: datetime) -> Dashboard:
    """Every figure of the dashboard for ``actor`` (a coordinator or an administrator)."""
    months = months_back(today, TREND_MONTHS)
    start, end = kpi.month_window(None, None, today=today)  # the API's default period
    headline = kpi.child_labour_kpi(session, actor=actor, date_from=start, date_to=end)
    trend = [(first.strftime("%Y-%m"), _published(kpi.child_labour_kpi(session, actor=actor, date_from=first,
                                                                      date_to=last, audited=False)["value"]))
             for first, last in months]

    stats = read.stats(session, months=STAGE_MONTHS, today=today)
    stages = sorted(stats.by_stage, key=int)
    stage_series = {s: [m.stages.get(s, 0) for m in stats.monthly] for s in stages}
    totals = [sum(m.stages.values()) for m in stats.monthly]

    def share(counts: dict[str, int], total: int) -> float | None:
        return round(100 * sum(v for s, v in counts.items() if int(s) >= 3) / total, 1) if total else None

    flag_months = [first.strftime("%Y-%m") for first, _ in months]
    flags = {name: [0] * len(flag_months) for name in FLAGS}
    visited = dict.fromkeys(flag_months, 0)
    visit_form = None
    for form_id, xml_form_id, version_id in queries.visit_forms(session):
        visit_form = visit_form or xml_form_id
        paths = queries.field_paths(session, version_id) if version_id else {}
        for month, counts, sites in queries.visits_by_month(session, form_id=form_id, paths=paths,
                                                             since=months[0][0]):
            if month in visited:
                i = flag_months.index(month)
                for name, n in counts.items():
                    flags[name][i] += n
                visited[month] += sites

    stale_before = now - timedelta(days=STALE_DAYS)
    devices = [DeviceSync(name=name, username=username, last_seen_at=as_utc(seen) if seen else None,
                          stale=seen is None or as_utc(seen) < stale_before)
               for _, name, username, seen in queries.devices(session, limit=DEVICES_SHOWN)]
    return Dashboard(
        today=today, kpi=headline, kpi_trend=trend,
        sites=stats.sites, by_stage={s: stats.by_stage[s] for s in stages},
        stage_months=[m.month for m in stats.monthly], stage_series=stage_series,
        share_stage3=share(stats.by_stage, stats.sites),
        share_stage3_trend=[share(m.stages, t) for m, t in zip(stats.monthly, totals, strict=True)],
        visited_recently=queries.sites_visited_since(session, today - timedelta(days=VISITED_DAYS)),
        visited_by_month=list(visited.items()),
        flag_months=flag_months, flags_by_month=flags, flag_totals={k: sum(v) for k, v in flags.items()},
        devices=devices, device_count=queries.device_count(session),
        stale_devices=queries.stale_device_count(session, stale_before),
        health=queries.sync_health(session), visit_form=visit_form,
    )
