"""Consultation sets: the shipped files load, and every kind of mistake names file, line, field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bot.consultations.files import load_directory
from bot.consultations.sets import (
    DEFAULT_TEXT_MAX_LENGTH,
    ConsultationError,
    ConsultationSet,
    QuestionType,
    consultation_digest_hash,
    load_consultation,
)

SHIPPED = Path(__file__).resolve().parents[2] / "templates" / "consultations"

# The taxonomy's codes (docs: barrier-taxonomy.md); written out rather than imported so this
# test does not depend on the codebook module.
BARRIER_CODES = {
    "ext.contracts",
    "ext.funding",
    "ext.red_tape",
    "ext.engagement",
    "ext.information",
    "int.finance",
    "int.premises",
    "int.capacity",
    "int.leadership",
    "int.skills",
}
SUCCESS_CODES = {
    "success.commitment",
    "success.relationships",
    "success.joint_funding",
    "success.clear_roles",
    "success.regular_meetings",
    "success.shared_aims",
}
KNOWN_CODES = BARRIER_CODES | SUCCESS_CODES

# Line numbers in the tests below refer to this text (line 1 is `id = ...`).
VALID = textwrap.dedent(
    """\
    id = "test-set"
    version = 1
    title = "Test set"
    intro = "Why we ask."
    estimated_minutes = 3
    audience_hint = "organisations"

    [[questions]]
    id = "first"
    type = "single"
    text = "When are you asked?"
    options = [
      { id = "early", label = "Early" },
      { id = "late", label = "Late", codes = ["ext.engagement"] },
    ]

    [[questions]]
    id = "second"
    type = "multi"
    text = "What gets in the way?"
    options = [
      { id = "money", label = "Money", codes = ["int.finance"] },
      { id = "time", label = "Time", codes = [
        "int.capacity",
      ] },
      { id = "none", label = "None of these", exclusive = true },
    ]

    [[questions]]
    id = "rating"
    type = "scale"
    text = "How well?"
    scale = { min = 1, max = 5, min_label = "Poor", max_label = "Great" }
    codes = ["ext.engagement"]
    codes_at_most = 2

    [[questions]]
    id = "feedback"
    type = "yesno"
    text = "Did you hear back?"
    codes = ["ext.engagement"]
    codes_when = "no"

    [[questions]]
    id = "obstacle"
    type = "text"
    text = "What is the biggest obstacle?"
    required = false
    """
)


def write(tmp_path: Path, text: str, name: str = "set.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str, known: set[str] | None = None) -> ConsultationError:
    path = write(tmp_path, text)
    with pytest.raises(ConsultationError) as caught:
        load_consultation(path, known)
    assert caught.value.file == str(path)
    return caught.value


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing needle, so tests survive edits to VALID."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


# -- shipped sets -----------------------------------------------------------------------------


@pytest.mark.parametrize("known", [None, KNOWN_CODES], ids=["any-codes", "taxonomy-codes"])
def test_shipped_sets_load(known: set[str] | None) -> None:
    sets = load_directory(SHIPPED, known)
    assert [s.id for s in sets] == [
        "hearing-back",
        "partnership-health-check",
        "pulse",
        "service-user-check-in",
    ]
    for s in sets:
        assert s.all_codes() <= KNOWN_CODES
        for q in s.questions:
            for o in q.options or ():
                assert len(o.label) <= 40


def test_shipped_sets_shape() -> None:
    by_id = {s.id: s for s in load_directory(SHIPPED, KNOWN_CODES)}
    health = by_id["partnership-health-check"]
    assert 5 <= len(health.questions) <= 6
    # Every barrier code in the taxonomy can be reached from the health check's options.
    assert health.all_codes() >= BARRIER_CODES
    assert any(q.type is QuestionType.TEXT for q in health.questions)
    assert 1 <= len(by_id["pulse"].questions) <= 2
    assert 3 <= len(by_id["service-user-check-in"].questions) <= 6


def _english_texts(s: ConsultationSet) -> dict[str, str]:
    """Every translatable key that has English text in the set, by translatable()'s keys."""
    texts: dict[str, str | None] = {"title": s.title, "intro": s.intro, "closing": s.closing}
    for q in s.questions:
        texts[f"{q.id}.text"] = q.text
        texts[f"{q.id}.help"] = q.help
        if q.scale is not None:
            texts[f"{q.id}.min_label"] = q.scale.min_label
            texts[f"{q.id}.max_label"] = q.scale.max_label
        for o in q.options or ():
            texts[f"{q.id}.o.{o.id}"] = o.label
    assert set(texts) <= set(s.translatable())
    return {key: text for key, text in texts.items() if text}


@pytest.mark.parametrize("folder", [SHIPPED, SHIPPED / "starter"], ids=["shipped", "starter"])
def test_shipped_sets_have_complete_welsh(folder: Path) -> None:
    """Issue 15: English and Welsh ship complete. A key added in English without its Welsh
    fails here, so nobody is asked half a consultation in the other language."""
    sets = load_directory(folder, KNOWN_CODES)
    assert sets
    for s in sets:
        welsh = s.translations.get("cy", {})
        missing = sorted(set(_english_texts(s)) - set(welsh))
        assert not missing, f"{s.id}: no Welsh for {missing}"


def test_valid_sample_and_defaults(tmp_path: Path) -> None:
    s = load_consultation(write(tmp_path, VALID), KNOWN_CODES)
    obstacle = s.question("obstacle")
    assert obstacle is not None and obstacle.max_length == DEFAULT_TEXT_MAX_LENGTH
    assert obstacle.required is False
    assert s.question("first").required is True  # type: ignore[union-attr]


# -- errors: file, line, field ----------------------------------------------------------------


def test_bad_type(tmp_path: Path) -> None:
    text = VALID.replace('type = "multi"', 'type = "dropdown"')
    err = error_for(tmp_path, text)
    assert err.line == line_of(text, "dropdown")
    assert err.field == "questions[1].type"
    assert "dropdown" in str(err)


def test_duplicate_question_id(tmp_path: Path) -> None:
    text = VALID.replace('id = "feedback"', 'id = "rating"')
    err = error_for(tmp_path, text)
    assert err.field == "questions[3].id"
    assert err.line == line_of(text, 'id = "rating"', occurrence=2)
    assert "duplicate question id 'rating'" in str(err)


def test_duplicate_option_id(tmp_path: Path) -> None:
    text = VALID.replace('{ id = "none"', '{ id = "money"')
    err = error_for(tmp_path, text)
    assert err.field == "questions[1].options[2].id"
    assert err.line == line_of(text, 'label = "None of these"')


def test_too_long_label(tmp_path: Path) -> None:
    long_label = "A label far too long to fit on a phone button here"
    text = VALID.replace('label = "Time"', f'label = "{long_label}"')
    path = write(tmp_path, text)
    with pytest.raises(ConsultationError) as caught:
        load_consultation(path)
    line = line_of(text, long_label)
    assert str(caught.value) == (
        f"{path}:{line}: questions[1].options[1].label: "
        f"at most 40 characters (got {len(long_label)})"
    )


def test_option_spread_over_lines_points_at_its_own_line(tmp_path: Path) -> None:
    # The "time" option's codes array spreads over lines below the option's start.
    text = VALID.replace('"int.capacity",\n', '"int.capacity",\n    "int.bogus",\n')
    err = error_for(tmp_path, text, KNOWN_CODES)
    assert err.field == "questions[1].options[1].codes[1]"
    assert err.line == line_of(text, "int.bogus")
    assert "unknown code 'int.bogus'" in str(err)


def test_missing_options_for_single(tmp_path: Path) -> None:
    start = VALID.index("options = [")
    end = VALID.index("]\n", start) + 2
    text = VALID[:start] + VALID[end:]
    err = error_for(tmp_path, text)
    assert err.field == "questions[0].options"
    assert err.line == line_of(text, "[[questions]]")  # the question's own header
    assert "needs 2–8 options" in str(err)


def test_too_few_options(tmp_path: Path) -> None:
    text = VALID.replace('  { id = "early", label = "Early" },\n', "")
    err = error_for(tmp_path, text)
    assert err.field == "questions[0].options"
    assert err.line == line_of(text, "options = [")
    assert "at least 2 items (got 1)" in str(err)


def test_scale_min_not_below_max(tmp_path: Path) -> None:
    text = VALID.replace("min = 1, max = 5", "min = 5, max = 5")
    err = error_for(tmp_path, text)
    assert err.field == "questions[2].scale.max"
    assert err.line == line_of(text, "min = 5, max = 5")
    assert "greater than min" in str(err)


def test_scale_in_its_own_table(tmp_path: Path) -> None:
    text = VALID.replace(
        'scale = { min = 1, max = 5, min_label = "Poor", max_label = "Great" }\n', ""
    ).replace(
        'codes_when = "no"\n',
        'codes_when = "no"\n\n[questions.scale]\nmin = 1\nmax = 5\nmin_label = ""\n'
        'max_label = "Great"\n',
    )
    # [questions.scale] belongs to the latest [[questions]], i.e. the yes/no question.
    err = error_for(tmp_path, text)
    fields = {p.field: p.line for p in err.problems}
    assert "questions[2].scale" in fields  # the scale question lost its scale
    assert fields.get("questions[3].scale.min_label") == line_of(text, 'min_label = ""')


def test_unknown_code(tmp_path: Path) -> None:
    text = VALID.replace('codes = ["ext.engagement"] }', 'codes = ["ext.vibes"] }')
    err = error_for(tmp_path, text, KNOWN_CODES)
    assert err.field == "questions[0].options[1].codes[0]"
    assert err.line == line_of(text, "ext.vibes")
    # Without a codebook, any well-formed code is accepted.
    assert load_consultation(write(tmp_path, text, "other.toml")).id == "test-set"


def test_malformed_code_and_question_level_code(tmp_path: Path) -> None:
    text = VALID.replace(
        'codes = ["ext.engagement"]\ncodes_when', 'codes = ["Engagement"]\ncodes_when'
    )
    err = error_for(tmp_path, text)
    assert err.field == "questions[3].codes[0]"
    assert err.line == line_of(text, '"Engagement"')


def test_codes_on_text_question_rejected(tmp_path: Path) -> None:
    text = VALID + 'codes = ["int.capacity"]\n'
    err = error_for(tmp_path, text)
    assert err.field == "questions[4].codes"
    assert err.line == len(text.splitlines())


def test_unknown_field_is_a_typo(tmp_path: Path) -> None:
    text = VALID.replace("required = false", "requried = false")
    err = error_for(tmp_path, text)
    assert err.field == "questions[4].requried"
    assert err.line == line_of(text, "requried")


def test_missing_top_level_field_has_no_line(tmp_path: Path) -> None:
    text = VALID.replace('title = "Test set"\n', "")
    err = error_for(tmp_path, text)
    assert err.field == "title" and err.line is None
    assert str(err) == f"{tmp_path / 'set.toml'}: title: required field is missing"


def test_several_problems_reported_together(tmp_path: Path) -> None:
    text = VALID.replace('label = "Early"', 'label = ""').replace("version = 1", 'version = "1"')
    err = error_for(tmp_path, text)
    assert [p.field for p in err.problems] == ["version", "questions[0].options[0].label"]
    assert len(str(err).splitlines()) == 2


def test_toml_syntax_error_keeps_line(tmp_path: Path) -> None:
    text = VALID.replace('text = "What gets in the way?"', 'text = "What gets in the way?')
    err = error_for(tmp_path, text)
    assert err.line == line_of(text, "What gets in the way?")
    assert err.field is None
    assert "TOML syntax" in str(err)


def test_strings_with_brackets_do_not_confuse_the_locator(tmp_path: Path) -> None:
    text = VALID.replace('intro = "Why we ask."', "intro = '''\n[[questions]] # not a table\n'''")
    text = text.replace('type = "scale"', 'type = "slider"')
    err = error_for(tmp_path, text)
    assert err.field == "questions[2].type"
    assert err.line == line_of(text, "slider")


def test_duplicate_set_ids_across_directory(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    second = "# a copy\n\n" + VALID
    write(tmp_path, second, "b.toml")
    with pytest.raises(ConsultationError) as caught:
        load_directory(tmp_path)
    err = caught.value
    assert err.file == str(tmp_path / "b.toml")
    assert err.line == 3 and err.field == "id"
    assert "duplicate consultation id 'test-set'" in str(err)
    assert "a.toml" in str(err)


def test_directory_gathers_problems_from_all_files(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace('type = "text"', 'type = "essay"'), "a.toml")
    write(tmp_path, VALID.replace("version = 1", "version = 0"), "b.toml")
    with pytest.raises(ConsultationError) as caught:
        load_directory(tmp_path)
    assert [Path(p.file).name for p in caught.value.problems] == ["a.toml", "b.toml"]


# -- hash and snapshot ------------------------------------------------------------------------


def test_hash_is_stable(tmp_path: Path) -> None:
    a = load_consultation(write(tmp_path, VALID, "a.toml"))
    b = load_consultation(write(tmp_path, VALID, "b.toml"))
    assert consultation_digest_hash(a) == consultation_digest_hash(b)
    assert len(consultation_digest_hash(a)) == 64
    # Comments, layout and spelled-out defaults are not content.
    reworded = "# a comment\n" + VALID.replace(
        'text = "What is the biggest obstacle?"',
        'text   =   "What is the biggest obstacle?"   # tidy\nmax_length = 800',
    )
    c = load_consultation(write(tmp_path, reworded, "c.toml"))
    assert consultation_digest_hash(c) == consultation_digest_hash(a)


def test_hash_pinned_for_shipped_sets_is_deterministic() -> None:
    first = [consultation_digest_hash(s) for s in load_directory(SHIPPED)]
    second = [consultation_digest_hash(s) for s in load_directory(SHIPPED)]
    assert first == second


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('label = "Early"', 'label = "Early on"'),
        ("version = 1", "version = 2"),
        ("codes_at_most = 2", "codes_at_most = 1"),
        ("required = false", "required = true"),
    ],
)
def test_hash_changes_with_content(tmp_path: Path, old: str, new: str) -> None:
    before = load_consultation(write(tmp_path, VALID, "a.toml"))
    after = load_consultation(write(tmp_path, VALID.replace(old, new), "b.toml"))
    assert consultation_digest_hash(before) != consultation_digest_hash(after)


def test_snapshot_round_trips_through_json(tmp_path: Path) -> None:
    s = load_consultation(write(tmp_path, VALID))
    stored = json.loads(json.dumps(s.to_dict()))
    assert stored["questions"][0]["type"] == "single"
    # The stored snapshot holds the whole set: pydantic reads it back to an equal one.
    assert ConsultationSet.model_validate(stored) == s
