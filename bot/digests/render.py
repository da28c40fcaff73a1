"""Turning a Digest into what people read: Telegram HTML messages, a printable HTML file with
embedded charts, Markdown, a CSV of anonymised answers, and chart PNGs.

Every answer text reaching a template is escaped by Jinja2's autoescape (HTML) or by the `md`
filter (Markdown); CSV cells that a spreadsheet would run as formulas are neutralised.

A digest is rendered in the language being spoken (i18n.speaking around each reader's copy):
the templates' words through gettext, and the digest's own (bot.digests.digest.Said, labels
as counted) put into words here, so one compiled digest renders in every language.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.lists import format_list
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook, primary_language
from bot.digests.answers_csv import write_csv
from bot.digests.barriers import FAMILY_LABELS, FAMILY_NAMES
from bot.digests.digest import ActionItem, Digest, ReachGap, ScaleStats, Scope
from bot.digests.disclosure import MERGED_LABEL, dimension_label
from bot.digests.privacy import in_reader_language
from bot.digests.segments import language_label, segment_label
from bot.kernel import i18n
from bot.kernel.config import Settings
from bot.kernel.i18n import N_, _, ngettext
from bot.kernel.render import TELEGRAM_LIMIT, Renderer

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FAMILY_COLOURS = {"external": "#1f5f8b", "internal": "#d9822b", "success": "#3a8a4f"}
FORMATS = ("tg", "html", "md", "csv")
CHART_TITLES = {
    "barriers": N_("Barriers named: external against internal"),
    "response": N_("Who we heard from: response rate by segment"),
}


# --------------------------------------------------------------------------- words


def words(value: Any) -> str:
    """A digest's text in the language being spoken: a label as counted (a key such as
    "Not given", or "Yes") through the catalog, which leaves a name or a typed value as it
    is; anything else (Said, a set's own translations, a code's label) says itself."""
    return _(value) if isinstance(value, str) else str(value)


def reach_gap(digest: Digest, gap: ReachGap) -> str:
    """A reach gap in words: "Area: East (no responses from 6 invited)"."""
    values = {
        "dimension": words(dimension_label(gap.dimension)),
        "segment": segment_label(digest.segment_names, gap.dimension, gap.label),
        "invited": gap.invited,
        "k": digest.k,
    }
    if gap.none:
        return _("{dimension}: {segment} (no responses from {invited} invited)").format(**values)
    return _("{dimension}: {segment} (fewer than {k} responses from {invited} invited)").format(
        **values
    )


def family_name(family: str) -> str:
    """A code family's short name ("external"), in words."""
    return _(FAMILY_NAMES[family]) if family in FAMILY_NAMES else family


# --------------------------------------------------------------------------- templates


def _signed_pp(change: float | None) -> str:
    if change is None:
        return ""
    points = round(change * 100)
    if points == 0:
        return _("no change")
    sign = "+" if points > 0 else "−"
    n = abs(points)
    return ngettext("{sign}{n} pt", "{sign}{n} pts", n).format(sign=sign, n=n)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def _md(text: Any) -> str:
    """Escape text for Markdown: its own syntax, and HTML that renderers pass through."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return " ".join(value.split())


def _prepare(renderer: Renderer) -> Renderer:
    renderer.env.filters.setdefault("pp", _signed_pp)
    renderer.env.filters.setdefault("md", _md)
    return renderer


def _context(digest: Digest, renderer: Renderer) -> dict[str, Any]:
    barriers = digest.barriers

    def listed(items: list[str]) -> Markup:
        """Items (already escaped) as a list in words: "a, b and c", "a, b a c"."""
        return Markup(format_list([str(escape(i)) for i in items], locale=renderer.locale))

    def cell(value: int | None, small: bool = False) -> str:
        """A count as shown: the number, or why it is held back."""
        if value is not None:
            return str(value)
        return _("fewer than {k}").format(k=digest.k) if small else _("not shown")

    return {
        "d": digest,
        "families": [
            (_(FAMILY_LABELS[family]), [r for r in barriers.rows if r.family == family])
            for family in ("external", "internal")
        ],
        "merged_label": _(MERGED_LABEL),
        "quotes_by_code": _quotes_by_code(digest),
        "cell": cell,
        "words": words,
        "segment": lambda dimension, label: segment_label(digest.segment_names, dimension, label),
        "gap": lambda g: reach_gap(digest, g),
        "family": family_name,
        "spread": _spread,
        "action_status": _action_status,
        "listed": listed,
        "language": i18n.current(),
    }


def _spread(scale: ScaleStats) -> str:
    """A scale's spread, with its lowest and highest values when shown: "sd 1.2, lowest 1"."""
    parts = [_("sd {sd}").format(sd=f"{scale.sd:.1f}")]
    if scale.min is not None:
        parts.append(_("lowest {value}").format(value=f"{scale.min:g}"))
    if scale.max is not None:
        parts.append(_("highest {value}").format(value=f"{scale.max:g}"))
    return ", ".join(parts)


ACTION_STATUSES = {"open": N_("open"), "done": N_("done"), "dropped": N_("dropped")}


def _action_status(action: ActionItem) -> str:
    if action.overdue:
        return _("overdue")
    return _(ACTION_STATUSES[action.status]) if action.status in ACTION_STATUSES else action.status


def _quotes_by_code(digest: Digest) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    """(code label, family, [(quote, its language's name when not the reader's)]) per code.
    Quotes stay in the language they were written in."""
    grouped: dict[str, tuple[str, str, list[tuple[str, str | None]]]] = {}
    reading = primary_language(i18n.current())
    for q in digest.quotes:
        other = q.language and primary_language(q.language) != reading
        marker = language_label(q.language) if q.language and other else None
        quote = in_reader_language(q.text)
        grouped.setdefault(q.code, (str(q.label), q.family, []))[2].append((quote, marker))
    return [(label, family, texts) for label, family, texts in grouped.values()]


def render_telegram(digest: Digest, renderer: Renderer) -> list[str]:
    """The digest as Telegram HTML messages, each under 4096 characters, tags never broken."""
    text = _prepare(renderer).render("digest/telegram.html", **_context(digest, renderer))
    return split_html(text, TELEGRAM_LIMIT)


def render_html(
    digest: Digest,
    renderer: Renderer,
    *,
    charts: bool = True,
    chart_cache: dict[str, bytes | None] | None = None,
) -> str:
    """A self-contained HTML file fit to print: charts embedded as base64 PNG (see
    :func:`chart_pngs` for `chart_cache`)."""
    images = {
        name: base64.b64encode(png).decode("ascii")
        for name, png in (chart_pngs(digest, chart_cache) if charts else {}).items()
    }
    return _prepare(renderer).render(
        "digest/report.html", images=images, **_context(digest, renderer)
    )


def chart_pngs(digest: Digest, cache: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """The digest's charts as PNG by name ("barriers", "response"), for the HTML file and for
    the photos sent when a round closes, so both show exactly the same charts. A chart with no
    figure at or above k is left out (see the chart functions).

    Drawing a chart costs far more than the rest of a digest, and every lead's copy of a round
    shows the same partnership-wide charts: pass one `cache` dict for all the copies and each
    distinct chart is drawn once (keyed by the figures it shows and the language it is in)."""
    cache = {} if cache is None else cache
    pngs: dict[str, bytes] = {}
    for name, draw, data in (
        ("barriers", chart_barriers, digest.barriers),
        ("response", chart_response_rates, digest.participation.dimensions),
    ):
        key = f"{name}:{i18n.current()}:{digest.k}:{data!r}"
        if key not in cache:
            cache[key] = draw(digest)
        png = cache[key]
        if png:
            pngs[name] = png
    return pngs


def render_chart_caption(digest: Digest, renderer: Renderer, name: str) -> str:
    """A chart photo's caption (Telegram HTML, well under the 1,024-character limit)."""
    return renderer.render("digest/chart_caption.html", title=_(CHART_TITLES[name]), d=digest)


def render_markdown(digest: Digest, renderer: Renderer) -> str:
    return _prepare(renderer).render("digest/report.md", **_context(digest, renderer)) + "\n"


# --------------------------------------------------------------------------- splitting

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")


def _tokens(text: str) -> Iterator[str]:
    """Tags, entities and single characters: the pieces a split may fall between."""
    pos = 0
    for m in re.finditer(r"<[^>]*>|&[#a-zA-Z0-9]+;", text):
        yield from text[pos : m.start()]
        yield m.group()
        pos = m.end()
    yield from text[pos:]


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into parts under `limit`, preferring blank lines, then line ends,
    then spaces. Tags open at a split are closed at its end and reopened in the next part."""
    parts: list[str] = []
    open_tags: list[tuple[str, str]] = []  # (name, the opening tag as written)
    current: list[str] = []
    size = 0
    # Positions in `current` where a break is nice, with the tag stack at that point.
    breaks: list[tuple[int, int, list[tuple[str, str]]]] = []  # (index, priority, stack)

    def closing(stack: list[tuple[str, str]]) -> str:
        return "".join(f"</{name}>" for name, _ in reversed(stack))

    def reopening(stack: list[tuple[str, str]]) -> str:
        return "".join(tag for _, tag in stack)

    tokens = list(_tokens(text))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        budget = limit - len(closing(open_tags)) - 1
        if size + len(tok) > budget and current:
            # Cut at the best break point so far, or right here if there is none.
            if breaks:
                best = max(breaks, key=lambda b: (b[1], b[0]))
                index, _, stack = best
            else:
                index, stack = len(current), list(open_tags)
            head = "".join(current[:index]).rstrip()
            tail = current[index:]
            parts.append(head + closing(stack))
            prefix = reopening(stack)
            current = [prefix] if prefix else []
            # Re-feed the tail so its tags are tracked against the reopened stack.
            open_tags = list(stack)
            tokens[i:i] = tail
            size = len(prefix)
            breaks = []
            # Drop leading whitespace in the new part.
            while i < len(tokens) and tokens[i] in ("\n", " "):
                i += 1
            continue
        m = _TAG.fullmatch(tok)
        if m:
            name = m.group(2).lower()
            if m.group(1):
                for j in range(len(open_tags) - 1, -1, -1):
                    if open_tags[j][0] == name:
                        del open_tags[j]
                        break
            else:
                open_tags.append((name, tok))
        current.append(tok)
        size += len(tok)
        if tok == "\n":
            blank = len(current) >= 2 and current[-2] == "\n"
            breaks.append((len(current), 3 if blank else 2, list(open_tags)))
        elif tok == " ":
            breaks.append((len(current), 1, list(open_tags)))
        i += 1
    if current:
        last = "".join(current).strip()
        if last:
            parts.append(last + closing(open_tags))
    return [p.strip() for p in parts if p.strip()]


# --------------------------------------------------------------------------- charts


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    # The object API with the Agg canvas, not pyplot: no global state, so charts can be drawn
    # in worker threads and nothing needs a display. Imported here, lazily: matplotlib doubled
    # the start-up of every `consultbot` command (--help 0.9 -> 1.7 s), and only charts need it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def chart_response_rates(digest: Digest) -> bytes | None:
    """Response rate by segment: one bar per shown segment, grouped by dimension. None when no
    segment's rate may be shown (each comes from k or more respondents): a chart of bars all
    at "fewer than k" would be drawn from fewer than k people and say nothing."""
    if not any(row.rate is not None for dim in digest.participation.dimensions for row in dim.rows):
        return None
    labels: list[str] = []
    rates: list[float] = []
    notes: list[str] = []
    for dim in digest.participation.dimensions:
        for row in dim.rows:
            labels.append(
                f"{words(dim.label)}: {segment_label(digest.segment_names, dim.key, row.label)}"
            )
            rates.append((row.rate or 0.0) * 100)
            held = _("fewer than {k}").format(k=digest.k) if row.small else _("not shown")
            shown = f"{row.rate:.0%}" if row.rate is not None else held
            notes.append(_("{share} of {invited}").format(share=shown, invited=row.invited))
    if not labels:
        return None
    fig, ax = _figure(7.5, 0.32 * len(labels) + 1.2)
    y = list(range(len(labels)))[::-1]
    ax.barh(y, rates, color="#1f5f8b")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 118)  # room for the bar labels beyond 100%
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel(_("Responded (% of people invited)"))
    for yy, rate, note in zip(y, rates, notes, strict=True):
        ax.text(rate + 1, yy, note, va="center", fontsize=7, color="#333333")
    ax.set_title(_(CHART_TITLES["response"]), fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_barriers(digest: Digest) -> bytes | None:
    """Barriers named, external against internal, as a share of respondents. Only barriers
    named by k or more people have rows, so with none there is no chart."""
    rows = digest.barriers.rows
    if not rows:
        return None
    ordered = sorted(rows, key=lambda r: (r.family != "external", -r.share))
    labels = [words(r.label) for r in ordered]
    shares = [r.share * 100 for r in ordered]
    colours = [FAMILY_COLOURS.get(r.family, "#777777") for r in ordered]
    fig, ax = _figure(7.5, 0.36 * len(rows) + 1.3)
    from matplotlib import patches  # lazily, as in _figure

    y = list(range(len(rows)))[::-1]
    ax.barh(y, shares, color=colours)
    ax.set_yticks(y, labels, fontsize=8)
    top = max(shares) * 1.25 + 5
    ax.set_xlim(0, top)  # room for the bar labels
    ax.set_xticks(range(0, int(min(top, 100)) + 1, 20))  # no ticks past 100%
    ax.set_xlabel(_("% of {base} respondents").format(base=digest.barriers.base))
    for yy, share in zip(y, shares, strict=True):
        ax.text(share + 0.8, yy, f"{share:.0f}%", va="center", fontsize=7)
    ax.legend(
        handles=[
            patches.Patch(
                color=FAMILY_COLOURS["external"], label=_("External (how public bodies work)")
            ),
            patches.Patch(
                color=FAMILY_COLOURS["internal"], label=_("Internal (the group's own means)")
            ),
        ],
        fontsize=7,
        # Below the axis, side by side: a legend over the bars hid a bar's share, and its
        # words are longer in some languages than in others.
        loc="upper left",
        bbox_to_anchor=(0.0, -0.16 - 0.6 / (len(rows) + 3)),
        ncol=2,
        frameon=False,
    )
    ax.set_title(_(CHART_TITLES["barriers"]), fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


# --------------------------------------------------------------------------- files


def write_digest(
    digest: Digest,
    renderer: Renderer,
    fmt: str,
    path: Path,
    *,
    session: Session | None = None,
    settings: Settings | None = None,
    scope: Scope | None = None,
    codebook: Codebook | None = None,
) -> Path:
    """Write one format to `path` (csv needs session, settings, scope and codebook to stream
    answers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A digest quotes people and names organisations: for the owner's eyes only.
    path.touch(mode=0o600)
    path.chmod(0o600)
    if fmt == "html":
        path.write_text(render_html(digest, renderer), encoding="utf-8")
    elif fmt == "md":
        path.write_text(render_markdown(digest, renderer), encoding="utf-8")
    elif fmt == "tg":
        path.write_text("\n\n-----\n\n".join(render_telegram(digest, renderer)) + "\n", "utf-8")
    elif fmt == "csv":
        if session is None or settings is None or scope is None or codebook is None:
            raise ValueError("the CSV needs a session, settings, scope and codebook")
        with path.open("w", encoding="utf-8", newline="") as out:
            result = write_csv(session, settings.privacy.k, scope, codebook, out)
        for round_id, why in result.left_out.items():
            log.warning("round %s left out of %s: %s", round_id, path.name, why)
    else:
        raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    return path
