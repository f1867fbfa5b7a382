"""The dashboard at ``/`` (coordinators and administrators); caseworkers land on their cases and
field monitors on their submissions (see app.web.render for the page conventions)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.deps import SessionDep
from app.timeutil import utcnow
from app.web import charts
from app.web.i18n import N_, gettext
from app.web.render import NavLink, WebActorDep, redirect, render, web_router
from reports import dashboard

router = web_router()
#: this module's entries in the top navigation
NAV: tuple[NavLink, ...] = (NavLink("/", N_("Dashboard"), roles=("admin", "coordinator"), order=10),)
#: where the roles without a dashboard start
LANDING = {"caseworker": "/cases", "monitor": "/submissions"}
#: red flag -> (its name on the page, the CSS class of its bars)
FLAG_NAMES = {"armed_presence": (N_("Armed presence"), "f-armed"),
              "forced_labour": (N_("Forced labour indicators"), "f-forced"),
              "children_seen": (N_("Children seen on site"), "f-children"),
              "fatalities": (N_("Fatalities reported"), "f-fatal")}


def _charts(board: dashboard.Dashboard) -> dict[str, Any]:
    """The page's charts, with series named in the reader's language."""
    stage_names = {s: gettext("Stage %(n)s", n=s) for s in board.stage_series}
    flag_names = {name: gettext(label) for name, (label, _css) in FLAG_NAMES.items()}
    return {
        "kpi": charts.sparkline([v for _, v in board.kpi_trend],
                                label=gettext("Children taken out of the worst forms of child labour, per month")),
        "share": charts.sparkline(board.share_stage3_trend,
                                  label=gettext("Share of sites at stage 3 or above, at the end of each month")),
        "visited": charts.sparkline([n for _, n in board.visited_by_month],
                                    label=gettext("Sites visited per month")),
        "flags_spark": charts.sparkline([sum(v[i] for v in board.flags_by_month.values())
                                         for i in range(len(board.flag_months))],
                                        label=gettext("Visits reporting a red flag, per month")),
        "stages": charts.stacked_bars(board.stage_months,
                                      {stage_names[s]: v for s, v in board.stage_series.items()},
                                      classes={stage_names[s]: f"s{s}" for s in board.stage_series},
                                      label=gettext("Sites per formalisation stage at the end of each month")),
        "flags": charts.stacked_bars(board.flag_months,
                                     {flag_names[f]: board.flags_by_month[f] for f in dashboard.FLAGS},
                                     classes={flag_names[f]: FLAG_NAMES[f][1] for f in dashboard.FLAGS},
                                     label=gettext("Visits reporting each red flag, per month")),
    }


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    """KPIs with their trends, and sync health; other roles are sent to their own start page."""
    if actor.role in LANDING:
        return redirect(LANDING[actor.role])
    now = utcnow()
    board = dashboard.build(session, actor=actor, today=now.date(), now=now)
    return render(request, "reports/dashboard.html", {
        "board": board, "chart": _charts(board), "flag_names": FLAG_NAMES, "stale_days": dashboard.STALE_DAYS,
        "visited_days": dashboard.VISITED_DAYS, "trend_months": dashboard.TREND_MONTHS})
