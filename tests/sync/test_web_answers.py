"""A submission's answers labelled from the form's own translations (sync.web.answers)."""

from __future__ import annotations

from forms.xform import parse_xform
from forms.xlsform import convert
from sync.web.answers import build, pick

FORM = """
| survey |
| | type | name | label::English (en) | label::Français (fr) |
| | select_one kind | kind | Kind of visit | Type de visite |
| | select_multiple ore | ores | Ores | Minerais |
| | geopoint | gps | GPS | GPS |
| | begin_repeat | pits | Pits | Puits |
| | decimal | depth | Depth | Profondeur |
| | end_repeat | | | |
| choices |
| | list_name | name | label::English (en) | label::Français (fr) |
| | kind | surprise | Unannounced | Inopinée |
| | ore | gold | Gold | Or |
| | ore | tin | Tin | Étain |
| settings |
| | form_id | version |
| | labelled | 1 |
"""


def answers_in(lang: str):  # noqa: ANN201
    xml = convert(FORM, kind="md").xform
    xml = xml if isinstance(xml, str) else xml.decode()
    data = {"/data/kind": "surprise", "/data/ores": ["gold", "tin"], "/data/gps": "-10.1234567 25.5 1200 4",
            "/data/pits": [{"/data/pits/depth": 3.5}, {"/data/pits/depth": 7}]}
    return build(parse_xform(xml).fields, xml, data, [], lang, instance_label="#%(n)s")


def test_questions_and_choices_are_labelled_in_the_readers_language():
    french = [(r.label, r.text) for r in answers_in("fr").rows]
    assert french == [("Type de visite", "Inopinée"), ("Minerais", "Or, Étain"), ("GPS", "-10.123457, 25.5 (± 4 m)"),
                      ("Puits #1", None), ("Profondeur", "3.5"), ("Puits #2", None), ("Profondeur", "7")]
    assert [r.text for r in answers_in("en").rows][:2] == ["Unannounced", "Gold, Tin"]


def test_geopoints_are_collected_for_the_map():
    assert answers_in("en").points == [{"lat": -10.1234567, "lon": 25.5, "label": "GPS"}]


def test_a_label_falls_back_to_the_default_then_any_language():
    assert pick({"English (en)": "Gold", "Français (fr)": "Or"}, "fr") == "Or"
    assert pick({"default": "Gold", "Kiswahili (sw)": "Dhahabu"}, "fr") == "Gold"
    assert pick({"Kiswahili (sw)": "Dhahabu"}, "fr") == "Dhahabu"
    assert pick({}, "fr") is None
