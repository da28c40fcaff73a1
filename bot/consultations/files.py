"""Consultation files of either format: the one place that picks the reader by suffix (TOML or
XLSForm), and the plain-text flow of a set that `consultations validate` prints."""

from __future__ import annotations

from pathlib import Path

from bot.consultations.conditions import parse
from bot.consultations.problems import ConsultationError, Problem, SourceMap
from bot.consultations.sets import ConsultationSet, QuestionType, load_consultation
from bot.consultations.xlsform import read_xlsform
from bot.kernel.i18n import _, ngettext

SUFFIXES = (".toml", ".xlsx")


def load_file(path: Path, known_codes: set[str] | None = None) -> ConsultationSet:
    """Read a .toml or .xlsx consultation file; ConsultationError names every problem."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return load_consultation(path, known_codes)
    if suffix == ".xlsx":
        return read_xlsform(path, str(path), known_codes)
    message = _("not a consultation file: write it as .toml or as an XLSForm .xlsx")
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
            message = _("duplicate consultation id {id} (also in {file})").format(
                id=repr(spec.id), file=first[spec.id]
            )
            problems.append(Problem(str(path), *_id_line(path), message))
            continue
        first[spec.id] = path
        loaded.append((path, spec))
    if problems:
        raise ConsultationError(problems)
    return loaded


def load_directory(folder: Path, known_codes: set[str] | None = None) -> list[ConsultationSet]:
    """Every ``*.toml`` set directly in `folder`, sorted by set id (the shipped sets' sources:
    their spreadsheet copies are in a folder below). Problems as `load_files`."""
    loaded = load_files(sorted(folder.glob("*.toml")), known_codes)
    return sorted((spec for path, spec in loaded), key=lambda spec: spec.id)


def _id_line(path: Path) -> tuple[int | None, str | None]:
    """Where a TOML file says its set id (line, field), for a duplicate; a sheet: nowhere."""
    if path.suffix.lower() != ".toml":
        return None, None
    return SourceMap(path.read_text(encoding="utf-8")).locate(("id",)), "id"


def describe_flow(spec: ConsultationSet) -> list[str]:
    """The questions in order, each with when it is asked and which later questions its
    answer decides: what a coordinator checks before importing. In the language being spoken
    (the CLI's is the deployment's default); types, ids and conditions are the file's own."""
    languages = ", ".join([spec.language, *sorted(spec.translations)])
    count = len(spec.questions)
    lines = [
        ngettext(
            "{id} v{version}: {title} ({audience}, about {minutes} min, {count} question; "
            "{languages})",
            "{id} v{version}: {title} ({audience}, about {minutes} min, {count} questions; "
            "{languages})",
            count,
        ).format(
            id=spec.id,
            version=spec.version,
            title=spec.title,
            audience=spec.audience_hint.value,
            minutes=spec.estimated_minutes,
            count=count,
            languages=languages,
        )
    ]
    reads = {q.id: parse(q.relevant).names() for q in spec.questions if q.relevant is not None}
    for n, q in enumerate(spec.questions, start=1):
        kind = q.type.value
        if q.type is QuestionType.SCALE and q.scale is not None:
            kind += f" {q.scale.min}-{q.scale.max}"
        if not q.required:
            kind = _("{type}, optional").format(type=kind)
        if q.relevant:
            when = _("asked when {condition}").format(condition=q.relevant)
        else:
            when = _("always asked")
        lines.append(f"  {n}. {q.id} ({kind})  {when}")
        for o in q.options or ():
            codes = f"  [{' '.join(o.codes)}]" if o.codes else ""
            alone = "  " + _("(clears the others)") if o.exclusive else ""
            lines.append(f"       - {o.id}: {o.label}{codes}{alone}")
        if q.codes:
            codes = " ".join(q.codes)
            if q.codes_when:
                on = _("codes {codes} on answer {answer}").format(codes=codes, answer=q.codes_when)
            else:
                on = _("codes {codes} on answers <= {highest}").format(
                    codes=codes, highest=q.codes_at_most
                )
            lines.append(f"       {on}")
        for m, later in enumerate(spec.questions[n:], start=n + 1):
            if q.id in reads.get(later.id, ()):
                branch = _("branches: {number}. {question} is asked when {condition}").format(
                    number=m, question=later.id, condition=later.relevant
                )
                lines.append(f"       {branch}")
    if spec.closing:
        lines.append("  " + _("then the closing text"))
    return lines
