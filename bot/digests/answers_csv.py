"""The answers file: anonymised microdata of the scope's releasable rounds, one row per answer.

It may show nothing that the round's release held back, so a reader who has both learns
nothing more from the file than from the digest's tables:
- only rounds releasable on their own, and only while nobody who answered has erased their
  data since the round was published (a file made after an erasure, set against one made
  before, would show which rows went);
- the segment columns (answering as, area, organisation type and size) show a value only where
  the digest showed its row's count; the rest read "Other (merged)", and values are merged
  further until every combination of the columns in a round holds k or more respondents;
- options the digest merged read "other", options and codes it held back are left out, a
  question it held back is left out, skips are shown only where the digest showed their count,
  and numbers only where every value given was given by none or by k or more people;
- free texts are scrubbed (bot.digests.privacy), and held back where the scrubber is unsure.
Respondents are numbered afresh in each file.

Its notes and its segment labels are written in the language being spoken (the deployment's
default, from the command line); its column names, ids and codes stay as they are, for scripts.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.stored import NO_CODE, effective_codes
from bot.digests.digest import NOT_GIVEN, QuestionSummary, Scope
from bot.digests.disclosure import MERGED_LABEL, RoundRelease, release_round, safe
from bot.digests.privacy import Scrubber
from bot.digests.published import released_figures
from bot.digests.quotes import known_names
from bot.digests.segments import ANSWERS_AS_LABELS
from bot.kernel.i18n import N_, _
from storage.models import Answer, AnswerChoice, Invitation, Organisation, Question

# The note of a free text the scrubber would not let through (bot.digests.privacy).
TEXT_HELD_BACK = N_(
    "text held back: it may point to someone (many names or addresses, or a doubtful name)"
)
NUMBER_HELD_BACK = N_("number held back: some values were given by very few people")

CSV_COLUMNS = (
    "respondent",
    "round",
    "answering_as",
    "area",
    "organisation_type",
    "organisation_size",
    "question",
    "question_type",
    "skipped",
    "choices",
    "number",
    "text",
    "codes",
    "note",
)
# The segment columns: (digest dimension, CSV column)
SEGMENT_COLUMNS = (
    ("answers_as", "answering_as"),
    ("area", "area"),
    ("kind", "organisation_type"),
    ("size", "organisation_size"),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


@dataclass
class CsvResult:
    rows: int
    left_out: dict[int, str]  # round -> why its answers are not in the file


def write_csv(
    session: Session,
    k: int,
    scope: Scope,
    codebook: Codebook,
    out: TextIO,
) -> CsvResult:
    figures = released_figures(session, scope.round_ids)
    scrubber = Scrubber(known_names(session))
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    result = CsvResult(0, {})
    numbers: dict[int, int] = {}
    for round_id in scope.round_ids:
        f = figures[round_id]
        if f.responded < k:
            result.left_out[round_id] = f"fewer than {k} people answered"
            continue
        people = _respondents(session, round_id)
        if len(people) != f.responded:
            result.left_out[round_id] = "someone who answered has since erased their data"
            continue
        release = release_round(f, k, codebook, audience="coordinator", organisation_names={})
        segments = _generalise(people, release, k)
        result.rows += _write_round(
            session, writer, round_id, release, segments, codebook, scrubber, numbers, k
        )
    return result


def _respondents(session: Session, round_id: int) -> dict[int, dict[str, str]]:
    """Each respondent of the round (an invitation with answers) with their segment labels,
    read as the digest reads them."""
    segment = Invitation.segment
    columns = [
        segment["answers_as"].as_string(),
        func.coalesce(segment["area"].as_string(), Organisation.area),
        func.coalesce(segment["kind"].as_string(), Organisation.kind),
        func.coalesce(segment["size"].as_string(), Organisation.size),
    ]
    rows = session.execute(
        select(Invitation.id, *columns)
        .outerjoin(Organisation, Organisation.id == Invitation.organisation_id)
        .where(
            Invitation.round_id == round_id,
            Invitation.id.in_(select(Answer.invitation_id).distinct()),
        )
    ).all()
    return {
        ident: {
            key: _label(key, value)
            for (key, _column), value in zip(SEGMENT_COLUMNS, values, strict=True)
        }
        for ident, *values in rows
    }


def _label(key: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        return NOT_GIVEN
    if key == "answers_as":
        return ANSWERS_AS_LABELS.get(str(value), str(value).replace("_", " ").capitalize())
    return str(value).replace("_", " ")


def _generalise(
    people: dict[int, dict[str, str]], release: RoundRelease, k: int
) -> dict[int, dict[str, str]]:
    """Each respondent's segment cells as the file may show them: a label only where the
    digest showed that row's count, then merged further until every combination of the
    columns holds k or more people."""
    shown: dict[str, set[str]] = {
        d.key: {r.label for r in d.rows if r.responded is not None and not r.merged}
        for d in release.participation.dimensions
    }
    cells = {
        ident: {
            key: (label if label in shown.get(key, set()) else MERGED_LABEL)
            for key, label in labels.items()
        }
        for ident, labels in people.items()
    }
    keys = [key for key, _column in SEGMENT_COLUMNS]
    while True:
        combos = Counter(tuple(c[key] for key in keys) for c in cells.values())
        rare = [combo for combo, n in combos.items() if n < k]
        if not rare:
            return cells
        combo = min(rare, key=lambda c: (combos[c], c))
        key, value = _coarsening(cells, keys, combo)
        for c in cells.values():
            if value is None or c[key] == value:
                c[key] = MERGED_LABEL


def _coarsening(
    cells: dict[int, dict[str, str]], keys: list[str], combo: tuple[str, ...]
) -> tuple[str, str | None]:
    """The value to merge so that the rare combination grows: its own value in a column, or
    the value of the people who differ from it only in that column; the least held such
    value, so that fewest cells change. (column, None): merge the whole column."""
    held = Counter((key, c[key]) for c in cells.values() for key in keys)
    candidates: set[tuple[str, str]] = set()
    for j, key in enumerate(keys):
        if combo[j] != MERGED_LABEL:
            candidates.add((key, combo[j]))
            continue
        for c in cells.values():
            others_match = all(c[k2] == combo[i] for i, k2 in enumerate(keys) if i != j)
            if others_match and c[key] != MERGED_LABEL:
                candidates.add((key, c[key]))
    if candidates:
        return min(candidates, key=lambda kv: (held[kv], kv))
    widest = max(keys, key=lambda key: len({c[key] for c in cells.values()}))
    return widest, None


def _write_round(
    session: Session,
    writer: Any,
    round_id: int,
    release: RoundRelease,
    segments: dict[int, dict[str, str]],
    codebook: Codebook,
    scrubber: Scrubber,
    numbers: dict[int, int],
    k: int,
) -> int:
    summaries: dict[str, QuestionSummary] = {q.key: q for q in release.questions}
    # Numbers of a question only when every value given was given by none or by k or more.
    numbers_shown = {
        q.key: all(safe(n, k) for n in q.values.values()) for q in release.figures.questions
    }
    codes_shown = {r.code for r in release.barriers.rows + release.barriers.successes}
    written = 0
    for page, choices, codes in _pages(session, round_id):
        for aid, inv, key, qtype, skipped, number, text in page:
            summary = summaries.get(key)
            if summary is None or summary.suppressed:
                continue  # the digest held the question back
            if skipped and summary.skipped is None:
                continue  # so few skipped that the digest did not say how many
            note: list[str] = []
            shown_number = ""
            if number is not None and not skipped:
                if numbers_shown[key]:
                    shown_number = f"{number:g}"
                else:
                    note.append(_(NUMBER_HELD_BACK))
            shown_text = ""
            if text and not skipped:
                clean = scrubber.scrub(text)
                if clean is None:
                    note.append(_(TEXT_HELD_BACK))
                else:
                    shown_text = clean
            respondent = numbers.setdefault(inv, len(numbers) + 1)
            cells = segments[inv]
            writer.writerow(
                [
                    safe_cell(value)
                    for value in (
                        respondent,
                        round_id,
                        *(_(cells[key_]) for key_, _column in SEGMENT_COLUMNS),
                        key,
                        qtype,
                        "yes" if skipped else "",
                        " ".join(_choices(summary, choices.get(aid, []))),
                        shown_number,
                        shown_text,
                        " ".join(
                            c for c in codes.get(aid, []) if c in codes_shown and c in codebook
                        ),
                        "; ".join(note),
                    )
                ]
            )
            written += 1
    return written


def _pages(
    session: Session, round_id: int
) -> Iterator[tuple[list[Any], dict[int, list[str]], dict[int, list[str]]]]:
    """The round's answers in id order, 2,000 at a time, each page with its answers' choices
    and the codes that count."""
    last = 0
    while True:
        page = session.execute(
            select(
                Answer.id,
                Answer.invitation_id,
                Question.key,
                Question.type,
                Answer.skipped,
                Answer.number,
                Answer.text,
            )
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .join(Question, Question.id == Answer.question_id)
            .where(Invitation.round_id == round_id, Answer.id > last)
            .order_by(Answer.id)
            .limit(2000)
        ).all()
        if not page:
            return
        ids = [row[0] for row in page]
        choices = _by_answer(
            session.execute(
                select(AnswerChoice.answer_id, AnswerChoice.option_key)
                .where(AnswerChoice.answer_id.in_(ids))
                .order_by(AnswerChoice.answer_id, AnswerChoice.option_key)
            )
        )
        eff = effective_codes([round_id])
        codes = _by_answer(
            session.execute(
                select(eff.c.answer_id, eff.c.code)
                .where(eff.c.answer_id.in_(ids), eff.c.code != NO_CODE)
                .order_by(eff.c.answer_id, eff.c.code)
            )
        )
        yield list(page), choices, codes
        last = page[-1][0]


def _by_answer(rows: Any) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for answer_id, value in rows:
        grouped.setdefault(answer_id, []).append(value)
    return grouped


def _choices(summary: QuestionSummary, picked: list[str]) -> list[str]:
    """The options as the digest showed them: merged ones read "other", held back ones go."""
    shown = {c.key for c in summary.choices}
    out: list[str] = []
    for key in picked:
        if key in shown:
            out.append(key)
        elif summary.merged is not None and "other" not in out:
            out.append("other")
    return out
