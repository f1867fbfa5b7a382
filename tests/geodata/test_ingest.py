"""Every stored submission is mapped onto a site through the real ingest path (sync → pipeline → geodata)."""

from sqlmodel import Session, select

from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from app.models import User
from geodata.models import Site, SiteStage
from sync import review
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square, submit, visit_answers

SITE = square(*KOLWEZI, 100)


def test_visit_inside_near_and_far(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("CD-LU-000001", SITE)]))
    inside = submit(engine, settings, "monitor", visit_answers(), lon=KOLWEZI[0], lat=KOLWEZI[1])
    near = submit(engine, settings, "monitor", visit_answers(), lon=offset(SITE.bounds[2], KOLWEZI[1], 150)[0], lat=KOLWEZI[1])
    far = submit(engine, settings, "monitor", visit_answers(), lon=offset(SITE.bounds[2], KOLWEZI[1], 400)[0], lat=KOLWEZI[1])
    assert (inside.site_match, inside.site_distance_m, inside.site_id is not None) == ("inside", 0.0, True)
    assert near.site_match == "nearest" and abs(near.site_distance_m - 150) < 1.5
    assert (far.site_match, far.site_id, far.site_distance_m) == ("unmapped", None, None)


def test_named_site_far_from_the_gps_is_kept_and_flagged(engine, settings, world, forms):
    other = square(*offset(*KOLWEZI, 3000), 100)
    import_frame(engine, settings, sites_frame([("CD-LU-000001", SITE), ("CD-LU-000002", other)]))
    sub = submit(engine, settings, "monitor", visit_answers(site_id="CD-LU-000002"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    with Session(engine) as s:
        named = s.exec(select(Site).where(Site.code == "CD-LU-000002")).one()
    assert (sub.site_id, sub.site_match, sub.site_flag) == (named.id, "named", "gps_disagrees_with_named_site")
    assert 2800 < sub.site_distance_m < 3000
    agrees = submit(engine, settings, "monitor", visit_answers(site_id="CD-LU-000001"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    assert (agrees.site_match, agrees.site_flag) == ("inside", None)


def test_a_visit_sets_the_site_stage_with_history(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("CD-LU-000001", SITE)]))
    sub = submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    with Session(engine) as s:
        site = s.exec(select(Site).where(Site.code == "CD-LU-000001")).one()
        history = s.exec(select(SiteStage).where(SiteStage.site_id == site.id)).all()
    assert (site.stage, site.stage_status, site.visit_count) == (2, "assessed", 1)
    assert [(h.stage, h.submission_id, h.ladder_version) for h in history] == [(2, sub.id, "v1")]


def test_a_rejected_visit_no_longer_counts_for_the_stage_and_counts_again_when_approved(engine, settings, world,
                                                                                         forms):
    import_frame(engine, settings, sites_frame([("CD-LU-000001", SITE)]))
    sub = submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    hooks = build_hooks()

    def stage_after(state: str) -> tuple[int, int]:
        with session_scope(engine) as s:
            review.set_state(s, actor=Actor(user=s.get(User, world.coordinator.user.id)), hooks=hooks,
                             instance_id=sub.instance_id, state=state)
        with Session(engine) as s:
            site = s.exec(select(Site).where(Site.code == "CD-LU-000001")).one()
            return site.stage, site.visit_count

    assert stage_after("rejected") == (0, 0)
    assert stage_after("approved") == (2, 1)


def test_an_edit_moves_the_visit_and_restages_both_sites(engine, settings, world, forms):
    other_centre = offset(*KOLWEZI, 3000)
    import_frame(engine, settings, sites_frame([("A", SITE), ("B", square(*other_centre, 100))]))
    first = submit(engine, settings, "monitor", visit_answers(2), lon=KOLWEZI[0], lat=KOLWEZI[1])
    edit = submit(engine, settings, "monitor", visit_answers(2), lon=other_centre[0], lat=other_centre[1],
                  deprecated_id=first.instance_id)
    with Session(engine) as s:
        a = s.exec(select(Site).where(Site.code == "A")).one()
        b = s.exec(select(Site).where(Site.code == "B")).one()
    assert edit.site_id == b.id
    assert (a.stage, a.visit_count, b.stage, b.visit_count) == (0, 0, 2, 1)


def test_forms_with_mapping_off_are_never_placed_on_sites(engine, settings, world, forms):
    from forms.models import Form
    from geodata import placement
    from sync.models import Submission

    import_frame(engine, settings, sites_frame([("A", SITE)]))
    with Session(engine) as s:
        followup = s.exec(select(Form).where(Form.xml_form_id == "child_case_followup")).one()
        sub = Submission(lon=KOLWEZI[0], lat=KOLWEZI[1], data={})  # never stored: only placement reads it
        placement.map_submission(s, submission=sub, form=followup, settings=settings)
    assert (sub.site_id, sub.site_match) == (None, "disabled")


def test_missing_location_is_flagged_not_refused(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    sub = submit(engine, settings, "monitor", visit_answers(visit_type="remote", not_on_site_reason="insecurity"))
    assert (sub.site_match, sub.site_flag) == ("unmapped", "no_location")
