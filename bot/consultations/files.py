"""Consultation files of either format: the one place that picks the reader by suffix (TOML or
XLSForm), and the plain-text flow of a set that `consultations validate` prints."""

from __future__ import annotations

from pathlib import Path

from bot.consultations.conditions import parse
from bot.consultations.problems import ConsultationError, Problem
from bot.consultations.sets import ConsultationSet, QuestionType, load_consultation
from bot.consultations.xlsform import read_xlsform

SUFFIXES = (".toml", ".xlsx")


def load_file(path: Path, known_codes: set[str] | None = None) -> ConsultationSet:
    """Read a .toml or .xlsx consultation file; ConsultationError names every problem."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return load_consultation(path, known_codes)
    if suffix == ".xlsx":
        return read_xlsform(path, str(path), known_codes)
    message = "not a consultation file: write it as .toml or as an XLSForm .xlsx"
    raise ConsultationError([Problem(str(path), None, None, message)])


def consultation_files(folder: Path) -> list[Path]:
    """The consultation files directly in `folder` (not in folders below it), by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_files(
    paths: list[Path], known_codes: set[str] | None = None
) -> list[tuple[Path, ConsultationSet]]:
    """Load every file; all their problems in one ConsultationError. Two files with the same
    set id (say pulse.toml beside pulse.xlsx) are an error: rounds refer to sets by id."""
    problems: list[Problem] = []
    loaded: list[tuple[Path, ConsultationSet]] = []
    first: dict[str, Path] = {}
    for path in paths:
        try:
            spec = load_file(path, known_codes)
        except ConsultationError as exc:
            problems.extend(exc.problems)
            continue
        if spec.id in first:
            message = f"duplicate consultation id {spec.id!r} (also in {first[spec.id]})"
            problems.append(Problem(str(path), None, None, message))
            continue
        first[spec.id] = path
        loaded.append((path, spec))
    if problems:
        raise ConsultationError(problems)
    return loaded


def describe_flow(spec: ConsultationSet) -> list[str]:
    """The questions in order, each with when it is asked and which later questions its
    answer decides: what a coordinator checks before importing."""
    languages = ", ".join([spec.language, *sorted(spec.translations)])
    lines = [
        f"{spec.id} v{spec.version}: {spec.title} ({spec.audience_hint.value}, about "
        f"{spec.estimated_minutes} min, {len(spec.questions)} questions; {languages})"
    ]
    reads = {q.id: parse(q.relevant).names() for q in spec.questions if q.relevant is not None}
    for n, q in enumerate(spec.questions, start=1):
        kind = q.type.value
        if q.type is QuestionType.SCALE and q.scale is not None:
            kind += f" {q.scale.min}-{q.scale.max}"
        if not q.required:
            kind += ", optional"
        when = f"asked when {q.relevant}" if q.relevant else "always asked"
        lines.append(f"  {n}. {q.id} ({kind})  {when}")
        for o in q.options or ():
            codes = f"  [{' '.join(o.codes)}]" if o.codes else ""
            alone = "  (clears the others)" if o.exclusive else ""
            lines.append(f"       - {o.id}: {o.label}{codes}{alone}")
        if q.codes:
            on = f"answer {q.codes_when}" if q.codes_when else f"answers <= {q.codes_at_most}"
            lines.append(f"       codes {' '.join(q.codes)} on {on}")
        for m, later in enumerate(spec.questions[n:], start=n + 1):
            if q.id in reads.get(later.id, ()):
                lines.append(f"       branches: {m}. {later.id} is asked when {later.relevant}")
    if spec.closing:
        lines.append("  then the closing text")
    return lines
