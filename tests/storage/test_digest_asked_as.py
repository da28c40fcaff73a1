"""A digest counts an organisation's sector and type as they were when its people were asked:
opening a round copies them into each invitation, and editing the organisation afterwards
changes no closed round's figures."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.coding.stored import codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import NOT_GIVEN, Digest
from bot.digests.scopes import round_scope
from bot.kernel.context import AppContext
from bot.rounds.opening import open_round
from bot.rounds.planning import schedule_once
from bot.rounds.services import Services
from storage.db import session_scope
from storage.models import Invitation, Organisation
from tests.support import factories
from tests.support.digest_fixtures import close


def _rows(digest: Digest, key: str) -> dict[str, int]:
    dimension = next(d for d in digest.participation.dimensions if d.key == key)
    return {row.label: row.invited for row in dimension.rows}


def test_sector_and_type_are_counted_as_they_were_when_asked(ctx: AppContext) -> None:
    now = ctx.clock.now()
    with session_scope(ctx.sessions) as s:
        alder = factories.organisation(s, "Alder Food Bank", sector="food", kind="charity")
        cedar = factories.organisation(s, "Cedar Circle")  # no sector or type yet
        birch = factories.organisation(s, "Birchwood Youth", sector="youth", kind="club")
        for i in range(6):
            factories.participant(s, 9300 + i, organisation=alder)
        for i in range(5):
            factories.participant(s, 9400 + i, organisation=cedar)
        round_ = schedule_once(
            s,
            factories.consultation(s),
            audience={"who": "everyone"},
            opens_at=now,
            open_for=timedelta(days=7),
            remind_before=[],
        )
        services = Services(ctx.renderer, "P", max_rounds_per_period=99, period_days=30)
        assert open_round(s, round_, now=now, services=services).invited == 11
        # Birchwood's five were invited before invitations copied sector and type: their
        # segment holds only the profile, so the digest falls back to today's values.
        for i in range(5):
            person = factories.participant(s, 9500 + i, organisation=birch)
            factories.invitation(s, round_, person)
        close(round_, now + timedelta(days=7))
        round_id = round_.id
        copied = s.scalars(select(Invitation.segment).where(Invitation.organisation_id == alder.id))
        assert [(c["sector"], c["kind"]) for c in copied] == [("food", "charity")] * 6

    with session_scope(ctx.sessions) as s:
        for name, sector, kind in (
            ("Alder Food Bank", "arts", "social enterprise"),
            ("Cedar Circle", "faith", "faith group"),
            ("Birchwood Youth", "sport", "club"),
        ):
            org = s.scalars(select(Organisation).where(Organisation.name == name)).one()
            org.sector, org.kind = sector, kind

    with session_scope(ctx.sessions) as s:
        scope = round_scope(s, round_id)
        prepare(s, scope, codebook_for(ctx.settings))
        digest = compile_digest(s, ctx.settings, scope, now=ctx.clock.now())
    assert _rows(digest, "sector") == {"food": 6, "sport": 5, NOT_GIVEN: 5}
    assert _rows(digest, "kind") == {"charity": 6, "club": 5, NOT_GIVEN: 5}
