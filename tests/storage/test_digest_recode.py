"""`consultbot digest --recode`: the coder's rows go and the digest's catch-up pass codes the
texts again; reviewed answers and HUMAN codes are left as they are."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.coding.stored import codebook_for, forget_auto_codes
from bot.digests.compile import compile_digest, prepare
from bot.digests.published import republish
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from storage.db import session_scope
from storage.models import AnswerCode, AnswerReview, CodeSource
from tests.conftest import Database
from tests.storage.test_digest import k3  # noqa: F401  (the k = 3 settings fixture)
from tests.support import factories
from tests.support.digest_fixtures import answer, closed_round, question


def test_forget_auto_codes_then_digest_codes_again(db: Database, k3: Settings) -> None:  # noqa: F811
    with session_scope(db.sessions) as session:
        consultation = factories.consultation(session)
        round_ = closed_round(session, consultation)
        q = question(consultation, "biggest_obstacle")
        people = [factories.participant(session, 9100 + i) for i in range(2)]
        invs = [factories.invitation(session, round_, p) for p in people]
        rows = [answer(session, inv, q, "Funding is always short term") for inv in invs]
        scope = round_scope(session, round_.id)
        prepare(session, scope, codebook_for(k3))  # codes both
        session.add(AnswerCode(answer_id=rows[1].id, code="int.capacity", source=CodeSource.HUMAN))
        session.add(AnswerReview(answer_id=rows[1].id))
        # A stale machine code, as if from an older codebook.
        session.add(AnswerCode(answer_id=rows[0].id, code="int.premises", source=CodeSource.AUTO))
        session.flush()

        forget_auto_codes(session, [round_.id])
        prepare(session, scope, codebook_for(k3))  # published already: codes nothing
        assert republish(session, [round_.id], codebook_for(k3)) == []  # as `digest --recode`
        compile_digest(session, k3, scope, now=datetime.now(UTC))
        codes = {
            (a, c, s)
            for a, c, s in session.execute(
                select(AnswerCode.answer_id, AnswerCode.code, AnswerCode.source)
            )
        }
    assert (rows[0].id, "ext.funding", CodeSource.AUTO) in codes
    assert (rows[0].id, "int.premises", CodeSource.AUTO) not in codes
    assert (rows[1].id, "int.capacity", CodeSource.HUMAN) in codes
    assert (rows[1].id, "ext.funding", CodeSource.AUTO) in codes, "reviewed: left alone"
