"""The cast of `consultbot demo`: organisations and forty scripted participants with varied,
realistic answers. Invented people and groups; any likeness is accidental."""

from __future__ import annotations

import random
from dataclasses import dataclass

ORGANISATIONS: list[dict[str, str]] = [
    {"name": "Riverside Food Bank", "kind": "charity", "area": "north", "size": "small"},
    {
        "name": "Northgate Carers Network",
        "kind": "community group",
        "area": "north",
        "size": "volunteers_only",
    },
    {
        "name": "St Anne's Lunch Club",
        "kind": "faith group",
        "area": "centre",
        "size": "volunteers_only",
    },
    {"name": "Eastfield Youth Project", "kind": "charity", "area": "east", "size": "large"},
    {
        "name": "Harbour Mental Health Peer Support",
        "kind": "charity",
        "area": "south",
        "size": "small",
    },
    {
        "name": "Southside Community Transport",
        "kind": "social enterprise",
        "area": "south",
        "size": "large",
    },
    {
        "name": "Millbrook Tenants Association",
        "kind": "community group",
        "area": "east",
        "size": "volunteers_only",
    },
    {"name": "Central Advice Centre", "kind": "charity", "area": "centre", "size": "large"},
]

FIRST_NAMES = [
    "Aisha",
    "Ben",
    "Carol",
    "Dev",
    "Ewa",
    "Fatima",
    "Gareth",
    "Hannah",
    "Imran",
    "Joy",
    "Kwame",
    "Linda",
    "Marek",
    "Nadia",
    "Owen",
    "Priya",
    "Rhys",
    "Sana",
    "Tom",
    "Uma",
    "Viktor",
    "Wendy",
    "Yusuf",
    "Zoe",
    "Alan",
    "Bea",
    "Chidi",
    "Dot",
    "Emeka",
    "Fran",
    "Grace",
    "Hamid",
    "Iris",
    "Jack",
    "Kemi",
    "Lola",
    "Mo",
    "Nell",
    "Olu",
    "Pat",
]

# What people write when asked for the biggest obstacle. Everyday wording on purpose: few of
# them name the category, some deny one barrier and name another, some hold a phone number or
# a name that the digest must strip.
OBSTACLES = [
    "Honestly it's just me and Sue doing everything, there's no time left for meetings.",
    "Funding isn't the problem, volunteers are. We lost four this year.",
    "The tender for the befriending contract was 60 pages. We're three part-timers.",
    "We only ever hear about new plans after they've been decided.",
    "Meetings are at 10am on weekdays when all our volunteers are at work.",
    "Our grant runs out in March and nobody can tell us if it will be renewed.",
    "The monitoring form is longer than the application and the grant was only £800.",
    "Our hall roof leaks and we can't afford to fix it, so we can't host anything.",
    "Nobody on our committee knows how to write a bid.",
    "We've had no chair since June and the trustees are worn out.",
    "Call me on 07700 900123 if you want the details, it's the payment delays.",
    "We can't pay the coordinator until the grant money actually lands, sometimes months late.",
    "Too much jargon in the partnership papers, I don't understand half of it.",
    "We were told about the winter fund two days before the deadline.",
    "Each agency wants its own safeguarding paperwork for the same thing.",
    "Our laptop is ten years old and we can't join the online sessions properly.",
    "No reserves at all, one late payment and we'd have to close.",
    "Nothing really, the new named contact at the council has made a big difference.",
    "Good working relationships with the school, keep the regular meetings going please.",
    "We asked three times what happened to our ideas and never heard back.",
    "Big providers win every contract on price, small groups like ours can't compete.",
    "Volunteer burnout. Everyone is stretched and we can't recruit younger people.",
    "Data protection forms for every referral, it takes longer than the visit.",
    "Email priya.k@example.org if you want more, but mainly we don't get told what's going on.",
    "We feel like a box to tick rather than a real partner.",
    "Insurance requirements for the contract cost more than we'd earn from it.",
    "Not sure, we're fine at the moment.",
    "Match funding. Every pot wants us to find half the money elsewhere.",
    "The referral pathway changed and no one told us, people just stopped coming.",
    "We need training on evaluation, we can't show the impact the way funders want.",
    "Our van failed its MOT and we have no way to replace it.",
    "Marek does all the finance and he's stepping down next month, nobody to replace him.",
]

# What the Welsh speakers write (the coder has no Welsh cues: these wait in /review, counted in
# the digest as awaiting coding).
WELSH_OBSTACLES = [
    "Does dim digon o wirfoddolwyr gennym ni, ac mae pawb wedi blino'n lân.",
    "Mae ein grant yn dod i ben ym mis Mawrth a does neb yn gallu dweud a fydd yn parhau.",
    "Dydyn ni byth yn clywed beth ddigwyddodd i'n syniadau ar ôl y cyfarfod.",
    "Mae'r cyfarfodydd am ddeg y bore, pan mae ein gwirfoddolwyr i gyd yn y gwaith.",
    "Mae'r ffurflenni monitro yn hirach na'r cais, ac roedd y grant yn fach iawn.",
    "Mae papurau'r bartneriaeth yn llawn jargon, a does dim ar gael yn Gymraeg.",
]

OWN_BARRIER_WEIGHTS = {
    "capacity": 0.6,
    "finance": 0.45,
    "premises": 0.2,
    "skills": 0.3,
    "leadership": 0.15,
}
PARTNERSHIP_BARRIER_WEIGHTS = {
    "no_feedback": 0.45,
    "meetings": 0.35,
    "not_told": 0.4,
    "contracts": 0.2,
    "funding": 0.5,
    "red_tape": 0.35,
    "jargon": 0.2,
}
HELP_WEIGHTS = {
    "asked_earlier": 0.4,
    "hear_back": 0.5,
    "named_contact": 0.35,
    "regular_meetings": 0.25,
    "clear_roles": 0.2,
    "joint_funding": 0.3,
    "simpler_forms": 0.4,
}


@dataclass
class Persona:
    user_id: int
    first_name: str
    organisation: str
    role: str  # member | lead
    # What they do when the round opens: complete | later_then_complete | after_reminder |
    # partial | decline | silent | blocks
    behaviour: str
    profile: dict[str, str]
    asked_when: str
    equal_partner: int
    partnership_barriers: list[str]
    own_barriers: list[str]
    obstacle: str | None  # None: presses Skip
    what_helps: list[str]
    changes_answer: bool = False
    language: str = "en"  # the language they choose when they join


def _pick(rng: random.Random, weights: dict[str, float]) -> list[str]:
    chosen = [key for key, weight in weights.items() if rng.random() < weight]
    return chosen or [max(weights, key=lambda key: weights[key] * rng.random())]


def cast(seed: int = 7) -> list[Persona]:
    """Forty people: most answer, some later, some after a reminder, some never, three block
    the bot, one declines, one changes an answer after finishing; one in five (a lead among
    them) takes part in Welsh."""
    rng = random.Random(seed)
    behaviours = (
        ["complete"] * 22
        + ["later_then_complete"] * 3
        + ["after_reminder"] * 4
        + ["partial"] * 2
        + ["decline"] * 1
        + ["silent"] * 5
        + ["blocks"] * 3
    )
    rng.shuffle(behaviours)
    people: list[Persona] = []
    for index, behaviour in enumerate(behaviours):
        org = ORGANISATIONS[index % len(ORGANISATIONS)]
        lead = index < len(ORGANISATIONS)  # the first person of each organisation leads it
        worse_off = org["size"] in ("volunteers_only", "small")
        welsh = index % 5 == 2
        obstacles = WELSH_OBSTACLES if welsh else OBSTACLES
        people.append(
            Persona(
                user_id=5_000_001 + index,
                first_name=FIRST_NAMES[index],
                organisation=org["name"],
                role="lead" if lead else "member",
                behaviour="complete" if lead and behaviour == "blocks" else behaviour,
                profile={"area": org["area"], "size": org["size"], "answers_as": "organisation"},
                asked_when=rng.choices(
                    ["early", "partway", "late", "not_asked", "not_sure"],
                    weights=[2, 3, 4, 2, 1] if worse_off else [4, 3, 2, 1, 1],
                )[0],
                equal_partner=max(1, min(5, round(rng.gauss(2.4 if worse_off else 3.4, 1.0)))),
                partnership_barriers=_pick(rng, PARTNERSHIP_BARRIER_WEIGHTS),
                own_barriers=_pick(rng, OWN_BARRIER_WEIGHTS),
                obstacle=obstacles[index % len(obstacles)] if rng.random() < 0.85 else None,
                what_helps=_pick(rng, HELP_WEIGHTS),
                changes_answer=index == 4,
                language="cy" if welsh else "en",
            )
        )
    return people
