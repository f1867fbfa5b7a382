"""What the cases capability brings: case routes, ``asmfield cases``, demo cases, cases opened and
advanced from stored case-form submissions, the record policies that keep children's data in the
case routes (who may edit a case record; which submissions are case data), and the per-caller
``cases.csv`` form media."""

from __future__ import annotations

from app.capability import Capability
from app.events import GeneratedMedia, SubmissionStored
from cases import cli, demo, ingest, media, routes, web

capability = Capability(
    name="cases",
    install=routes.install, install_web=web.install, nav=web.NAV,
    cli=cli.cli,
    cli_name="cases",
    seed_demo=demo.seed,
    subscriptions=((SubmissionStored, ingest.on_submission_stored),),
    edit_policies=(ingest.edit_policy,),
    restricted_data_policies=(ingest.holds_case_data,),
    form_media=(GeneratedMedia(media.CASES_CSV, "text/csv", per_caller=media.case_list_csv),),
)
