"""Web pages of geodata: the site map (see app.web.render for the page conventions).

``/map`` draws with Leaflet (served by us) from the lean map API (``/api/v1/map/...``,
``geodata.map_data``); the filters are a plain GET form, so the URL carries them (reload and
share) and the page shows the stage counts without JavaScript. The counts come from
``read.stats`` with the same filters as ``/api/v1/sites/stats``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from app.deps import SessionDep, SettingsDep
from app.web.i18n import N_, gettext
from app.web.render import NavLink, WebActorDep, render, require, web_router
from geodata import map_data, read

router = web_router()
#: this module's entries in the top navigation
NAV: tuple[NavLink, ...] = (NavLink("/map", N_("Map"), roles=("admin", "coordinator", "monitor"), order=20),)
#: who sees the map (as /api/v1/sites/stats and the map API: site-visit data is not for caseworkers)
MAP_ROLES = ("admin", "coordinator", "monitor")
#: formalisation stages (geodata/ladder/v1.json "stages"), as message ids
STAGE_LABELS = {
    0: N_("Unknown / unassessed"),
    1: N_("Mapped, informal"),
    2: N_("Organised"),
    3: N_("Legitimate / authorised"),
    4: N_("Controlled & monitored"),
    5: N_("Risk-mitigated (no serious abuses)"),
    6: N_("Certified / conformant"),
}


def _date(value: str | None, errors: dict[str, str], field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = gettext("Enter a date as YYYY-MM-DD.")
        return None


def _mbtiles_view(request: Request) -> dict | None:
    """Zooms and bounds of the offline base map, so the browser asks only for tiles the file has."""
    source = getattr(request.app.state, "mbtiles", None)
    if source is None:
        return None
    low, high = source.zoom_range
    bounds = source.bounds
    return {"min": low, "max": high, "bounds": ",".join(str(v) for v in bounds) if bounds else ""}


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    actor: WebActorDep,
    province: str | None = None,
    stage: str | None = None,
    mineral: str | None = None,
    flag: str | None = None,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """The map of sites by stage, with legal layers, visits and filters kept in the URL."""
    require(actor, *MAP_ROLES)
    errors: dict[str, str] = {}
    stage_value = int(stage) if stage and stage.isdigit() and int(stage) in STAGE_LABELS else None
    if stage and stage_value is None:
        errors["stage"] = gettext("Choose a stage from the list.")
    filters = map_data.MapFilters(province=province or None, stage=stage_value, mineral=(mineral or None),
                                  flag=flag in ("1", "true", "on"), date_from=_date(date_from, errors, "from"),
                                  date_to=_date(date_to, errors, "to"))
    site_ids = map_data.matching_site_ids(session, filters) if filters.any else None
    stats = read.stats(session, months=1, site_ids=site_ids)
    by_name = {name: iso for iso, name in map_data.province_names()}
    values = {"province": by_name.get(province or "", province or ""), "stage": stage or "", "mineral": mineral or "",
              "flag": filters.flag, "from": date_from or "", "to": date_to or ""}
    stages = [{"stage": s, "label": gettext(label), "count": stats.by_stage.get(str(s), 0)}
              for s, label in STAGE_LABELS.items()]
    context = {
        "values": values,
        "errors": errors,
        "stages": stages,
        "total": stats.sites,
        "provinces": map_data.province_names(),
        "minerals": map_data.mineral_choices(session),
        "tile_url": settings.tile_url,
        "mbtiles": _mbtiles_view(request),
        "status_code": 400 if errors else 200,
    }
    return render(request, "geodata/map.html", context, status_code=context["status_code"])
