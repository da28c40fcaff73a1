"""Compiles a Digest (plain data) for a round, or for a period across rounds.

Everything is counted in SQL with GROUP BY, so a digest of 100,000 answers stays fast and small;
only the dozen quote candidates per code are read as text. Compiling only reads: free texts
that were stored without codes (imported answers, or after `digest --recode`) are coded by
`catch_up_coding`, which callers run first, in their own transaction.

Privacy: no cell and no quote is drawn from fewer than k respondents (bot.digests.privacy).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook, load_codebook
from bot.coding.stored import code_uncoded_answers
from bot.digests.actions import list_actions
from bot.digests.barriers import count_barriers, organisation_detail
from bot.digests.digest import Digest, Scope
from bot.digests.questions import questions
from bot.digests.quotes import pick_quotes
from bot.digests.segments import participation
from bot.kernel.config import Settings


def catch_up_coding(session: Session, scope: Scope, codebook: Codebook) -> int:
    """Code the scope's free texts (and its comparison rounds') that have no codes yet, so the
    digest compiled next counts them; returns how many were coded."""
    coded = code_uncoded_answers(session, list(scope.round_ids), codebook)
    if scope.previous:
        coded += code_uncoded_answers(session, list(scope.previous), codebook)
    session.flush()
    return coded


def compile_digest(
    session: Session,
    settings: Settings,
    scope: Scope,
    *,
    now: datetime,
    organisation_id: int | None = None,
    audience: str = "coordinator",
    codebook: Codebook | None = None,
) -> Digest:
    """The digest of `scope` as of `now` (the Clock's). `audience` "lead" hides other
    organisations' names; with `organisation_id` the digest adds that organisation's own
    detail. Reads only: run `catch_up_coding` first for answers stored without codes."""
    k = settings.privacy.k
    codebook = codebook or load_codebook(settings.paths.codebook)
    ids = list(scope.round_ids)
    notes: list[str] = []
    reach = participation(session, ids, k, audience, notes)
    summaries = questions(session, ids, k, notes)
    barriers = count_barriers(session, ids, k, codebook, scope, notes)
    organisation = (
        organisation_detail(session, ids, k, codebook, organisation_id)
        if organisation_id is not None
        else None
    )
    return Digest(
        title=f"{settings.partnership.name}: what we heard",
        partnership=settings.partnership.name,
        scope=scope.label,
        round_ids=ids,
        period_start=scope.start,
        period_end=scope.end,
        generated_at=now,
        k=k,
        audience=audience,
        participation=reach,
        questions=summaries,
        barriers=barriers,
        quotes=pick_quotes(session, ids, barriers),
        actions=list_actions(session, ids, codebook=codebook, today=now.date()),
        organisation=organisation,
        notes=notes,
    )
