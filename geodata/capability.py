"""What the geodata capability brings: site routes, ``asmfield sites``, demo sites and visits,
mapping of every stored submission onto a site, and the generated ``sites.csv``/``sites.geojson``."""

from __future__ import annotations

from app.capability import Capability
from app.events import GeneratedMedia, SubmissionInserting, SubmissionStored
from geodata import cli, demo, ingest, media, routes, submission_fields, web
from sync.review import SubmissionReviewed

capability = Capability(
    name="geodata",
    install=routes.install, install_web=web.install, nav=web.NAV,
    cli=cli.cli,
    cli_name="sites",
    seed_demo=demo.seed,
    subscriptions=((SubmissionInserting, ingest.on_submission_inserting),
                   (SubmissionStored, ingest.on_submission_stored),
                   (SubmissionReviewed, ingest.on_submission_reviewed)),
    submission_filters=(("site", submission_fields.site_condition),),
    submission_fields=(submission_fields.site_fields,),
    form_media=(
        GeneratedMedia(media.GEOJSON_NAME, media.GEOJSON_TYPE,
                       placeholder=b'{"type": "FeatureCollection", "features": []}\n',
                       generate=media.sites_geojson, generated_from=media.GENERATED_FROM),
        GeneratedMedia(media.CSV_NAME, media.CSV_TYPE, placeholder=b"name,label\n",
                       generate=media.sites_csv, generated_from=media.GENERATED_FROM),
    ),
)
