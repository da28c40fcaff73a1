"""XLSForm spreadsheets: realistic forms read to the right set, malformed ones are refused with
every problem at its sheet, row and column, and what the writer writes reads back the same.

Fixtures are markdown tables turned into real .xlsx workbooks by pyxform's own helper, so each
test reads like the spreadsheet it stands for (row 1 is the header, as in a spreadsheet)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyxform.xls2json_backends import md_table_to_workbook

from bot.consultations.files import describe_flow, load_directory, load_file, load_files
from bot.consultations.problems import ConsultationError, Problem
from bot.consultations.sets import (
    ConsultationSet,
    QuestionType,
    consultation_digest_hash,
    load_consultation,
)
from bot.consultations.xlsform import read_xlsform
from bot.consultations.xlsform_write import write_shipped, write_xlsform
from bot.kernel import i18n

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "consultations"
KNOWN = {"ext.engagement", "ext.funding", "ext.information", "int.finance", "int.capacity"}


def book(md: str) -> bytes:
    out = io.BytesIO()
    md_table_to_workbook(md).save(out)
    return out.getvalue()


def problems(md: str) -> list[str]:
    with pytest.raises(ConsultationError) as caught:
        read_xlsform(book(md), "form.xlsx", KNOWN)
    return [str(p) for p in caught.value.problems]


SETTINGS = """
| settings |
| | form_id | version | form_title | default_language | audience |
| | drop-in | 3 | Drop-in sessions | English (en) | everyone |
"""

# Choices with codes, a Welsh column, a scale with its ends named, an optional text, and
# conditions inside conditions.
DROP_IN = (
    """
| survey |
| | type | name | label | label::Welsh (cy) | hint | required | relevant | parameters | min_label | max_label | min_label::Welsh (cy) | constraint | constraint_message |
| | note | hello | We want your views. | Rydym eisiau eich barn. | | | | | | | | | |
| | select_one came | came | How often do you come? | Pa mor aml? | | yes | | | | | | | |
| | range | welcome | How welcome are you? | Pa mor groesawgar? | | yes | ${came} != 'never' | start=1 end=5 step=1 | Not welcome | Very welcome | Dim croeso | | |
| | select_multiple stops | stops | What makes it hard? | Beth sy'n anodd? | Pick all that fit. | yes | | | | | | | |
| | text | why | Tell us more | Dywedwch fwy | | no | ${came} = 'never' or (${welcome} <= 2 and not(selected(${stops}, 'nothing'))) | | | | | string-length(.) <= 300 | Please keep it under 300 letters |
| | note | bye | Thank you. | Diolch. | | | | | | | | | |
| choices |
| | list_name | name | label | label::Welsh (cy) | codes | exclusive |
| | came | weekly | Most weeks | Bron bob wythnos | | |
| | came | never | Never | Byth | ext.engagement | |
| | stops | money | It costs too much | Mae'n rhy ddrud | ext.funding, int.finance | |
| | stops | times | Bad times | Amseroedd gwael | ext.engagement | |
| | stops | nothing | Nothing | Dim byd | | yes |
"""
    + SETTINGS
)


def test_a_realistic_form_reads_to_its_set() -> None:
    spec = read_xlsform(book(DROP_IN), "drop-in.xlsx", KNOWN)
    assert (spec.id, spec.version, spec.title, spec.audience_hint.value, spec.language) == (
        "drop-in",
        3,
        "Drop-in sessions",
        "everyone",
        "en",
    )
    assert spec.intro == "We want your views." and spec.closing == "Thank you."
    assert spec.estimated_minutes == 3  # 4 questions at about 40 seconds
    came, welcome, stops, why = spec.questions
    assert came.type is QuestionType.SINGLE
    assert [o.codes for o in came.options or ()] == [[], ["ext.engagement"]]
    assert welcome.type is QuestionType.SCALE and welcome.scale is not None
    assert (welcome.scale.min, welcome.scale.max, welcome.scale.min_label) == (1, 5, "Not welcome")
    assert welcome.relevant == "${came} != 'never'"
    assert stops.type is QuestionType.MULTI and stops.help == "Pick all that fit."
    assert (stops.options or [])[0].codes == ["ext.funding", "int.finance"]
    assert [o.exclusive for o in stops.options or ()] == [False, False, True]
    assert why.type is QuestionType.TEXT and not why.required and why.max_length == 300
    assert why.constraint_message == "Please keep it under 300 letters"
    assert why.relevant is not None and "not(selected(${stops}, 'nothing'))" in why.relevant
    cy = spec.translations["cy"]
    assert cy["intro"] == "Rydym eisiau eich barn." and cy["closing"] == "Diolch."
    assert cy["came.o.never"] == "Byth" and cy["welcome.min_label"] == "Dim croeso"
    assert "welcome.max_label" not in cy  # not given: the main text is used


def test_yes_no_lists_bounded_integers_and_the_main_language_column() -> None:
    spec = read_xlsform(
        book(
            """
| survey |
| | type | name | label::English (en) | label::Welsh (cy) | constraint | min_label | max_label | codes | codes_at_most | appearance |
| | note | intro | First note. | | | | | | | |
| | note | intro2 | Second note. | | | | | | | |
| | select_one yn | told | Were you told? | A ddywedwyd? | | | | | | minimal |
| | integer | score | Score us | | . >= 0 and . <= 10 | Bad | Good | ext.engagement | 3 | likert |
| | text | more | Anything else? | | | | | | | multiline |
| choices |
| | list name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| settings |
| | form_id | version | form_title | default_language | audience | estimated_minutes |
| | kobo-style | 2026120601 | Kobo style | English (en) | organisations | 2 |
"""
        ),
        "kobo.xlsx",
    )
    told, score, more = spec.questions
    assert spec.intro == "First note.\n\nSecond note." and spec.closing is None
    assert spec.version == 2026120601 and spec.estimated_minutes == 2
    assert told.type is QuestionType.YESNO and told.codes == []
    assert spec.translations == {"cy": {"told.text": "A ddywedwyd?"}}
    assert score.type is QuestionType.SCALE and score.scale is not None
    assert (score.scale.min, score.scale.max, score.codes_at_most) == (0, 10, 3)
    # XLSForm's default: a text question is optional unless required says yes.
    assert not more.required and more.max_length == 800


def test_codes_on_one_answer_of_a_yes_no_list() -> None:
    spec = read_xlsform(
        book(
            """
| survey |
| | type | name | label |
| | note | intro | Hi |
| | select_one yn | told | Were you told? |
| choices |
| | list_name | name | label | codes |
| | yn | yes | Yes | |
| | yn | no | No | ext.engagement |
"""
            + SETTINGS
        ),
        "yn.xlsx",
    )
    assert (spec.questions[0].codes, spec.questions[0].codes_when) == (["ext.engagement"], "no")


# -- refused, each at its cell ----------------------------------------------------------------

_SURVEY_HEAD = """
| survey |
| | type | name | label | relevant |
| | note | intro | Hello | |
"""
_CHOICES = """
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| | opts | a | A |
| | opts | b | B |
"""


def form(*rows: str, choices: str = _CHOICES) -> str:
    return _SURVEY_HEAD + "\n".join(rows) + choices + SETTINGS


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "| | selct_one opts | q | Q? | |",
            "form.xlsx: survey row 3, column A (type): unknown type 'selct_one opts' "
            "(consultbot asks select_one, select_multiple, range, integer, text and note)",
        ),
        (
            "| | select_one colours | q | Q? | |",
            "form.xlsx: survey row 3, column A (type): no list 'colours' on the choices sheet",
        ),
        (
            "| | begin_group | g | A screen | |",
            "form.xlsx: survey row 3, column A (type): begin_group: groups show several "
            "questions on one screen; a chat asks one question at a time",
        ),
        (
            "| | begin_repeat | r | Again | |",
            "form.xlsx: survey row 3, column A (type): begin_repeat: repeats (the same "
            "questions again and again) are not supported",
        ),
        (
            "| | geopoint | where | Where? | |",
            "form.xlsx: survey row 3, column A (type): geopoint: locations are not asked in a chat",
        ),
        (
            "| | calculate | c | | |",
            "form.xlsx: survey row 3, column A (type): calculate: calculations are not supported",
        ),
        (
            "| | integer | n | How many? | |",
            "form.xlsx: survey row 3, column A (type): an integer is asked with buttons, so "
            "bound it with a constraint like '. >= 1 and . <= 5' (from 0 to 10)",
        ),
        (
            "| | select_one opts | q | Q? | ${q} == 'a' |",
            "form.xlsx: survey row 3, column D (relevant): compare with a single = (XPath has "
            "no ==) (at character 7)",
        ),
        (
            "| | select_one opts | q | Q? | ${later} = 'a' |",
            "form.xlsx: survey row 3, column D (relevant): ${later} is not a question asked "
            "before this one (at character 1)",
        ),
    ],
    ids=[
        "unknown-type",
        "missing-list",
        "group",
        "repeat",
        "geopoint",
        "calculate",
        "unbounded-integer",
        "bad-expression",
        "later-question",
    ],
)
def test_each_refusal_names_its_cell(row: str, expected: str) -> None:
    assert problems(form(row)) == [expected]


def test_duplicate_names_and_a_label_too_long_for_a_button() -> None:
    long_label = "A label that is far too long for a phone's button"
    choices = _CHOICES.replace("| opts | b | B |", f"| opts | b | {long_label} |")
    got = problems(
        form("| | select_one opts | q | Q? | |", "| | text | q | Again? | |", choices=choices)
    )
    assert got == [
        "form.xlsx: survey row 4, column B (name): duplicate name 'q' (also row 3)",
        f"form.xlsx: choices row 5, column C (label): at most 40 characters (got {len(long_label)})",
    ]


def test_media_columns_languages_without_codes_and_unknown_columns() -> None:
    md = (
        """
| survey |
| | type | name | label | image | label::Welsh | choice_filter | colour |
| | note | intro | Hello | | | | |
| | select_one opts | q | Q? | photo.jpg | | | |
| | select_one opts | r | R? | | | a = b | |
"""
        + _CHOICES
        + SETTINGS.replace("English (en)", "English")
    )
    assert problems(md) == [
        "form.xlsx: survey row 1, column E (label::Welsh): give the language code in "
        "brackets, like 'label::Welsh (cy)'",
        "form.xlsx: survey row 1, column G (colour): consultbot does not know this column "
        "(see the README's list)",
        "form.xlsx: survey row 3, column D (image): media (pictures and sound) cannot be shown "
        "on a chat's buttons",
        "form.xlsx: survey row 4, column F (choice_filter): options filtered by earlier answers "
        "are not supported; use relevant",
        "form.xlsx: settings row 2, column D (default_language): write the language with its "
        "code, like 'English (en)' (got 'English')",
    ]


def test_every_problem_of_a_file_comes_at_once_in_sheet_and_row_order() -> None:
    md = """
| survey |
| | type | name | label | relevant |
| | note | intro | Hello | |
| | select_one opts | q | Q? | |
| | note | middle | Between | |
| | begin_group | g | Screen | |
| | select_one nolist | r | R? | |
| | text | t | T? | ${q} = 'zzz' |
| | select_one yn | q | Again? | ${t} = |
| choices |
| | list_name | name | label | codes |
| | opts | a | A | ext.made_up |
| | opts | a | B | |
| | yn | yes | Yes | |
| | yn | no | No | |
| settings |
| | form_id | version | form_title | audience |
| | Bad Id | 0 | T | everyone |
"""
    assert problems(md) == [
        "form.xlsx: survey row 4, column A (type): a note between questions cannot be shown: "
        "notes before the first question are the intro, after the last one the closing text",
        "form.xlsx: survey row 5, column A (type): begin_group: groups show several questions "
        "on one screen; a chat asks one question at a time",
        "form.xlsx: survey row 6, column A (type): no list 'nolist' on the choices sheet",
        "form.xlsx: survey row 7, column D (relevant): ${q} has no option 'zzz' (its options: "
        "a) (at character 1)",
        "form.xlsx: survey row 8, column B (name): duplicate name 'q' (also row 3)",
        # The set's own model checks codes and ids in the same run, beside the row checks.
        "form.xlsx: choices row 2, column D (codes): unknown code 'ext.made_up' (not in the "
        "codebook)",
        "form.xlsx: choices row 3, column B (name): duplicate name 'a' in list 'opts' (also row 2)",
        "form.xlsx: settings row 2, column A (form_id): use lowercase letters, digits and "
        "single '-' between words (got 'Bad Id')",
        "form.xlsx: settings row 2, column B (version): a whole number from 1 to 2147483647 "
        "(got '0')",
    ]


def test_what_pyxform_alone_refuses_comes_back_with_its_row() -> None:
    md = form("| | text | 1st | First? | |")
    assert problems(md) == [
        "form.xlsx: survey row 3: XLSForm: On the 'survey' sheet, the 'name' value is invalid. "
        "Names must begin with a letter or underscore. After the first character, names may "
        "contain letters, digits, underscores, hyphens, or periods."
    ]


def test_not_a_workbook() -> None:
    with pytest.raises(ConsultationError) as caught:
        read_xlsform(b"id = 'x'", "upload.xlsx")
    assert str(caught.value).startswith("upload.xlsx: not an .xlsx XLSForm workbook")


def test_problem_wording_for_both_formats() -> None:
    cell = Problem("f.xlsx", 7, "relevant", "bad", "survey", "F")
    assert str(cell) == "f.xlsx: survey row 7, column F (relevant): bad"
    assert (
        str(Problem("f.xlsx", None, None, "no such sheet", "osm")) == "f.xlsx: osm: no such sheet"
    )
    assert str(Problem("f.toml", 3, "questions[0].id", "bad")) == "f.toml:3: questions[0].id: bad"


# -- writing and reading back -----------------------------------------------------------------


def round_trip(spec: ConsultationSet) -> ConsultationSet:
    out = io.BytesIO()
    write_xlsform(spec, out)
    return read_xlsform(out.getvalue(), f"{spec.id}.xlsx")


@pytest.mark.parametrize(
    "source",
    sorted(TEMPLATES.glob("*.toml")) + sorted((TEMPLATES / "starter").glob("*.toml")),
    ids=lambda p: p.stem,
)
def test_shipped_sets_round_trip(source: Path) -> None:
    spec = load_consultation(source)
    back = round_trip(spec)
    assert back == spec
    assert consultation_digest_hash(back) == consultation_digest_hash(spec)


def test_a_read_form_round_trips() -> None:
    spec = read_xlsform(book(DROP_IN), "drop-in.xlsx")
    assert consultation_digest_hash(round_trip(spec)) == consultation_digest_hash(spec)
    assert round_trip(spec) == spec


def test_shipped_spreadsheets_are_current(tmp_path: Path) -> None:
    """The .xlsx copies say what their TOML sources say; `make xlsforms` rewrites them."""
    shipped = {p.name for p in (TEMPLATES / "xlsform").glob("*.xlsx")}
    sources = [*load_directory(TEMPLATES), *load_directory(TEMPLATES / "starter")]
    assert shipped == {f"{s.id}.xlsx" for s in sources}
    for spec in sources:
        copy = read_xlsform(TEMPLATES / "xlsform" / f"{spec.id}.xlsx", spec.id)
        assert consultation_digest_hash(copy) == consultation_digest_hash(spec), (
            f"templates/consultations/xlsform/{spec.id}.xlsx is stale: run make xlsforms"
        )
    assert [p.name for p in write_shipped(TEMPLATES, tmp_path)] == [
        f"{s.id}.xlsx" for s in load_directory(TEMPLATES)
    ]


def test_one_shipped_set_branches_and_the_starter_is_what_the_readme_says() -> None:
    assert any(q.relevant for s in load_directory(TEMPLATES) for q in s.questions)
    starter = read_xlsform(TEMPLATES / "xlsform" / "first-consultation.xlsx", "starter")
    types = {q.type for q in starter.questions}
    assert {QuestionType.SINGLE, QuestionType.SCALE, QuestionType.TEXT} <= types
    assert any(o.codes for q in starter.questions for o in q.options or ())
    assert any(q.relevant for q in starter.questions)
    assert any(not q.required for q in starter.questions)
    assert set(starter.translations) == {"cy"}


_ids = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs")),
    min_size=1,
    max_size=30,
)


@st.composite
def consultation_sets(draw: st.DrawFn) -> ConsultationSet:
    ids = draw(st.lists(_ids, min_size=1, max_size=5, unique=True))
    questions = []
    for k, qid in enumerate(ids):
        kind = draw(st.sampled_from(["single", "multi", "scale", "yesno", "text"]))
        q: dict[str, object] = {"id": qid, "type": kind, "text": draw(_words)}
        if draw(st.booleans()):
            q["help"] = draw(_words)
        if kind in ("single", "multi"):
            names = draw(st.lists(_ids, min_size=2, max_size=4, unique=True))
            q["options"] = [
                {
                    "id": n,
                    "label": draw(_words),
                    "codes": draw(st.sampled_from([[], ["ext.funding"]])),
                }
                for n in names
            ]
        elif kind == "scale":
            low = draw(st.integers(0, 3))
            q["scale"] = {
                "min": low,
                "max": draw(st.integers(low + 1, 10)),
                "min_label": "lo",
                "max_label": "hi",
            }
        elif kind == "yesno" and draw(st.booleans()):
            q["codes"], q["codes_when"] = ["ext.engagement"], draw(st.sampled_from(["yes", "no"]))
        elif kind == "text":
            q["required"] = draw(st.booleans())
            q["max_length"] = draw(st.integers(1, 2000))
        if k and draw(st.booleans()):
            q["relevant"] = f"${{{ids[k - 1]}}} != ''"
        questions.append(q)
    data = {
        "id": "generated",
        "version": draw(st.integers(1, 2**31 - 1)),
        "title": draw(_words),
        "intro": draw(_words),
        "estimated_minutes": draw(st.integers(1, 30)),
        "audience_hint": draw(st.sampled_from(["organisations", "service_users", "everyone"])),
        "questions": questions,
    }
    if draw(st.booleans()):
        data["closing"] = draw(_words)
    if draw(st.booleans()):
        data["translations"] = {"cy": {"title": draw(_words), f"{ids[0]}.text": draw(_words)}}
    return ConsultationSet.model_validate(data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(consultation_sets())
def test_generated_sets_round_trip(spec: ConsultationSet) -> None:
    assert consultation_digest_hash(round_trip(spec)) == consultation_digest_hash(spec)


# -- one loader for both formats --------------------------------------------------------------


def test_load_file_picks_the_reader_and_refuses_other_files(tmp_path: Path) -> None:
    xlsx = tmp_path / "drop-in.xlsx"
    xlsx.write_bytes(book(DROP_IN))
    assert load_file(xlsx).id == "drop-in"
    assert load_file(TEMPLATES / "pulse.toml").id == "pulse"
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ConsultationError, match=r"write it as \.toml or as an XLSForm \.xlsx"):
        load_file(other)


def test_the_same_set_in_both_formats_is_refused(tmp_path: Path) -> None:
    toml = TEMPLATES / "pulse.toml"
    xlsx = TEMPLATES / "xlsform" / "pulse.xlsx"
    with pytest.raises(ConsultationError) as caught:
        load_files([toml, xlsx])
    assert str(caught.value) == f"{xlsx}: duplicate consultation id 'pulse' (also in {toml})"


def test_the_flow_shows_every_branch() -> None:
    lines = describe_flow(read_xlsform(book(DROP_IN), "drop-in.xlsx"))
    assert lines[0].startswith("drop-in v3: Drop-in sessions (everyone, about 3 min, 4 questions")
    assert "  2. welcome (scale 1-5)  asked when ${came} != 'never'" in lines
    assert any(line.strip().startswith("branches: 4. why is asked when") for line in lines)
    assert (
        "  4. why (text, optional)  asked when "
        + ("${came} = 'never' or (${welcome} <= 2 and not(selected(${stops}, 'nothing')))")
        in lines
    )


def test_empty_cells_and_missing_columns_that_are_needed() -> None:
    md = """
| survey |
| | type | name | label |
| | note | intro | Hello |
| | select_one o | q | |
| | range | r | R |
| choices |
| | list_name | name | label |
| | o | a | |
| | o | b | B |
| settings |
| | form_id | form_title |
| | s | S |
"""
    assert problems(md) == [
        "form.xlsx: survey row 3, column C (label): required, but empty",
        "form.xlsx: survey row 4, max_label: required: add this column",
        "form.xlsx: survey row 4, min_label: required: add this column",
        "form.xlsx: choices row 2, column C (label): required, but empty",
        "form.xlsx: settings row 2, audience: audience is required on the settings sheet",
    ]


def test_text_that_looks_like_a_formula_is_written_as_text() -> None:
    """Found by the generated round trip: openpyxl stores '=...' as a formula, which reads back
    empty (and which a spreadsheet program would run)."""
    spec = ConsultationSet.model_validate(
        {
            "id": "formulas",
            "version": 1,
            "title": "=SUM(1)",
            "intro": "=0",
            "estimated_minutes": 1,
            "audience_hint": "everyone",
            "questions": [
                {
                    "id": "a",
                    "type": "single",
                    "text": "=1+1",
                    "options": [{"id": "j", "label": '=HYPERLINK("x")'}, {"id": "u", "label": "0"}],
                }
            ],
        }
    )
    assert round_trip(spec) == spec


def test_problems_are_said_in_the_language_being_spoken() -> None:
    """A coordinator who chose Welsh reads every problem in Welsh, XLSForm's words kept; the
    same file read with no language set (the CLI) is in the deployment's English."""
    md = """
| survey |
| | type | name | label | parameters | relevant |
| | note | intro | Hello | | |
| | range | r | R | start=one end=5 | |
| | text | t | | | ${r} = 'x' |
| | geopoint | where | Where? | | |
| settings |
| | form_id | form_title | audience |
| | s | S | all |
"""
    with i18n.speaking("cy"):
        welsh = problems(md)
    assert welsh == [
        "form.xlsx: survey rhes 3, colofn D (parameters): nid yw start yn rhif cyfan"
        " (cafwyd 'one') (ysgrifennwch start=1 end=5)",
        "form.xlsx: survey rhes 4, colofn C (label): gofynnol, ond yn wag",
        "form.xlsx: survey rhes 5, colofn A (type): geopoint: ni ofynnir am leoliadau mewn sgwrs",
        "form.xlsx: settings rhes 2, colofn C (audience): rhaid iddo fod yn un o 'organisations',"
        " 'service_users' neu 'everyone' (cafwyd 'all')",
    ]
    assert problems(md)[0] == (
        "form.xlsx: survey row 3, column D (parameters): start is not a whole number"
        " (got 'one') (write start=1 end=5)"
    )
