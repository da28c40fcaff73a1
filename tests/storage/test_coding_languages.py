"""The coder and languages (issue 15): a free text is coded only with cues in its writer's
language; a Welsh text (the shipped cues are English) is stored uncoded and offered in /review
for a coordinator to code; the digest says how many answers await coding, under the rule for
counts; a coded Welsh quote keeps its words and is marked with its language."""

from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.review import Reviewer, ReviewView, next_item, save, toggle
from bot.coding.stored import UNCODED, code_uncoded_answers, codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest
from bot.digests.render import render_markdown, render_telegram
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from storage.db import session_scope
from storage.models import AnswerCode, AnswerReview, CodeSource, Round, utcnow
from tests.conftest import Database
from tests.support import factories
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
        # The chat codes a text as it stores it, whatever its language: a Welsh text coded so
        # with the English cues is set aside by the next catch-up pass.
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
