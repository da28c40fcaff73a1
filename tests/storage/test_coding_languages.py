"""The coder and languages (issue 15): a free text is coded only with cues in its writer's
language; a Welsh text (the shipped cues are English) is stored uncoded and offered in /review
for a coordinator to code; the digest says how many answers await coding, under the rule for
counts; a coded Welsh quote keeps its words and is marked with its language. A codebook with
Welsh cues and a Welsh lexicon codes Welsh text by those rules (English by rules and model);
code labels follow the language spoken."""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook import CodebookError
from bot.coding.codebook_file import load_codebook
from bot.coding.coder import code_text
from bot.coding.review import Reviewer, ReviewView, next_item, save, start, toggle
from bot.coding.rules import rule_code
from bot.coding.stored import NO_CODE, UNCODED, code_uncoded_answers, codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest
from bot.digests.render import render_markdown, render_telegram
from bot.digests.scopes import round_scope
from bot.kernel import i18n
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from bot.participation.decide import SaveAnswer
from bot.participation.store import write
from storage.db import session_scope
from storage.models import Answer, AnswerCode, AnswerReview, CodeSource, Round, utcnow
from tests.conftest import Database
from tests.support import factories
from tests.support.codebooks import SHIPPED, WELSH_LEXICON, codebook_with_welsh
from tests.support.digest_fixtures import close, question, respondent

K = 3
ENGLISH = [
    "Funding is always short term and confirmed late",
    "The grant is confirmed so late we cannot plan the year",
    "Short term funding means we lose staff every spring",
    "Our volunteers have no time for meetings in the day",
]
WELSH = [
    "Mae'r cyllid bob amser yn fyr dymor ac yn cyrraedd yn hwyr",
    "Dydyn ni byth yn clywed beth ddigwyddodd i'n barn ni",
    "Does dim digon o wirfoddolwyr gyda ni i fynd i gyfarfodydd",
    "Mae'r ffurflenni yn rhy hir ac yn rhy gymhleth i ni",
]


@pytest.fixture
def k3(db: Database) -> Settings:
    return load_settings(None, database={"url": db.url}, privacy={"k": K})


def a_round(session: Session) -> tuple[Round, dict[str, int]]:
    """Ten people answer the health check's free text: four in English, four in Welsh, two
    who never chose a language (in English). Answer ids by text."""
    round_ = factories.open_round(session, factories.consultation(session))
    texts = [(t, "en") for t in ENGLISH] + [(t, "cy") for t in WELSH]
    texts += [("Too many forms and checks for a small group like ours", None)] * 2
    ids: dict[str, int] = {}
    q = question(round_.consultation, "biggest_obstacle")
    for i, (text, language) in enumerate(texts):
        invitation = respondent(
            session, round_, 500 + i, {"biggest_obstacle": text}, language=language
        )
        ids[text] = next(a.id for a in invitation.answers if a.question_id == q.id)
    return round_, ids


def auto_codes(session: Session, answer_id: int) -> set[str]:
    return set(
        session.scalars(
            select(AnswerCode.code).where(
                AnswerCode.answer_id == answer_id, AnswerCode.source == CodeSource.AUTO
            )
        )
    )


def test_welsh_text_is_left_uncoded_and_offered_for_review(ctx: AppContext, k3: Settings) -> None:
    codebook = codebook_for(k3)
    with session_scope(ctx.sessions) as session:
        round_, ids = a_round(session)
        # A Welsh text coded with English cues (by a codebook that had Welsh cues then, or typed
        # before a switch of language) is set aside by the next catch-up pass.
        session.add(AnswerCode(answer_id=ids[WELSH[0]], code="ext.funding", source=CodeSource.AUTO))
        session.flush()
        coded = code_uncoded_answers(session, [round_.id], codebook)
        assert coded == len(ENGLISH) + 2  # and the two "not given"; the Welsh ones are not coded
        for text in WELSH:
            assert auto_codes(session, ids[text]) == {UNCODED}, text
        assert "ext.funding" in auto_codes(session, ids[ENGLISH[0]])
        assert "ext.red_tape" in auto_codes(
            session, ids["Too many forms and checks for a small group like ours"]
        )
        # Again: nothing more to code, and the markers stay as they are.
        assert code_uncoded_answers(session, [round_.id], codebook) == 0
        assert all(auto_codes(session, ids[t]) == {UNCODED} for t in WELSH)

        # /review offers every Welsh text, as uncoded, with nothing suggested.
        seen: dict[int, ReviewView] = {}
        skipped: list[int] = []
        while (view := next_item(session, codebook, 42, skipped=skipped)) is not None:
            seen[view.answer_id] = view
            skipped.append(view.answer_id)
        for text in WELSH:
            view = seen[ids[text]]
            assert view.uncoded and view.suggested == [] and view.evidence == [], text
            assert view.text == text
        assert not any(v.uncoded for i, v in seen.items() if i not in {ids[t] for t in WELSH})
        rendered = ctx.renderer.render(
            "digest/review.html", view=seen[ids[WELSH[1]]], labels={}, families={}
        )
        assert "no cues in this answer's language" in rendered


def test_the_digest_says_how_many_await_coding_and_marks_welsh_quotes(
    ctx: AppContext, k3: Settings
) -> None:
    codebook = codebook_for(k3)
    reviewer = Reviewer(chat_id=42, codebook=codebook, renderer=ctx.renderer)
    funding = [c.code for c in codebook.codes].index("ext.funding")
    with session_scope(ctx.sessions) as session:
        round_, ids = a_round(session)
        # A coordinator codes the first Welsh text as funding (it waits at the end of the
        # queue: the English texts the coder doubted come first).
        skipped: list[int] = []
        while (view := next_item(session, codebook, 42, skipped=skipped)) is not None:
            if view.answer_id == ids[WELSH[0]]:
                break
            skipped.append(view.answer_id)
        assert view is not None and view.uncoded
        toggle(session, reviewer, view.answer_id, funding)
        save(session, reviewer, view.answer_id, actor=None)
        close(round_, utcnow())
        session.flush()
        d = digest(session, k3, round_.id)
    assert d.barriers.awaiting_coding == len(WELSH) - 1
    assert "ext.funding" in {r.code for r in d.barriers.rows}
    welsh = [q for q in d.quotes if q.text == WELSH[0]]
    assert welsh and welsh[0].language == "cy"
    assert all(q.language in ("en", None) for q in d.quotes if q.text != WELSH[0])
    md = render_markdown(d, ctx.renderer)
    assert f"> {WELSH[0]} [Cymraeg]" in md
    assert "[English]" not in md
    assert f"{len(WELSH) - 1} written answers in a language the coder has no cues for" in md
    tg = "\n".join(render_telegram(d, ctx.renderer))
    assert f"“{escape(WELSH[0])}” [Cymraeg]" in tg


def test_fewer_than_k_awaiting_is_not_given_as_a_number(ctx: AppContext, k3: Settings) -> None:
    """A count of answers, but each is a person's: 1 or 2 waiting (under k) reads "fewer than
    k", so it cannot tell a reader how few wrote in Welsh."""
    codebook = codebook_for(k3)
    with session_scope(ctx.sessions) as session:
        round_, ids = a_round(session)
        # A coordinator codes two of the four Welsh texts, as no barrier: two still wait.
        for text in WELSH[:2]:
            session.add(AnswerCode(answer_id=ids[text], code="-", source=CodeSource.AUTO))
        session.flush()
        session.add_all(AnswerReview(answer_id=ids[t]) for t in WELSH[:2])
        close(round_, utcnow())
        session.flush()
        d = digest(session, k3, round_.id)
        assert code_uncoded_answers(session, [round_.id], codebook) == 0
    assert d.barriers.awaiting_coding is None
    md = render_markdown(d, ctx.renderer)
    assert f"Fewer than {K} written answers in a language the coder has no cues for" in md


def digest(session: Session, settings: Settings, round_id: int) -> Digest:
    codebook = codebook_for(settings)
    scope = round_scope(session, round_id)
    prepare(session, scope, codebook)
    return compile_digest(session, settings, scope, now=utcnow(), codebook=codebook)


# ------------------------------------------------------------------ cues in a further language


WELSH_FUNDING = "Mae'r cyllid yn rhy fyr bob amser"
WELSH_VOLUNTEERS = "Does dim digon o wirfoddolwyr gyda ni"
WELSH_DENIED = "Dydy'r cyllid ddim yn broblem"
WELSH_LOANWORDS = "Mae'r funding yn short term a does dim digon o volunteers"
# The rules alone find int.finance here; the model adds ext.funding.
ENGLISH_MODEL = "Can't take the risk of a payment-by-results contract, we'd go under"
ENGLISH_WITH_WELSH_WORDS = "Cyllid yn rhy fyr, gwirfoddolwyr yn brin"
POLISH = "Finansowanie jest zawsze krótkoterminowe"


def test_a_codebook_with_welsh_cues_codes_each_language_with_its_own(
    ctx: AppContext, db: Database, tmp_path: Path
) -> None:
    path = codebook_with_welsh(tmp_path)
    settings = load_settings(
        None, database={"url": db.url}, privacy={"k": K}, paths={"codebook": str(path)}
    )
    codebook = codebook_for(settings)
    assert codebook.languages == ("en", "cy")
    assert codebook.reads("cy") and codebook.reads("CY-gb") and not codebook.reads("pl")
    # Welsh cues and labels do not make the text model fitted on the English answers stale.
    assert codebook.model is not None
    welsh = codebook.in_language("cy")
    assert welsh is not None and welsh.model is None, "the model knows only English"
    assert codebook.in_language("en") is codebook and codebook.in_language("pl") is None
    assert rule_code(ENGLISH_MODEL, codebook).codes == ("int.finance",)

    texts = [
        (WELSH_FUNDING, "cy"),
        (WELSH_VOLUNTEERS, "cy"),
        (WELSH_DENIED, "cy"),
        (WELSH_LOANWORDS, "cy"),
        (ENGLISH_MODEL, "en"),
        (ENGLISH_WITH_WELSH_WORDS, "en"),
        (POLISH, "pl"),
    ]
    with session_scope(ctx.sessions) as session:
        round_ = factories.open_round(session, factories.consultation(session))
        q = question(round_.consultation, "biggest_obstacle")
        ids: dict[str, int] = {}
        for i, (text, language) in enumerate(texts):
            invitation = respondent(
                session, round_, 700 + i, {"biggest_obstacle": text}, language=language
            )
            ids[text] = next(a.id for a in invitation.answers if a.question_id == q.id)
        assert code_uncoded_answers(session, [round_.id], codebook) == len(texts) - 1
        # Welsh text by the Welsh rules, with the Welsh lexicon's negators.
        assert auto_codes(session, ids[WELSH_FUNDING]) == {"ext.funding"}
        assert evidence_of(session, ids[WELSH_FUNDING]) == {"ext.funding": "cyllid"}
        assert auto_codes(session, ids[WELSH_VOLUNTEERS]) == {"int.capacity"}
        assert auto_codes(session, ids[WELSH_DENIED]) == {NO_CODE}
        # English cues never code a Welsh text, nor Welsh cues an English one.
        assert "ext.funding" in set(code_text(WELSH_LOANWORDS, codebook).codes)
        assert auto_codes(session, ids[WELSH_LOANWORDS]) == {NO_CODE}
        assert code_text(ENGLISH_WITH_WELSH_WORDS, welsh).codes != ()
        assert auto_codes(session, ids[ENGLISH_WITH_WELSH_WORDS]) == {NO_CODE}
        # English by the rules and the model.
        assert auto_codes(session, ids[ENGLISH_MODEL]) == {"ext.funding", "int.finance"}
        # Polish has no cues: it waits in /review, as uncoded.
        assert auto_codes(session, ids[POLISH]) == {UNCODED}
        # Again: nothing to code, and the Welsh codes are not set aside as unread.
        assert code_uncoded_answers(session, [round_.id], codebook) == 0
        assert auto_codes(session, ids[WELSH_VOLUNTEERS]) == {"int.capacity"}
        uncoded = []
        skipped: list[int] = []
        while (view := next_item(session, codebook, 42, skipped=skipped)) is not None:
            skipped.append(view.answer_id)
            if view.uncoded:
                uncoded.append(view.text)
        assert uncoded == [POLISH]


def evidence_of(session: Session, answer_id: int) -> dict[str, str | None]:
    rows = session.execute(
        select(AnswerCode.code, AnswerCode.evidence).where(
            AnswerCode.answer_id == answer_id, AnswerCode.source == CodeSource.AUTO
        )
    )
    return {code: evidence for code, evidence in rows}


def test_welsh_cues_without_a_welsh_lexicon_are_refused_at_load(tmp_path: Path) -> None:
    path = codebook_with_welsh(tmp_path, lexicon="")
    with pytest.raises(CodebookError) as err:
        load_codebook(path)
    msg = str(err.value)
    assert str(path) in msg and "'lexicon.cy'" in msg and "missing" in msg
    # A Welsh lexicon lacking a list is refused too (the built-in lists are English).
    partial = WELSH_LEXICON.replace('absence_words = ["dim", "heb"]\n', "")
    with pytest.raises(CodebookError) as err:
        load_codebook(codebook_with_welsh(tmp_path, lexicon=partial))
    assert str(path) in str(err.value) and "absence_words" in str(err.value)
    # Labels alone need no lexicon: the shipped codebook has Welsh labels and no Welsh cues.
    assert not load_codebook(SHIPPED).reads("cy")


@pytest.mark.parametrize(
    ("table", "line", "expected"),
    [
        ('[code.cy]\nlabel = "Cludiant"\ndescription = "Dim bws"', 10, "'cy.description'"),
        ('[code.cy]\ncues = "dim bws"', 9, "'cy.cues'"),
        ('[code.cy]\nlabel = ""', 9, "'cy.label'"),
        ('[code.en]\nlabel = "Transport"', 8, "the codebook's own language"),
        ('[code.welsh]\nlabel = "Cludiant"', 8, "further language"),
        ('[lexicon.cy]\nnegators = ["dim"]', 8, "'lexicon.cy': missing problem_markers"),
    ],
)
def test_bad_tables_of_a_further_language(
    tmp_path: Path, table: str, line: int, expected: str
) -> None:
    """Each names the file, the line and the field."""
    path = tmp_path / "ours.toml"
    path.write_text(
        '[[code]]\ncode = "ext.transport"\nfamily = "external"\nlabel = "Transport"\n'
        'description = "No way of getting there."\ncues = ["no bus"]\n\n' + table + "\n",
        encoding="utf-8",
    )
    with pytest.raises(CodebookError) as err:
        load_codebook(path)
    assert str(err.value).startswith(f"{path}, line {line}: field ")
    assert expected in str(err.value)


def test_labels_follow_the_language_spoken(ctx: AppContext, k3: Settings) -> None:
    codebook = codebook_for(k3)
    funding = codebook["ext.funding"]
    assert funding.label == "Access to funding streams"
    with i18n.speaking("cy"):
        assert funding.label == "Mynediad at ffrydiau cyllido"
        assert codebook["success.shared_aims"].label == "Nodau cyffredin"
        welsh = {c.code: c.label for c in codebook}
    english = {c.code: c.label for c in codebook}
    # Every shipped code has a Welsh name of its own.
    assert all(welsh[c] != english[c] for c in english), "a code without a Welsh label"
    assert len(set(welsh.values())) == len(welsh)
    with i18n.speaking("pl"):
        assert funding.label == "Access to funding streams", "no Polish label: the main one"

    # /review names the codes in the coordinator's language.
    reviewer = Reviewer(chat_id=42, codebook=codebook, renderer=ctx.renderer)
    with session_scope(ctx.sessions) as session:
        a_round(session)
        with i18n.speaking("cy"):
            reply = start(session, reviewer)
    (message,) = reply.messages
    buttons = [b.text for row in message.buttons for b in row]
    assert any("Mynediad at ffrydiau cyllido" in b for b in buttons), buttons
    assert not any("Access to funding streams" in b for b in buttons), buttons

    # A digest (compiled in no language) names the barriers in Welsh to a Welsh reader.
    with session_scope(ctx.sessions) as session:
        round_ = session.scalars(select(Round)).one()
        close(round_, utcnow())
        session.flush()
        d = digest(session, k3, round_.id)
    with i18n.speaking("cy"):
        labels = {r.code: str(r.label) for r in d.barriers.rows}
    assert labels["ext.funding"] == "Mynediad at ffrydiau cyllido"
    assert set(labels.values()) <= set(welsh.values())


def test_a_welsh_answer_is_stored_uncoded_not_coded_with_english_cues(
    ctx: AppContext, k3: Settings
) -> None:
    """Coded as it is stored (bot.participation.store), in the language the writer is spoken
    to: the shipped codebook has no Welsh cues, so a Welsh text waits for a coordinator, even
    though its English loan words would give English codes. Coded only when the language the
    catch-up reads the answer in has cues too, so a digest never sets aside what was coded."""
    codebook = codebook_for(k3)
    assert {"ext.funding", "int.capacity"} <= set(code_text(WELSH_LOANWORDS, codebook).codes)
    english = set(code_text(WELSH_LOANWORDS, codebook).codes)
    # (language when invited, language spoken as they type) -> what is stored
    cases: dict[tuple[str | None, str], set[str]] = {
        ("cy", "cy"): {UNCODED},
        ("en", "en"): english,
        (None, "en"): english,  # never chose: spoken to in English
        ("en", "cy"): {UNCODED},  # switched to Welsh mid-round
        ("cy", "en"): {UNCODED},  # switched to English: the catch-up would read it as Welsh
    }
    with session_scope(ctx.sessions) as session:
        round_ = factories.open_round(session, factories.consultation(session))
        q = question(round_.consultation, "biggest_obstacle")
        stored: dict[tuple[str | None, str], int] = {}
        for i, (invited, spoken) in enumerate(cases):
            invitation = respondent(session, round_, 800 + i, {}, language=invited)
            at = utcnow()
            text = SaveAnswer(invitation.id, q.id, None, at, text=WELSH_LOANWORDS, recode=True)
            write(session.connection(), [text], lambda: codebook, language=spoken)
            stored[invited, spoken] = session.scalars(
                select(Answer.id).where(Answer.invitation_id == invitation.id)
            ).one()
        for case, codes in cases.items():
            assert auto_codes(session, stored[case]) == codes, case
        # The catch-up leaves them so, and /review offers the uncoded ones.
        assert code_uncoded_answers(session, [round_.id], codebook) == 0
        for case, codes in cases.items():
            assert auto_codes(session, stored[case]) == codes, case
        view = next_item(session, codebook, 42, skipped=[])
        assert view is not None and view.uncoded and view.text == WELSH_LOANWORDS
