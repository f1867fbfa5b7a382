"""The bundled forms convert cleanly, pass ODK Validate, and match the contract and their README."""

from __future__ import annotations

import re

import pytest
from pyxform.xls2json_backends import md_to_dict
from pyxform.xls2xform import convert as pyxform_convert

from forms.demo import BUNDLED, bundled_config, bundled_files
from forms.xform import parse_xform
from forms.xlsform import convert

SITE_VISIT = BUNDLED / "asm_site_visit.md"
#: domain.md §2.8, in order.
QUESTIONS = """site_id visit_date visit_type not_on_site_reason team_members sources_interviewed visit_location
site_boundary activity_status minerals legal_zone zea_or_title_ref cooperative_present cooperative_name
coop_documents_seen miner_cards_share access_control state_services_present workers_total women_present
women_tasks pregnant_women_working children_u15_seen children_15_17_seen children_tasks children_referred
childcare_or_school_nearby armed_presence armed_interference forced_labour_indicators sgbv_reported
illegal_payments pit_count pit_types max_depth_m ppe_observed safety_measures accidents_since_last_visit
fatalities_since_last_visit water_sanitation environment_issues buyers traceability_in_place programmes_active
grievance_mechanism corrective_actions_status photo_site photo_documents summary_risk notes""".split()


def site_visit():
    return parse_xform(convert(SITE_VISIT.read_text(), kind="md").xform)


@pytest.mark.parametrize("path", bundled_files(), ids=lambda p: p.name)
def test_every_bundled_form_converts_and_has_a_kind(path):
    result = convert(path.read_text(), kind="md") if path.suffix == ".md" else None
    info = parse_xform(result.xform if result else path.read_bytes())
    assert info.xml_form_id == path.stem
    assert info.version
    assert bundled_config()[path.stem]["kind"] in ("site_visit", "case_intake", "case_followup", "general")


def test_bundled_forms_pass_odk_validate():
    """ODK Validate (JavaRosa, shipped with pyxform) loads each form as ODK Collect would."""
    for path in bundled_files():
        pyxform_convert(xlsform=path.read_text(), file_type=".md", validate=True)


def test_site_visit_has_the_fifty_questions_of_the_domain_outline():
    info = site_visit()
    questions = [f["name"] for f in info.fields if f["kind"] == "field" and f["name"] not in ("start", "end")]
    assert questions == QUESTIONS
    assert info.root == "asm_site_visit"
    assert pyxform_warnings() == []


def pyxform_warnings() -> list[str]:
    return convert(SITE_VISIT.read_text(), kind="md").warnings


def test_site_visit_follows_the_field_contract():
    fields = {f["name"]: f for f in site_visit().fields}
    assert fields["site_id"]["path"] == "/asm_site_visit/site_id"
    assert fields["site_id"]["type"] == "select1" and fields["site_id"]["choices_from"] == "sites.geojson"
    assert fields["visit_location"]["type"] == "geopoint" and fields["visit_location"]["repeat"] is None
    assert fields["site_boundary"]["type"] == "geoshape"
    assert fields["site_photos"]["kind"] == "repeat"
    assert fields["photo_site"]["type"] == "binary" and fields["photo_site"]["mediatype"] == "image/*"
    assert fields["photo_site"]["repeat"] == "/asm_site_visit/site_photos"
    assert fields["coop_documents_seen"]["type"] == "select"
    assert fields["legal_zone"]["choices"] == ["inside_zea", "title_with_agreement", "title_without_agreement",
                                              "private_land", "unknown"]
    assert fields["workers_total"]["type"] == "int" and fields["max_depth_m"]["type"] == "decimal"
    assert fields["visit_date"]["required"] is True


def test_every_question_and_choice_has_english_and_french_labels():
    for f in site_visit().fields:
        if f["name"] in ("start", "end"):
            continue
        assert set(f["labels"]) == {"English (en)", "Français (fr)"}, f["name"]
        assert all(f["labels"].values()), f["name"]
    sheet = md_to_dict(SITE_VISIT.read_text())
    for choice in sheet["choices"]:
        assert choice.get("label::English (en)") and choice.get("label::Français (fr)"), choice


def test_readme_lists_every_field_and_choice_value():
    readme = (BUNDLED / "README.md").read_text()
    sheet = md_to_dict(SITE_VISIT.read_text())
    for name in QUESTIONS:
        assert f"`{name}`" in readme
    lists: dict[str, list[str]] = {}
    for choice in sheet["choices"]:
        lists.setdefault(choice["list_name"], []).append(choice["name"])
    for list_name, values in lists.items():
        row = re.search(rf"^\| `{list_name}` \| (.*) \|$", readme, re.M)
        assert row, list_name
        assert row.group(1) == ", ".join(f"`{v}`" for v in values), list_name
