"""The catalogs are current and complete: every message the templates and Python mark for
translation is in translations/messages.pot and has a Welsh translation."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from jinja2 import Environment

from bot.kernel import i18n
from bot.kernel.config import REPO_ROOT

WELSH = REPO_ROOT / "translations" / "cy" / "LC_MESSAGES" / "messages.po"


def _extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-o", str(pot), "--no-location", "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return {_key(m.id) for m in read_po(file) if m.id}


def _filled(string: str | tuple[str, ...]) -> bool:
    """A translation with no empty form (plural messages have one string per form)."""
    return all(string) if isinstance(string, tuple) else bool(string)


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id[0] if isinstance(message_id, tuple) else message_id


def test_every_extracted_message_has_a_welsh_translation(tmp_path: Path) -> None:
    with WELSH.open("rb") as file:
        welsh = read_po(file, locale="cy")
    translated = {
        _key(m.id): m.string for m in welsh if m.id and not m.fuzzy
    }  # iterating a catalog leaves out its obsolete (#~) entries
    extracted = _extracted(tmp_path)
    missing = sorted(extracted - translated.keys())
    assert not missing, f"not in the Welsh catalog (run make messages, then translate): {missing}"
    empty = [key for key in extracted if not _filled(translated[key])]
    assert not empty, f"no Welsh translation yet: {sorted(empty)}"


def test_the_catalog_compiles_in_memory_with_welsh_plural_forms() -> None:
    welsh = i18n.catalogs()["cy"]
    assert welsh.gettext("Agree") == "Cytuno"
    removed = "This answer no longer applies after your change, so I have removed it:"
    plural = "These answers no longer apply after your change, so I have removed them:"
    assert "wedi'i ddileu" in welsh.ngettext(removed, plural, 1)
    assert "wedi'u dileu" in welsh.ngettext(removed, plural, 2)


def test_best_match_and_the_order_offered() -> None:
    assert i18n.best_match("cy", ["en", "cy"]) == "cy"
    assert i18n.best_match("en-GB", ["en", "cy"]) == "en"
    assert i18n.best_match("fr", ["en", "cy"]) is None
    assert i18n.best_match(None, ["en", "cy"]) is None
    assert i18n.offered("cy", ["en", "cy"]) == ["cy", "en"]
    assert i18n.offered("fr", ["en", "cy"]) == ["en", "cy"]


# ---------------------------------------------------------------- nothing said outside them
#
# What a person reads in a chat comes from templates and from Python strings marked for the
# catalogs. These two scans find the rest: literal words in a template outside {% trans %},
# and prose in bot/ and handlers/ that is neither marked nor one of the kinds below that never
# reach a chat. The command line (bot/cli) and the demo's script (bot/demo) speak to whoever
# runs the server, in English, as pybabel and alembic do, and are not scanned.

TEMPLATES = REPO_ROOT / "templates"
_TAGS = re.compile(r"<(style|script)\b.*?</\1>|<[^>]*>|&#?\w+;", re.S)
_WORD = re.compile(r"[^\W\d_]{2,}")
_PROSE = re.compile(r"[^\W\d_]{2,}[\s,.:;'!?()\-]+[^\W\d_]{2,}")
_MARKED = {"_", "N_", "gettext", "ngettext"}
# Said to logs, audit rows, regular expressions or SQL, never to a person.
_LOGS = {"debug", "info", "warning", "error", "exception", "critical", "warn"}
_REGEX = {"compile", "sub", "subn", "match", "search", "split", "fullmatch", "findall", "finditer"}
_NOT_SAID = {
    "refuse": "a press refused: the template says why; the reason is logged",
    "_bad_button": "the same",
    "record": "an audit row's details (bot/kernel/audit.py)",
    "text": "SQL",
}
_INTERNAL_ERRORS = {
    "ValueError", "RuntimeError", "TypeError", "KeyError", "AssertionError",
    "NotImplementedError", "LookupError", "OSError", "SystemExit",
}  # fmt: skip
# Names, not words: template and file names, dotted keys (audit events, columns, settings),
# callback data ("iv:lead:"), URLs, and Babel's date patterns ("d MMM yyyy", named months).
_NAMES = re.compile(
    r"^[\w./-]+\.(html|txt|md|toml|json|jsonl|npz|sqlite3|xlsx|csv|png)$|^\w+(\.\w+)+$"
    r"|^:?\w+(:\w*)+:?$|^https?://|^[dMyEHhmsaL ,.:'-]+$"
)


def _template_words(path: Path) -> list[str]:
    """Literal words outside {% trans %} and string literals of prose outside _()."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    found, inside, before = [], False, ["", ""]
    # The text outside trans, each tag, expression or trans block as a NUL: an HTML tag can
    # span an expression (<html lang="{{ lang }}">), so tags are taken out of the whole.
    skeleton: list[str] = []
    for line, kind, value in env.lex(path.read_text(encoding="utf-8")):
        if kind in ("whitespace", "comment_begin", "comment", "comment_end"):
            continue
        if kind == "name" and before[-1] == "block_begin" and value in ("trans", "endtrans"):
            inside = value == "trans"
        elif kind == "data" and not inside:
            skeleton.append(value)
        elif (
            kind == "string"
            and _PROSE.search(value)
            and not _NAMES.match(value.strip("\"'"))
            and not (before[-1] == "(" and before[-2] in _MARKED)
        ):
            found.append(f"{line}: {value[:60]}")
        if kind != "data" and skeleton[-1:] != ["\0"]:
            skeleton.append("\0")
        before.append(value if kind in ("name", "operator") else kind)
    for text in _TAGS.sub(" ", "".join(skeleton)).split("\0"):
        if _WORD.search(text):
            found.append(repr(text.strip()[:60]))
    return found


def test_every_word_in_a_template_is_in_the_catalogs() -> None:
    left = {
        str(path.relative_to(REPO_ROOT)): words
        for path in sorted(TEMPLATES.rglob("*"))
        if path.suffix in {".html", ".txt", ".md"} and (words := _template_words(path))
    }
    assert not left, f"words outside {{% trans %}} or _(): {left}"


def _call_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _not_for_people(tree: ast.Module) -> set[int]:
    """Ids of the nodes whose strings never reach a chat (see the constants above)."""
    out: set[int] = set()

    def cover(node: ast.AST) -> None:
        out.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # docstring
            out.add(id(first.value))
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            owner = getattr(getattr(node.func, "value", None), "id", "")
            if (
                name in _MARKED
                or name in _NOT_SAID
                or (name in _LOGS and owner in {"log", "logger", "logging"})
                or (name in _REGEX and owner == "re")
            ):
                cover(node)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if _call_name(exc) in _INTERNAL_ERRORS:
                cover(node)
        elif isinstance(node, ast.Assert):
            cover(node)
    return out


def _unmarked_prose() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in ("bot", "handlers"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(REPO_ROOT))
            if name.startswith(("bot/cli/", "bot/demo/")) or name in NOT_SAID_FILES:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _not_for_people(tree)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in skip
                    and _PROSE.search(node.value)
                    and not _NAMES.match(node.value.strip())
                    and not any(re.search(p, node.value) for p in NOT_SAID.get(name, ()))
                ):
                    found.setdefault(name, []).append(f"{node.lineno}: {node.value[:60]!r}")
    return found


# Whole modules whose strings are data or for whoever runs the server, not messages, and why.
NOT_SAID_FILES: dict[str, str] = {
    "bot/coding/codebook.py": "the codebook's lexicons",
    "bot/coding/codebook_file.py": "a codebook file's load errors (at start, on stderr)",
    "bot/coding/cues.py": "the cue language's patterns, and its load errors",
    "bot/coding/rules.py": "function words the rules skip, and explain(), a line for developers",
    "bot/coding/spelling.py": "words the spelling matcher must never confuse",
    "bot/coding/text_model.py": "the artefact's load errors, logged at start",
    "bot/coding/training.py": "python -m bot.coding.training, a developer's command",
    "bot/kernel/config.py": "settings errors at start, and the default partnership name (a "
    "setting every deployment gives)",
    "bot/participation/sheets.py": "`consultbot answers import`: command line only",
    "bot/participation/submissions.py": "the same",
    "bot/participation/imported.py": "the same",
    "bot/telegram/client.py": "HTTP headers and Bot API errors, logged",
    "bot/telegram/jobs.py": "job names",
    "bot/telegram/webhook.py": "HTTP headers",
    "bot/digests/personal.py": "the scrubber's word lists, and its doubts (which only decide "
    "whether a quote is used)",
}
# Per module, the strings that never reach a chat (regular expressions), and why.
NOT_SAID: dict[str, tuple[str, ...]] = {
    # Why a press was refused, for the log: the person reads the template refuse() names.
    "bot/participation/decide.py": (
        "is no answer to a",
        "^skip on a required question$",
        "^tick or done on a non-multi question$",
        "^no option $",
        "^not the question being asked$",
    ),
    # Table notes for the /mydata completeness test, not the person's file.
    "bot/participation/mydata.py": ("^a consultation set", "^a round's", "^Telegram's update",
        "^a Telegram update", "^held only by", "^counts of people", "each exported answer"),
    # Why a delivery was cancelled or failed: kept on the row for `consultbot rounds show`.
    "bot/outbox/claims.py": ("^BEGIN IMMEDIATE$", r"^recipient unreachable \(403\)$",
        "^gave up after $"),
    "bot/outbox/queue.py": ("^recipient said /stop$",),
    "bot/rounds/closing.py": ("^round closed$",),
    "bot/telegram/sender.py": ("^429 retry after $", "^timeout"),
    # A scheduled event's note, read in `consultbot rounds show`.
    "bot/rounds/events.py": ("^schedule (gone|ended)$", "^round gone$", "^planned round $",
        "^closed, not opened", "^round not open$"),
    "bot/rounds/opening.py": ("^round was over before it could open$",),
    # Telegram's own error text, matched.
    "bot/telegram/replies.py": ("^not modified$",),
    # File names of digests sent as documents.
    "handlers/lead.py": ("^digest-",),
    "bot/digests/fanout.py": ("^digest-round-$",),
    # Why a round's answers are not in the CSV: logged by `consultbot digest --format csv`.
    "bot/digests/answers_csv.py": ("^fewer than $", "^ people answered$", "^someone who answered"),
    "bot/digests/render.py": ("^upper left$",),  # matplotlib's legend position
    # XLSForm's own vocabulary: column names, types and appearances, written as the form has them.
    "bot/consultations/xlsform_terms.py": (r"^[a-z]+([ -][a-z]+)+$",),
    "bot/consultations/xlsform_rows.py": ("^list name$",),
    "bot/consultations/xlsform_write.py": (r"^string-length\(\.\) <= $",),
    "bot/consultations/conditions.py": ("start: or_",),  # the grammar
}  # fmt: skip


def test_every_sentence_in_python_that_reaches_a_chat_is_in_the_catalogs() -> None:
    left = _unmarked_prose()
    assert not left, f"prose not marked with _() or N_() (or listed as never said): {left}"


def test_a_line_ending_in_words_keeps_its_newline() -> None:
    """trim_blocks takes the newline after every block tag, {% endtrans %} too, so a line of
    words ending in one would run into the next: it ends in {% endtrans +%}, unless the next
    line only closes its branch ({% else %}, {% endif %}...) or there is none."""
    joined = []
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix not in {".html", ".txt", ".md"}:
            continue
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        for number, line in enumerate(lines[:-1], 1):
            closes = lines[number].lstrip().startswith(("{% el", "{% end"))
            if line.endswith("{% endtrans %}") and not closes:
                joined.append(f"{path.relative_to(TEMPLATES)}:{number}")
    assert not joined, f"lines that lose their newline: {joined}"
