"""Deterministic synthetic sites, permits and visits (domain.md §1.7) for demos, tests, benchmarks.

No redistributable site or permit data exist, so we generate look-alikes: ZEA and PE polygons
as unions of 30″ cadastral cells around the four copper-cobalt clusters, ASM sites (~70 % inside
a PE, ~15 % in a ZEA, ~15 % in neither) as small polygons, and visits over several years whose
answers follow a per-site trajectory (some sites formalise, some regress, children seen on
10–30 % of visits). Same seed, same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geodata import spatial

CELL = 1 / 120  # 30 arc-seconds
#: (name, lon, lat, spread in degrees, province ISO)
CLUSTERS = (
    ("Kolwezi", 25.47, -10.72, 0.25, "CD-LU"),
    ("Likasi/Kambove", 26.73, -10.98, 0.3, "CD-HK"),
    ("Lubumbashi/Kipushi", 27.40, -11.70, 0.3, "CD-HK"),
    ("Fungurume", 26.32, -10.62, 0.15, "CD-LU"),
)
SITE_NAMES = ("Kasulo", "Kamilombe", "Shabara", "Kanina", "Mutoshi", "Musonoi", "Kapata", "Luilu", "Kabolela",
              "Mashamba", "Tilwezembe", "Kalukuluku", "Kambove", "Shinkolobwe", "Kipushi", "Ruashi", "Etoile",
              "Tenke", "Kwatebala", "Mulungwishi", "Lupoto", "Kakanda", "Luita", "Mutanda", "Kisanfu")
HOLDERS = ("GECAMINES (100%)", "TENKE FUNGURUME MINING (100%)", "KAMOTO COPPER COMPANY (75%)",
           "SOMIKA (100%)", "BOSS MINING (100%)", "RUASHI MINING (75%)", "SICOMINES (68%)")


@dataclass
class SyntheticData:
    legal: gpd.GeoDataFrame  # code, name, kind (zea|pe), properties, geometry
    sites: gpd.GeoDataFrame  # code, name, kind=asm_site, minerals, properties, geometry
    visits: list[dict[str, Any]] = field(default_factory=list)  # site_code, on, lon, lat, answers


def _blob(rng: np.random.Generator, lon: float, lat: float, cells: int) -> shapely.Geometry:
    """An axis-aligned union of ``cells`` 30″ cells grown from the cell containing (lon, lat)."""
    i0, j0 = int(np.floor(lon / CELL)), int(np.floor(lat / CELL))
    chosen = {(i0, j0)}
    frontier = [(i0, j0)]
    while len(chosen) < cells:
        i, j = frontier[rng.integers(len(frontier))]
        di, dj = ((1, 0), (-1, 0), (0, 1), (0, -1))[rng.integers(4)]
        cell = (i + di, j + dj)
        if cell not in chosen:
            chosen.add(cell)
            frontier.append(cell)
    boxes = [shapely.box(i * CELL, j * CELL, (i + 1) * CELL, (j + 1) * CELL) for i, j in sorted(chosen)]
    return shapely.union_all(boxes)


def _cells(rng: np.random.Generator, median_km2: float, max_km2: float) -> int:
    km2 = float(np.clip(rng.lognormal(np.log(median_km2), 1.0), 0.84, max_km2))
    return max(1, int(round(km2 / 0.84)))


def generate(seed: int = 2026, *, n_sites: int = 150, n_zea: int = 24, n_pe: int = 60,
             start: date = date(2019, 1, 1), end: date | None = None, visits_per_site: tuple[int, int] = (3, 6)
             ) -> SyntheticData:
    """Generate legal polygons, ASM sites and visits.

    :param visits_per_site: inclusive range of visits per site (0, 0 for sites only).
    """
    rng = np.random.default_rng(seed)
    end = end or date(2026, 10, 31)
    legal_rows: list[dict[str, Any]] = []
    for kind, count, median, max_km2 in (("zea", n_zea, 6.7, 60.0), ("pe", n_pe, 22.7, 150.0)):
        for k in range(count):
            name, clon, clat, spread, iso = CLUSTERS[rng.integers(len(CLUSTERS))]
            lon, lat = clon + rng.uniform(-spread, spread), clat + rng.uniform(-spread, spread)
            geom = _blob(rng, lon, lat, _cells(rng, median, max_km2))
            if kind == "zea":
                code = f"ZEA-{300 + k}"
                props = {"type": "ZEA", "status": "Actif", "province_iso": iso,
                         "granted_on": f"{2012 + int(rng.integers(10))}-0{1 + int(rng.integers(9))}-15"}
            else:
                code = f"{10_000 + 37 * k}"
                props = {"type": "PE", "holder": HOLDERS[rng.integers(len(HOLDERS))], "status": "Actif",
                         "valid_until": f"{2030 + int(rng.integers(15))}-12-31"}
            legal_rows.append({"code": code, "name": f"{kind.upper()} {code} ({name})", "kind": kind,
                               "minerals": ["copper", "cobalt"], "territory": None, "properties": props,
                               "geometry": geom})
    legal = gpd.GeoDataFrame(legal_rows, geometry="geometry", crs=4326)
    # Overlapping permits are real, but make containment unambiguous for the site draw.
    zea_geoms = [r["geometry"] for r in legal_rows if r["kind"] == "zea"]
    pe_geoms = [r["geometry"] for r in legal_rows if r["kind"] == "pe"]
    any_legal = shapely.union_all([r["geometry"] for r in legal_rows]) if legal_rows else shapely.Polygon()

    site_rows: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    for n in range(n_sites):
        roll = rng.random()
        target = "pe" if roll < 0.70 else "zea" if roll < 0.85 else "none"
        pool = pe_geoms if target == "pe" else zea_geoms
        for _ in range(200):
            if target != "none" and pool:
                geom = pool[rng.integers(len(pool))]
                minx, miny, maxx, maxy = geom.bounds
                lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                if geom.contains(shapely.Point(lon, lat)):
                    break
            else:
                _, clon, clat, spread, _ = CLUSTERS[rng.integers(len(CLUSTERS))]
                lon, lat = clon + rng.uniform(-spread, spread), clat + rng.uniform(-spread, spread)
                if not any_legal.contains(shapely.Point(lon, lat)):
                    break
        cluster = min(CLUSTERS, key=lambda c: (c[1] - lon) ** 2 + (c[2] - lat) ** 2)
        hectares = float(np.clip(rng.lognormal(np.log(4), 1.0), 0.5, 50))
        radius = float(np.sqrt(hectares * 10_000 / np.pi))
        geom = spatial.buffer_points_m(np.array([lon]), np.array([lat]), np.array([radius]))[0]
        code = f"{cluster[4]}-{n + 1:06d}"
        name = f"{SITE_NAMES[rng.integers(len(SITE_NAMES))]} {n + 1}"
        workers = int(np.clip(rng.lognormal(np.log(300), 1.2), 20, 15_000))
        site_rows.append({"code": code, "name": name, "kind": "asm_site",
                          "minerals": ["cobalt"] if rng.random() < 0.6 else ["copper", "cobalt"], "territory": None,
                          "properties": {"workers_estimate": workers, "cooperative_name": f"COOP {name.split()[0].upper()}"},
                          "geometry": geom})
        legal_code = None
        containing = [r for r in legal_rows if r["geometry"].contains(shapely.Point(lon, lat))]
        zea_hits = [r["code"] for r in containing if r["kind"] == "zea"]
        pe_hits = [r["code"] for r in containing if r["kind"] == "pe"]
        legal_code = (zea_hits or pe_hits or [None])[0]
        meta.append({"code": code, "lon": lon, "lat": lat, "radius": radius, "workers": workers,
                     "in_zea": bool(zea_hits), "legal_code": legal_code,
                     "start_level": float(rng.uniform(0, 2.5)), "trend": float(rng.normal(0.5, 0.6)),
                     "child_rate": float(rng.uniform(0.1, 0.3)) if rng.random() < 0.7 else float(rng.uniform(0.3, 0.6))})
    sites = gpd.GeoDataFrame(site_rows, geometry="geometry", crs=4326)

    visits: list[dict[str, Any]] = []
    span = (end - start).days
    lo, hi = visits_per_site
    for m in meta:
        count = int(rng.integers(lo, hi + 1)) if hi > 0 else 0
        days = sorted(int(d) for d in rng.choice(span, size=count, replace=False)) if count else []
        if days and rng.random() < 0.8:  # most sites were visited in the last ten months
            recent = span - int(rng.integers(0, 300))
            if recent not in days and recent > days[-1] - 1:
                days[-1] = recent
            days = sorted(set(days))
        for d in days:
            on = start + timedelta(days=d)
            years = d / 365.0
            level = m["start_level"] + m["trend"] * years
            bearing = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0, min(m["radius"] + 150, 200))
            dlon = dist * np.sin(bearing) / (111_320 * np.cos(np.radians(m["lat"])))
            dlat = dist * np.cos(bearing) / 110_574
            vlon, vlat = round(m["lon"] + dlon, 6), round(m["lat"] + dlat, 6)
            answers = visit_answers(rng, level, m, on)
            answers["visit_location"] = f"{vlat} {vlon} 1250 8"
            visits.append({"site_code": m["code"], "on": on, "lon": vlon, "lat": vlat, "answers": answers})
    return SyntheticData(legal=legal, sites=sites, visits=visits)


def visit_answers(rng: np.random.Generator, level: float, site: dict[str, Any], on: date) -> dict[str, Any]:
    """Answers of one visit (by asm_site_visit field name) for a site at formalisation ``level`` (0–6)."""
    r = rng.random
    remote = r() < 0.05
    children_here = r() < site["child_rate"] * max(0.2, 1 - level / 5)
    u15 = int(rng.integers(1, 8)) if children_here else 0
    y1517 = int(rng.integers(0, 6)) if children_here else 0
    organised = level >= 1
    legal = level >= 2.2
    controlled = level >= 3.2
    clean = level >= 4.2 and not children_here
    zone = ("inside_zea" if site["in_zea"] else "title_with_agreement") if legal and site["legal_code"] else \
        ("title_without_agreement" if site["legal_code"] else r() < 0.5 and "private_land" or "unknown")
    docs = []
    if organised:
        docs.append("coop_approval")
    if legal:
        docs.append("site_authorisation" if site["in_zea"] else "title_holder_agreement")
    armed = ["none"]
    if not clean and r() < 0.15:
        armed = ["fardc"]
    if r() < 0.01:
        armed = ["nsag"]
    answers: dict[str, Any] = {
        "site_id": site["code"],
        "visit_date": on.isoformat(),
        "visit_type": "remote" if remote else ("unannounced" if r() < 0.4 else "announced"),
        "activity_status": "suspended" if r() < 0.03 else "active",
        "minerals": ["cobalt"] if r() < 0.6 else ["copper_cobalt"] if r() < 0.5 else ["copper", "cobalt"],
        "legal_zone": zone,
        "cooperative_present": "yes" if organised else ("no" if r() < 0.7 else "unknown"),
        "coop_documents_seen": docs or ["none"],
        "miner_cards_share": "over_75" if controlled else ("from_25_to_75" if organised else "none"),
        "access_control": ("fenced_badge" if r() < 0.5 else "gate_register") if controlled else
        ("informal_guard" if organised else "none"),
        "state_services_present": ["saemape"] + (["division_mines"] if r() < 0.3 else []) if organised else ["none"],
        "workers_total": int(max(5, site["workers"] * rng.uniform(0.6, 1.4))),
        "women_present": "yes" if r() < 0.6 else "no",
        "pregnant_women_working": "no",
        "children_u15_seen": u15,
        "children_15_17_seen": y1517,
        "armed_presence": armed,
        "forced_labour_indicators": ["none"],
        "sgbv_reported": "no",
        "pit_count": int(rng.integers(1, 60)),
        "ppe_observed": "over_75" if clean else ("from_25_to_75" if controlled else "under_25"),
        "fatalities_since_last_visit": 0 if clean or r() < 0.9 else 1,
        "accidents_since_last_visit": 0 if clean else int(rng.integers(0, 3)),
        "traceability_in_place": "coop_register" if controlled else "none",
        "programmes_active": ["better_mining"] if controlled else ["none"],
        "grievance_mechanism": "known_used" if controlled else "none",
        "corrective_actions_status": "all_done" if clean else "partly_done",
        "summary_risk": "low" if clean else ("medium" if organised else "high"),
    }
    if children_here:
        answers["children_tasks"] = ["carrying_loads", "washing_ore"] if r() < 0.6 else ["selling_food_water"]
    if legal and site["legal_code"]:
        answers["zea_or_title_ref"] = site["legal_code"]
    if docs:
        answers["document_photos"] = [{"photo_documents": "documents.jpg"}]
    return answers
