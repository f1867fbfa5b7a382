"""`asmfield sites` commands: import, retire/restore, export, recompute, attestation (thin over the geodata services).

Each run has its own site index cache (``geodata.index``), attached to the run's engine; ``--json``
prints the models of ``geodata.schemas``, as the API answers them.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from app.cliutil import current_blobs, fail, service_session
from geodata import export, importers, index, media, stages, synthetic, upsert
from geodata.schemas import AssurancePublic, ImportReport, RecomputeResult, StatusChange, dump

cli = typer.Typer(help="Sites: import, export, formalisation stages.", no_args_is_help=True)


@cli.command("import")
def import_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile, KML, CSV or XLSX (WKT or lon/lat).")],
    mapping: Annotated[str | None, typer.Option(help="Preset (ipis, cami) or attribute=column pairs, e.g. code=pcode,name=nom.")] = None,
    kind: Annotated[str | None, typer.Option(help="Force a kind for every row: asm_site, zea, pe, pr, other.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. EPSG:32735, for files that lack "
                                                 "one; overrides the file's own (with a warning).")] = None,
    radius: Annotated[float, typer.Option(help="Radius in metres for point sites without a radius column.")] = 50.0,
    latest_by: Annotated[str | None, typer.Option("--latest-by", help="A register with one row per visit: keep each "
                                                  "code's latest row by this date column (default: the one column "
                                                  "named date, visit_date, date_visite or vdate; points only).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Keep a register's older rows as observations of their "
                                                            "site (else they are dropped).")] = False,
    progress_bar: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar on stderr "
                                                      "(default: when stderr is a terminal).")] = None,
    target: Annotated[str, typer.Option("--as", help="Where rows go: sites, legal-areas, or auto (rows whose kind or "
                                                     "type names a title, ZEA or zone are legal areas).")] = "auto",
    layer: Annotated[str | None, typer.Option(help="The legal areas' layer (codes are unique within it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Accept rows that change a feature's kind, or (auto) give a "
                                                        "site's code to a legal area or the reverse.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Retire the sites / legal areas of the layer that the "
                                                            "file no longer holds (never deleted).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and report; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Import sites and legal areas by code; re-maps submissions, restages sites, republishes the site list."""
    from rich.console import Console
    from rich.progress import Progress

    if not path.is_file():
        fail(f"{path} is not a file")
    if target not in upsert.TARGETS:
        fail(f"--as must be one of {', '.join(upsert.TARGETS)}")
    with service_session() as (settings, session):
        show = (sys.stderr.isatty() if progress_bar is None else progress_bar) and not as_json
        with Progress(console=Console(stderr=True), disable=not show, transient=True) as progress:
            reading = progress.add_task(f"Reading {path.name}", total=1.0)
            read = importers.read_sites(path, mapping=upsert.with_title_type(mapping, target), kind=kind, crs=crs,
                                        default_radius_m=radius,
                                        latest_by=latest_by, history=history,
                                        progress=lambda done, _: progress.update(reading, completed=done))
            task = progress.add_task(f"Importing {path.name}", total=len(read.frame))
            report = upsert.upsert_sites(session, read=read, settings=settings, blobs=current_blobs(ctx, settings),
                                         source=path.name, progress=lambda n: progress.update(task, completed=n),
                                         dry_run=dry_run, cache=index.attach(session.get_bind()), target=target,
                                         layer=layer, force=force, replace=replace)
        if as_json:
            typer.echo(json.dumps(dump(ImportReport.model_validate(report)), default=str))
            return
        for line in report_lines(report, path.name):
            typer.echo(line)


def report_lines(report: dict, filename: str) -> list[str]:
    """An import report as the CLI prints it: where rows went, the counts, then (dry run) every
    feature by outcome, refused rows with why, and remarks."""
    verb = "Dry run, nothing written: would import" if report["dry_run"] else "Imported"
    lines = [f"{verb} {filename} ({report['format']}): {report['rows']:,} rows: {report['sites']:,} sites, "
             f"{report['legal_areas']:,} legal areas (layer {report['layer']})",
             f"  {report['created']} created, {report['updated']} updated, {report['unchanged']} unchanged, "
             f"{report['refused']} refused, {report['retired']} retired, {report['skipped']} skipped"
             + (f", {report['merged']} merged into a multi-polygon" if report.get("merged") else "")]
    if report.get("observations"):
        lines.append(f"  {report['observations']} older rows kept as site observations")
    listed = ("created", "updated", "unchanged", "refused", "retired") if report["dry_run"] else ("refused", "retired")
    for action in listed:
        rows = [i for i in report["items"] if i["action"] == action]
        if not rows:
            continue
        lines.append(f"{action.capitalize()} ({len(rows)}):")
        for item in rows[:50]:
            where = f"legal area {item.get('layer')}:" if item.get("target") == "legal_area" else "site "
            at = f"row {item['row']} " if item.get("row") is not None else ""
            changed = f" ({', '.join(item['changed'])})" if item.get("changed") else ""
            reason = f": {item['reason']}" if item.get("reason") else ""
            lines.append(f"  {at}{where}{item['code']}{changed}{reason}")
        if len(rows) > 50:
            lines.append(f"  … {len(rows) - 50} more (use --json)")
    if report["problems"]:
        lines.append(f"Skipped ({len(report['problems'])}):")
    for p in report["problems"][:50]:
        lines.append(f"  row {p['row']} {p.get('code') or ''}: {p['problem']}")
    for w in report["warnings"][:50]:
        where = f" row {w['row']} {w.get('code') or ''}" if w["row"] else ""  # row 0: the whole file
        lines.append(f"  warning{where}: {w['warning']}")
    if len(report["problems"]) + len(report["warnings"]) > 100:
        lines.append("  (more problems not shown; use --json)")
    return lines


def _status_cmd(ctx: typer.Context, code: str, layer: str | None, as_json: bool, *, retired: bool) -> None:
    with service_session() as (settings, session):
        result = upsert.set_status(session, code=code, layer=layer, retired=retired, settings=settings,
                                   blobs=current_blobs(ctx, settings), cache=index.attach(session.get_bind()))
        what = f"Legal area {layer}:{code}" if layer else f"Site {code}"
        typer.echo(json.dumps(dump(StatusChange.model_validate(result))) if as_json else
                   f"{what} {result['status']}" + ("" if result["changed"] else " (it already was)"))


@cli.command("retire")
def retire_cmd(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Site code (or legal area code with --layer).")],
    layer: Annotated[str | None, typer.Option(help="Retire this layer's legal area instead of a site.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Retire a site (off tablets, statistics and placement; visits and history kept) or a legal area."""
    _status_cmd(ctx, code, layer, as_json, retired=True)


@cli.command("restore")
def restore_cmd(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Site code (or legal area code with --layer).")],
    layer: Annotated[str | None, typer.Option(help="Restore this layer's legal area instead of a site.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Bring a retired site (or legal area) back."""
    _status_cmd(ctx, code, layer, as_json, retired=False)


@cli.command("export")
def export_cmd(
    path: Annotated[Path, typer.Argument(help="Output file: .geojson or .gpkg.")],
) -> None:
    """Export every site with its stage as GeoJSON or GeoPackage."""
    fmt = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}.get(path.suffix.lower())
    if fmt is None:
        fail("the output file must end in .geojson or .gpkg")
    with service_session() as (_, session):
        export.export(session, fmt=fmt, path=path)
        typer.echo(f"Sites written to {path}")


@cli.command("recompute")
def recompute_cmd(
    no_remap: Annotated[bool, typer.Option("--no-remap", help="Only recompute stages; keep site mappings.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Re-map every submission onto the sites and recompute every site's stage and history."""
    with service_session() as (settings, session):
        result = RecomputeResult.model_validate(stages.recompute_all(session, settings=settings, remap=not no_remap,
                                                                     cache=index.attach(session.get_bind())))
        typer.echo(json.dumps(dump(result)) if as_json else
                   f"{result.remapped} submissions re-mapped, {result.stage_changes} sites changed stage")


@cli.command("publish-media")
def publish_media_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Regenerate sites.csv and sites.geojson on every form version that references them."""
    with service_session() as (settings, session):
        result = media.publish_media(session, blobs=current_blobs(ctx, settings))
        typer.echo(json.dumps(result) if as_json else
                   f"Site list ({result['sites']} sites) published: {result['versions_changed']} form files changed")


@cli.command("assurance")
def assurance_cmd(
    code: Annotated[str, typer.Argument(help="Site code.")],
    assurance_type: Annotated[str | None, typer.Option("--type", help="egc_kumi, craft_verification, copper_mark_jdds, other_approved; omit to clear.")] = None,
    valid_until: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Record (or clear) a site's third-party attestation, needed for stage 6."""
    until = None
    if valid_until:
        try:
            until = date.fromisoformat(valid_until)
        except ValueError:
            fail(f"valid-until {valid_until!r} is not a date (YYYY-MM-DD)")
    with service_session() as (_, session):
        site = stages.set_assurance(session, code=code, assurance_type=assurance_type, valid_until=until)
        typer.echo(json.dumps(dump(AssurancePublic.from_site(site))) if as_json else
                   f"Site {site.code}: attestation {site.assurance_type or 'cleared'}, stage {site.stage}")


@cli.command("generate")
def generate_cmd(
    path: Annotated[Path, typer.Argument(help="Output GeoJSON file of synthetic sites and permit polygons.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 2026,
    sites: Annotated[int, typer.Option(help="Number of ASM sites.")] = 150,
) -> None:
    """Write a synthetic site file (domain.md §1.7) for trying out imports."""
    import pandas as pd

    data = synthetic.generate(seed, n_sites=sites, visits_per_site=(0, 0))
    frame = pd.concat([data.legal, data.sites], ignore_index=True)
    frame["minerals"] = frame["minerals"].map(",".join)
    frame = frame.drop(columns=["properties", "territory"])
    frame.to_file(path, driver="GeoJSON")
    typer.echo(f"{len(frame)} features written to {path}")
