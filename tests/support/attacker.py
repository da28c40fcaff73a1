"""An automatic attacker on digests: a determined reader with everything one role can obtain.

It knows who was invited to each round and every invited person's segments and organisation
(the strongest reader: a coordinator who knows the partnership well), and wants what people
answered. Every figure it is shown becomes a linear equation over unknowns per invitation:
responded, completed, and per question answered, skipped, each option ticked, each scale
value given; and each barrier code named. Then, by linear algebra (what subtraction,
complements and any linear combination across tables and releases can reach), it checks:

- is any one person's unknown determined? (their answer, their code, whether they took part)
- is any count of people under k determined: in a round, a segment, an organisation, the rest
  of the partnership beside an organisation, a period less one of its rounds; counts of people
  who named a code (or ticked an option) and of respondents who did not?

A finding is a disclosure. Structural facts (a single-choice answer is one option; a scale
answer one value) are given to it too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.digests.digest import Digest
from bot.digests.disclosure import MERGED_LABEL

Key = tuple[Any, ...]


@dataclass
class Person:
    """One invitation: a person in one round, as the attacker sees (and the truth)."""

    invitation_id: int
    round_id: int
    labels: dict[str, str]  # dimension -> segment label, as digests label them
    org: int | None
    responded: bool = False
    completed: bool = False
    answers: dict[str, Any] = field(default_factory=dict)  # key -> value, None for a skip
    codes: set[str] = field(default_factory=set)


@dataclass
class Question:
    key: str
    type: str  # single | multi | scale
    values: list[Any]  # option keys, or scale values


@dataclass
class Finding:
    what: str
    value: float


class Attacker:
    def __init__(
        self, people: Sequence[Person], questions: Sequence[Question], codes: Sequence[str], k: int
    ):
        self.people = list(people)
        self.questions = {q.key: q for q in questions}
        self.codes = list(codes)
        self.k = k
        self.columns: dict[Key, int] = {}
        truth: list[float] = []
        for p in self.people:
            for key, value in self._unknowns(p):
                self.columns[key] = len(truth)
                truth.append(value)
        self.truth = np.array(truth)
        self.rows: list[np.ndarray] = []
        self.seen: list[str] = []
        self.zeros: list[str] = []  # zeros shown over fewer than k people: each one is known
        self.organisation: int | None = None  # a lead's own organisation, once one reads
        for p in self.people:  # structure: one option of a single choice, one scale value
            for q in self.questions.values():
                if q.type in ("single", "scale"):
                    parts = {(p.invitation_id, "x", q.key, v): 1.0 for v in q.values}
                    self._equation({**parts, (p.invitation_id, "a", q.key): -1.0}, 0.0, "structure")

    def _unknowns(self, p: Person) -> Iterable[tuple[Key, float]]:
        i = p.invitation_id
        yield (i, "r"), float(p.responded)
        yield (i, "c"), float(p.completed)
        for q in self.questions.values():
            given = q.key in p.answers
            value = p.answers.get(q.key)
            yield (i, "a", q.key), float(given and value is not None)
            yield (i, "s", q.key), float(given and value is None)
            for v in q.values:
                ticked = value == v if q.type != "multi" else v in (value or ())
                yield (i, "x", q.key, v), float(given and bool(ticked))
        for code in self.codes:
            yield (i, "y", code), float(code in p.codes)

    def _equation(self, coefficients: dict[Key, float], value: float, what: str) -> None:
        row = np.zeros(len(self.truth))
        for key, coefficient in coefficients.items():
            row[self.columns[key]] += coefficient
        true = float(row @ self.truth)
        assert abs(true - value) < 1e-6 * max(1.0, abs(value)), (
            f"{what}: shown {value}, true {true}"
        )
        self.rows.append(row)
        self.seen.append(what)

    def _sum(
        self, people: Iterable[Person], *unknown: Any, weight: float = 1.0
    ) -> dict[Key, float]:
        return {(p.invitation_id, *unknown): weight for p in people}

    # ------------------------------------------------------------------ what it is shown

    def read_digest(self, d: Digest, organisation: int | None = None) -> None:
        rounds = set(d.round_ids) - set(d.left_out)
        people = [p for p in self.people if p.round_id in rounds]
        where = f"digest {sorted(rounds)}"
        part = d.participation
        if part.responded is not None:
            self._equation(self._sum(people, "r"), part.responded, f"{where} responded")
        if part.completed is not None:
            self._equation(self._sum(people, "c"), part.completed, f"{where} completed")
        for dim in part.dimensions:
            own = {row.label for row in dim.rows if not row.merged}
            for row in dim.rows:
                members = self._row_members(people, dim.key, row.label, row.merged, own)
                if row.responded is not None:
                    self._equation(
                        self._sum(members, "r"),
                        row.responded,
                        f"{where} {dim.key}={row.label} responded",
                    )
                if row.completed is not None:
                    self._equation(
                        self._sum(members, "c"),
                        row.completed,
                        f"{where} {dim.key}={row.label} completed",
                    )
        for q in d.questions:
            self._read_question(people, q, where)
        b = d.barriers
        if b.base is not None:
            self._equation(self._sum(people, "r"), b.base, f"{where} base")
        for row in b.rows + b.successes:
            self._equation(self._sum(people, "y", row.code), row.respondents, f"{where} {row.code}")
        o = d.organisation
        if organisation is not None:
            self.organisation = organisation
        if o is not None and organisation is not None:
            mine = [p for p in people if p.org == organisation]
            if o.responded is not None:
                self._equation(self._sum(mine, "r"), o.responded, f"{where} own responded")
            for row in o.barriers:
                self._equation(
                    self._sum(mine, "y", row.code), row.respondents, f"{where} own {row.code}"
                )

    @staticmethod
    def _row_members(
        people: Sequence[Person], key: str, label: str, merged: bool, own: set[str]
    ) -> list[Person]:
        if merged:
            return [p for p in people if p.labels.get(key) not in own]
        return [p for p in people if p.labels.get(key) == label]

    def _read_question(self, people: Sequence[Person], q: Any, where: str) -> None:
        spec = self.questions.get(q.key)
        if spec is None or q.suppressed:
            return
        at = f"{where} {q.key}"
        if q.answered is not None:
            self._equation(self._sum(people, "a", q.key), q.answered, f"{at} answered")
        if q.skipped is not None:
            self._equation(self._sum(people, "s", q.key), q.skipped, f"{at} skipped")
        shown = {c.key for c in q.choices}
        for c in q.choices:
            self._equation(self._sum(people, "x", q.key, c.key), c.count, f"{at}={c.key}")
        if q.merged is not None:
            rest: dict[Key, float] = {}
            for v in spec.values:
                if v not in shown:
                    rest.update(self._sum(people, "x", q.key, v))
            self._equation(rest, q.merged.count, f"{at} merged")
        s = q.scale
        if s is not None:

            def moment(power: int) -> dict[Key, float]:
                out: dict[Key, float] = {}
                for v in spec.values:
                    out.update(self._sum(people, "x", q.key, v, weight=float(v) ** power))
                return out

            self._equation(moment(0), s.n, f"{at} n")
            self._equation(moment(1), s.mean * s.n, f"{at} mean")
            sumsq = s.sd**2 * (s.n - 1) + s.n * s.mean**2
            self._equation(moment(2), sumsq, f"{at} sd")
            for bound, below in ((s.min, True), (s.max, False)):
                if bound is None:
                    continue
                beyond: dict[Key, float] = {}
                for v in spec.values:
                    if (v < bound) if below else (v > bound):
                        beyond.update(self._sum(people, "x", q.key, v))
                if beyond:
                    self._equation(beyond, 0.0, f"{at} {'lowest' if below else 'highest'}")

    def read_csv(self, text: str) -> None:
        """The answers file: per round and combination of segment columns, counts of people
        and of each value shown (the attacker knows whose segments map to each cell)."""
        rows = list(csv.DictReader(io.StringIO(text)))
        columns = {
            "answering_as": "answers_as",
            "area": "area",
            "organisation_type": "kind",
            "organisation_size": "size",
        }
        by_round: dict[int, list[dict[str, str]]] = {}
        for r in rows:
            by_round.setdefault(int(r["round"]), []).append(r)
        for round_id, round_rows in by_round.items():
            people = [p for p in self.people if p.round_id == round_id]
            shown = {col: {r[col] for r in round_rows} - {MERGED_LABEL} for col in columns}

            groups: dict[tuple[str, ...], list[Person]] = {}
            for p in people:
                cell = tuple(
                    p.labels.get(dim, "Not given")
                    if p.labels.get(dim, "Not given") in shown[col]
                    else MERGED_LABEL
                    for col, dim in columns.items()
                )
                groups.setdefault(cell, []).append(p)
            tallies: dict[tuple[str, ...], dict[Key, set[str]]] = {}
            # A code is written on the row of the answer that carries it: with a question
            # left out of the file (the digest held it back), the codes on its answers are
            # out of sight, and the rows' codes no longer count the people who have them.
            whole = set(self.questions) <= {r["question"] for r in round_rows}
            for r in round_rows:
                combo = tuple(r[col] for col in columns)
                tally = tallies.setdefault(combo, {})
                tally.setdefault(("r",), set()).add(r["respondent"])
                key = r["question"]
                if r["skipped"]:
                    tally.setdefault(("s", key), set()).add(r["respondent"])
                for choice in r["choices"].split():
                    tally.setdefault(("x", key, choice), set()).add(r["respondent"])
                if r["number"]:
                    tally.setdefault(("x", key, int(float(r["number"]))), set()).add(
                        r["respondent"]
                    )
                for code in r["codes"].split() if whole else ():
                    tally.setdefault(("y", code), set()).add(r["respondent"])
            for combo, members in groups.items():
                tally = tallies.get(combo, {})
                where = f"csv {round_id} {combo}"
                for unknown, who in tally.items():
                    if unknown[0] == "x" and unknown[2] == "other":
                        spec = self.questions[unknown[1]]
                        listed = {u[2] for u in tally if u[0] == "x" and u[1] == unknown[1]}
                        rest: dict[Key, float] = {}
                        for v in spec.values:
                            if v not in listed:
                                rest.update(self._sum(members, "x", unknown[1], v))
                        self._equation(rest, len(who), f"{where} {unknown}")
                    elif unknown != ("r",):
                        self._equation(self._sum(members, *unknown), len(who), f"{where} {unknown}")

    # ------------------------------------------------------------------ the search

    def findings(self) -> list[Finding]:
        if not self.rows:
            return []
        zeros = [Finding(what, 0.0) for what in self.zeros]
        a = np.vstack(self.rows)
        _, singular, vt = np.linalg.svd(a, full_matrices=False)
        rank = int((singular > 1e-8 * singular[0]).sum()) if singular.size else 0
        basis = vt[:rank]
        targets, names, kinds = self._targets()
        residual = targets - (targets @ basis.T) @ basis
        derivable = np.abs(residual).max(axis=1) < 1e-6
        values = targets @ self.truth
        found: list[Finding] = []
        for ok, value, name, kind in zip(derivable, values, names, kinds, strict=True):
            if not ok:
                continue
            if kind == "person" or 1 <= round(value) <= self.k - 1:
                found.append(Finding(name, float(value)))
        return zeros + found

    def explain(self, finding: Finding) -> list[tuple[float, str]]:
        """The shown figures, with their weights, that add up to a finding (for debugging)."""
        a = np.vstack(self.rows)
        targets, names, _ = self._targets()
        t = targets[names.index(finding.what)] if finding.what in names else None
        if t is None:
            return []
        z, *_ = np.linalg.lstsq(a.T, t, rcond=None)
        return [(round(float(w), 3), self.seen[i]) for i, w in enumerate(z) if abs(w) > 1e-6]

    def _targets(self) -> tuple[np.ndarray, list[str], list[str]]:
        rows: list[np.ndarray] = []
        names: list[str] = []
        kinds: list[str] = []

        def add(coefficients: dict[Key, float], name: str, kind: str) -> None:
            row = np.zeros(len(self.truth))
            for key, c in coefficients.items():
                row[self.columns[key]] += c
            if row.any():
                rows.append(row)
                names.append(name)
                kinds.append(kind)

        for key, column in self.columns.items():
            if key[1] in ("a",):
                continue  # answered or not: the same as skipped-or-not-reached, not protected
            row = np.zeros(len(self.truth))
            row[column] = 1.0
            rows.append(row)
            names.append(f"person {key}")
            kinds.append("person")
        content: list[tuple[Any, ...]] = []
        for q in self.questions.values():
            content.append(("s", q.key))
            content += [("x", q.key, v) for v in q.values]
        content += [("y", code) for code in self.codes]
        for group_name, members, about_content in self._groups():
            for unknown in [("r",), ("c",), *(content if about_content else [])]:
                add(self._sum(members, *unknown), f"{group_name} {unknown}", "group")
                if unknown[0] == "y" or (
                    unknown[0] == "x" and self.questions[unknown[1]].type == "multi"
                ):
                    base = ("r",) if unknown[0] == "y" else ("a", unknown[1])
                    complement = {**self._sum(members, *base)}
                    for key, c in self._sum(members, *unknown).items():
                        complement[key] = complement.get(key, 0.0) - c
                    add(complement, f"{group_name} not {unknown}", "group")
        return np.vstack(rows), names, kinds

    def _groups(self) -> list[tuple[str, list[Person], bool]]:
        """Groups whose counts the digests publish or hold back: each round, all rounds, all
        rounds less one (for what people said and whether they took part); every segment of
        those (whether they took part: digests show no content by segment); with a lead's
        organisation, it and the rest beside it (content too). The answers file is
        k-anonymous microdata: it is checked by the single-person targets, not by these."""
        rounds = sorted({p.round_id for p in self.people})
        scopes: list[tuple[str, list[Person]]] = [
            (f"round {r}", [p for p in self.people if p.round_id == r]) for r in rounds
        ]
        scopes.append(("all rounds", self.people))
        for r in rounds:
            scopes.append((f"all rounds but {r}", [p for p in self.people if p.round_id != r]))
        groups: list[tuple[str, list[Person], bool]] = []
        for name, members in scopes:
            groups.append((name, members, True))
            dims = {d for p in members for d in p.labels}
            for dim in dims:
                for label in {p.labels.get(dim) for p in members}:
                    chosen = [p for p in members if p.labels.get(dim) == label]
                    groups.append((f"{name} {dim}={label}", chosen, False))
            if self.organisation is not None:
                mine = [p for p in members if p.org == self.organisation]
                rest = [p for p in members if p.org != self.organisation]
                groups += [(f"{name} own org", mine, True), (f"{name} rest", rest, True)]
        return groups
