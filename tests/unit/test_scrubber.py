"""The quote scrubber on realistic quotes: names the bot knows and names it was never told,
names that are also everyday words (both ways), postcodes, addresses, street names, the
everyday words of organisation names, and sentences that must come through untouched. A text
the scrubber holds back (DROP) is never quoted; the last tests check that the digest and the
CSV honour that."""

from __future__ import annotations

import csv
import io

import pytest

from bot.coding.stored import codebook_for
from bot.digests.answers_csv import TEXT_HELD_BACK, write_csv
from bot.digests.compile import compile_digest, prepare
from bot.digests.personal import name_list
from bot.digests.privacy import MAX_REMOVALS, Scrubber
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from bot.kernel.context import AppContext
from storage.db import session_scope
from tests.support import factories
from tests.support.digest_fixtures import closed_round, respondent

DROP = None  # the scrubber says: do not use this text at all
SAME = "same"  # the text comes through untouched

KNOWN = ["Amira Khan", "Riverside Food Bank", "Hope Williams", "Jo Bloggs"]

CASES: list[tuple[str, str | None]] = [
    # ---- names the bot was never told
    (
        "Honestly it's just me and Sue doing everything",
        "Honestly it's just me and [name removed] doing everything",
    ),
    (
        "Priya does all the bids and nobody thanks her",
        "[name removed] does all the bids and nobody thanks her",
    ),
    (
        "priya does all the bids, nobody else has time",
        "[name removed] does all the bids, nobody else has time",
    ),
    (
        "Sue Okonkwo and I run the lunch club on a shoestring",
        "[name removed] and I run the lunch club on a shoestring",
    ),
    ("Cllr Jones never replies to our emails", "[name removed] never replies to our emails"),
    (
        "We asked mrs jones at the housing office twice",
        "We asked [name removed] at the housing office twice",
    ),
    (
        "My neighbour Zbigniew drives people to the hospital",
        "My neighbour [name removed] drives people to the hospital",
    ),
    (
        "A lady called Zofia runs the whole thing by herself",
        "A lady called [name removed] runs the whole thing by herself",
    ),
    (
        "Dave from the council was brilliant but he left",
        "[name removed] from the council was brilliant but he left",
    ),
    (
        "Zbigniew Kowalski and I do the rota every week",
        "[name removed] and I do the rota every week",
    ),
    ("Our contact Dr. Okafor moved on in March", "Our contact [name removed] moved on in March"),
    (
        "I'm Zofia's carer and nobody asks me anything",
        "I'm [name removed]'s carer and nobody asks me anything",
    ),
    (
        "Mary-Jane keeps the books and she is exhausted",
        "[name removed] keeps the books and she is exhausted",
    ),
    (
        "We're based in Bolton and Florence helps us",
        "We're based in Bolton and [name removed] helps us",
    ),
    # ---- names the bot knows (participants, organisations)
    (
        "Amira told us the funding stops in March",
        "[name removed] told us the funding stops in March",
    ),
    ("Riverside Food Bank shares our van with us", "[name removed] shares our van with us"),
    ("Without Hope Williams we would have closed", "Without [name removed] we would have closed"),
    ("jo bloggs does it all and gets no thanks", "[name removed] does it all and gets no thanks"),
    ("We hope the council keeps the grant going", SAME),  # Hope is known, hope is a verb
    # ---- names that are everyday words: capitalisation and position decide
    ("Will the council ever listen to small groups?", SAME),
    (
        "I told Will about the grant but nothing happened",
        "I told [name removed] about the grant but nothing happened",
    ),
    ("I Will not give up on this group", SAME),
    (
        "Hope and I run the whole thing on our own",
        "[name removed] and I run the whole thing on our own",
    ),
    ("Hope is all we have left after the cuts", SAME),
    ("We could sue the council but who would pay?", SAME),
    ("Sue the council? We can't afford a solicitor", SAME),
    ("In May the grant ran out and we closed for June", SAME),
    ("May said she would help with the forms", "[name removed] said she would help with the forms"),
    ("Bill from the council came round once", DROP),  # a man or an invoice?
    ("Our energy bill doubled this winter", SAME),
    ("Grace and favour doesn't pay the rent", SAME),
    (
        "Lily and Grace cover Saturdays between them",
        "[name removed] and [name removed] cover Saturdays between them",
    ),
    (
        "Sue, Priya and I do it all between us",
        "[name removed], [name removed] and I do it all between us",
    ),
    ("Frank conversations with the council would help", SAME),
    ("Mark my words, the money will run out by August", SAME),
    ("Max 5 people fit in our office at once", SAME),
    ("Faith groups are always left out of these talks", SAME),
    ("Christmas is the hardest time for our families", SAME),
    ("ME AND SUE DO ABSOLUTELY EVERYTHING", DROP),  # capitals say nothing: Sue or sue?
    ("WILL THE COUNCIL EVER LISTEN TO US?", SAME),  # but this Will is the verb
    # ---- postcodes
    (
        "Most of our members live in M14 and cannot travel",
        "Most of our members live in [postcode removed] and cannot travel",
    ),
    ("The M60 is always jammed so people come late", SAME),
    (
        "Send letters to the hall, postcode LS6 2AB",
        "Send letters to the hall, postcode [postcode removed]",
    ),
    (
        "the postcode is m14 5tx if you want to visit",
        "the postcode is [postcode removed] if you want to visit",
    ),
    ("CO2 targets mean nothing to a food bank", SAME),
    # ---- addresses
    (
        "Our office is at 12 Acacia Road and the rent doubled",
        "Our office is at [address removed] and the rent doubled",
    ),
    (
        "We meet in flat 3, 4 High St because there's nowhere else",
        "We meet in [address removed] because there's nowhere else",
    ),
    (
        "Drop-ins are at 22b Baker Street, NW1 6XE on Fridays",
        "Drop-ins are at [address removed], [postcode removed] on Fridays",
    ),
    (
        "send it to 14 mill lane please, the office shut",
        "send it to [address removed] please, the office shut",
    ),
    ("We walked 3 miles down the lane to the hall", SAME),
    # ---- street names
    ("We meet on Mill Lane every Tuesday", "We meet on [address removed] every Tuesday"),
    (
        "Station Road is closed so people can't reach us",
        "[address removed] is closed so people can't reach us",
    ),
    ("The high street is dying and the High Street shops are empty", SAME),
    ("St Mary's Church lets us use the hall for free", SAME),
    ("The Food Drive brought in more than we expected", SAME),
    # ---- organisations' everyday words and ordinary sentences
    ("The community trust and the local food bank work well together", SAME),
    ("Support from the council is short term and always late", SAME),
    ("The NHS and the GP surgery never talk to each other", SAME),
    ("Honestly, the Council said no again", SAME),
    ("Universal Credit sanctions hit our volunteers hard", SAME),
    ("Christian and Muslim groups work well together here", SAME),
    ("Thanks to Victoria Park volunteers we kept going", SAME),
    # ---- contacts
    (
        "Ring 0161 496 0000 or mail help@example.org for a lift",
        "Ring [phone removed] or mail [email removed] for a lift",
    ),
    # ---- held back: too many removals, or a name that cannot be settled
    ("Tony Smith, Priya and Dave are the only volunteers left", DROP),
    ("Ask Mrs Begum at 12 Acacia Road, M14 5TX", DROP),
    ("Then Kwiatkowski said the lease was ending", DROP),  # unknown, but who else says?
    ("we got Funding from the council but it ran out", DROP),  # a person from the council?
]


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(KNOWN)


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_scrub(scrubber: Scrubber, text: str, expected: str | None) -> None:
    want = text if expected == SAME else expected
    assert scrubber.scrub(text) == want, scrubber.clean(text)


def test_the_table_is_broad() -> None:
    assert len(CASES) >= 40
    assert sum(1 for _, e in CASES if e == SAME) >= 15
    assert sum(1 for _, e in CASES if e is DROP) >= 5


def test_clean_counts_and_explains(scrubber: Scrubber) -> None:
    many = scrubber.clean("Tony Smith, Priya and Dave are the only volunteers left")
    assert many.removed == 3 > MAX_REMOVALS and many.dropped and not many.doubts
    assert (
        many.text
        == "[name removed], [name removed] and [name removed] are the only volunteers left"
    )
    odd = scrubber.clean("Bill from the council came round once")
    assert odd.dropped and odd.removed == 0 and "Bill" in odd.doubts[0]
    # Calling the scrubber gives the scrubbed text whatever the verdict (never for quoting).
    assert (
        scrubber("Bill from the council came round once") == "Bill from the council came round once"
    )


def test_a_name_list_ships_and_knows_both_kinds() -> None:
    names = name_list()
    assert len(names) > 5000
    assert names["priya"].when == "any" and names["priya"].first
    assert names["patel"].surname
    assert names["will"].when == "mid" and names["may"].when == "month"
    assert "grant" not in names and "bolton" not in names  # a word and a place, never a name


def test_many_known_names_stay_cheap() -> None:
    # Thousands of display names: matched word by word against a set, no giant regex.
    known = [f"Person{i} Surname{i}" for i in range(20_000)]
    scrub = Scrubber(known)
    assert scrub.scrub("Person19999 Surname19999 and I run it alone") == (
        "[name removed] and I run it alone"
    )


# --------------------------------------------------------------------------- call sites

FOCUSED = "Funding is short term"  # coded "funding" by the rules
HELD_BACK = [
    f"{FOCUSED}: Sue, Priya and Dave write every bid and the council never says yes to any",
    f"Bill from the council says {FOCUSED.lower()} and there is nothing left for groups like us",
]


@pytest.fixture
def quoted_round(ctx: AppContext) -> int:
    """Six people of one organisation and area (k = 5), each naming funding. The two texts
    nearest a readable length (and so first in line to be quoted) must be held back."""
    texts = [
        *HELD_BACK,
        f"{FOCUSED} so we cannot plan",
        f"{FOCUSED} and we spend more time writing bids than helping people, which is sad really"
        " because that is what we are for and the people who need us wait longer each year",
        f"{FOCUSED}, nothing lasts",
        f"{FOCUSED} and every year it is the same story",
    ]
    with session_scope(ctx.sessions) as session:
        org = factories.organisation(session, "Alder Food Bank", area="North")
        round_ = closed_round(session, factories.consultation(session))
        for i, text in enumerate(texts):
            respondent(
                session,
                round_,
                9300 + i,
                {"partnership_barriers": ["funding"], "biggest_obstacle": text},
                organisation=org,
                profile={"area": "North"},
            )
        return round_.id


def test_held_back_texts_are_never_quoted_and_blank_in_the_csv(
    ctx: AppContext, settings: Settings, quoted_round: int
) -> None:
    with session_scope(ctx.sessions) as session:
        scope = round_scope(session, quoted_round)
        prepare(session, scope, codebook_for(settings))  # codes and publishes the round
        digest = compile_digest(session, settings, scope, now=ctx.clock.now())
        buffer = io.StringIO()
        write_csv(session, settings.privacy.k, scope, codebook_for(settings), buffer)
    funding = [q.text for q in digest.quotes if q.code == "ext.funding"]
    assert len(funding) == 2, digest.quotes  # the next candidates stand in
    for quote in funding:
        assert "Sue" not in quote and "Bill" not in quote and "[name removed]" not in quote
    rows = [
        r
        for r in csv.DictReader(io.StringIO(buffer.getvalue()))
        if r["question"] == "biggest_obstacle"
    ]
    held = [r for r in rows if r["note"] == TEXT_HELD_BACK]
    assert len(held) == 2 and all(r["text"] == "" for r in held)
    # Both were coded funding, and so were first in line for a quote.
    assert all("ext.funding" in r["codes"].split() for r in held)
    shown = [r for r in rows if r["text"]]
    assert len(shown) == 4 and all(r["note"] == "" for r in shown)
