"""The audit behind secondary suppression (bot.digests.disclosure): which more segment rows must
be held back so that no small group can be worked out by combining the rows shown."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bot.digests.figures import RoundFigures
from bot.digests.segments import DIMENSIONS as SEGMENT_DIMENSIONS


class Atoms:
    """The audit behind secondary suppression. Dimensions are not independent (every service
    user's organisation type is "not given"; an organisation sits in one area), so cells kept
    apart in their own tables can still be had by combining tables. The atoms are the
    combinations of segments (and organisation) that occur; every cell is a set of atoms, and
    linear algebra tells whether a held-back cell, a segment, or a combination of fewer than k
    people can be worked out from the cells shown."""

    def __init__(self, f: RoundFigures, rows_of: Mapping[str, Mapping[str, str]]) -> None:
        keys = [key for key, _ in SEGMENT_DIMENSIONS]
        self.values = np.array([[a[2], a[3], a[4]] for a in f.atoms], dtype=float).reshape(-1, 3)
        self.orgs = [a[0] for a in f.atoms]
        self.labels = [dict(zip(keys, a[1], strict=True)) for a in f.atoms]
        self.rows_of = rows_of

    def cell(self, key: str, row: str) -> np.ndarray:
        """The atoms in a dimension's shown row."""
        rows = self.rows_of.get(key, {})
        return np.array([rows.get(labels.get(key, "")) == row for labels in self.labels], float)

    def organisation(self, org: int) -> np.ndarray:
        return np.array([o == org for o in self.orgs], float)

    def _targets(self, index: int, k: int) -> np.ndarray:
        """Groups a reader can name that hold fewer than k people (or whose count is under
        k), one per row: each combination, each segment label."""
        groups = [np.eye(len(self.labels))]
        for key in self.rows_of:
            labels = [lab.get(key) for lab in self.labels]
            # In first-seen order, not a set's: which group is found first decides which row is
            # held back, and a digest must come out the same every time it is compiled.
            for label in dict.fromkeys(labels):
                groups.append(np.array([[x == label for x in labels]], float))
        matrix = np.vstack(groups)
        counts, people = matrix @ self.values[:, index], matrix @ self.values[:, 0]
        return matrix[((counts >= 1) & (counts < k)) | ((people > 0) & (people < k))]

    def exposed(self, shown: list[np.ndarray], index: int, k: int) -> np.ndarray | None:
        """A sensitive group that the shown cells determine, or None."""
        if not shown or not len(self.labels):
            return None
        targets = self._targets(index, k)
        if not len(targets):
            return None
        derivable = np.flatnonzero(_determined(targets, np.vstack(shown)))
        return targets[derivable[0]] if derivable.size else None

    def shown(self, hidden: set[tuple[str, str]]) -> list[np.ndarray]:
        """What a reader has: the total and each row not in `hidden`."""
        return [np.ones(len(self.labels)), *self.shown_cells(hidden).values()]

    def shown_cells(self, hidden: set[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        cells: dict[tuple[str, str], np.ndarray] = {}
        for key, rows in self.rows_of.items():
            for row in dict.fromkeys(rows.values()):  # in order, as _targets
                if (key, row) not in hidden:
                    cells[(key, row)] = self.cell(key, row)
        return cells

    def released(self, hidden: set[tuple[str, str]], index: int, k: int) -> None:
        """Show again (taking out of `hidden`) the held-back rows of k or more that the rows
        shown and the total already determine: showing them tells a reader nothing new (the
        audit holds back the smallest row a small group's sum used, which can leave one the
        others add up to, such as the last of two languages)."""
        shown = np.vstack(self.shown(hidden))
        for name in sorted(hidden):
            cell = self.cell(*name)
            if cell @ self.values[:, index] >= k and _determined(cell[None, :], shown)[0]:
                hidden.discard(name)

    def audit(self, hidden: set[tuple[str, str]], index: int, k: int) -> None:
        """Hold back more rows (adding them to `hidden`) until no sensitive group can be
        worked out from the rows shown and the total."""
        total = np.ones(len(self.labels))
        while True:
            cells = self.shown_cells(hidden)
            target = self.exposed([total, *cells.values()], index, k)
            if target is None:
                return
            names = list(cells)
            matrix = np.vstack([total, *cells.values()])
            weights, *_ = np.linalg.lstsq(matrix.T, target, rcond=None)
            used = [
                (float(cells[name] @ self.values[:, index]), name)
                for name, w in zip(names, weights[1:], strict=True)
                if abs(w) > 1e-9
            ]
            if not used:
                return  # only the total itself: nothing smaller to hold back
            hidden.add(min(used)[1])


def _determined(groups: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """For each row of `groups` (a set of atoms), whether the rows `shown` add up to it: its
    count can be worked out from what is shown."""
    _, singular, vt = np.linalg.svd(shown, full_matrices=False)
    rank = int((singular > 1e-9 * max(singular[0], 1.0)).sum()) if singular.size else 0
    basis = vt[:rank]
    return np.asarray(np.abs(groups - (groups @ basis.T) @ basis).max(axis=1) < 1e-9)
