"""Render leaderboard tables as Markdown and as one static HTML page.

The page loads nothing from elsewhere: CSS and the sorting script are inline, and figures are
PNG files in ``figures/`` beside the page, loaded lazily (only when a provenance cell is opened),
so the page stays small with thousands of entries and opens offline from a file or any host.
Everything from a results file is a stranger's text: it is escaped in HTML and in Markdown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lusebench import __version__
from lusebench.leaderboard.results import ResultsFile, Stat
from lusebench.leaderboard.tables import (
    CLIPS_NOTE, DECIMALS, RANK_RULE, SUBSET_NOTE, TRACKS_NOTE, UNSEEN_HEAD_NOTE, Column, Row, Table,
)

_NOT_APPLICABLE = "-"  # the paper's mark for a task a system does not do


def _tasks_label(tasks: Sequence[str]) -> str:
    return "Both" if len(set(tasks)) > 1 else tasks[0].capitalize()


def format_fixed(value: float, decimals: int = DECIMALS) -> str:
    """``value`` with ``decimals`` decimals, never "-0.0": a value that rounds to zero has no sign."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def _interval_text(mean: float, low: float, high: float) -> str:
    """``± h`` for a symmetric interval at the shown precision, else ``[low, high]``."""
    half = (high - low) / 2
    if format_fixed(mean - half) == format_fixed(low) and format_fixed(mean + half) == format_fixed(high):
        return f"± {format_fixed(half)}"
    return f"[{format_fixed(low)}, {format_fixed(high)}]"


def _stat_text(stat: Stat) -> str:
    if stat.ci95 is None:
        return format_fixed(stat.mean)
    if stat.low is not None and stat.high is not None:
        text = f"{format_fixed(stat.mean)} {_interval_text(stat.mean, stat.low, stat.high)}"
    else:
        text = f"{format_fixed(stat.mean)} ± {format_fixed(stat.ci95)}"
    if stat.clips_low is not None and stat.clips_high is not None:
        text += f" (clips {_interval_text(stat.mean, stat.clips_low, stat.clips_high)})"
    return text


def _gcc_phat_label(gcc_phat: bool | None) -> str:
    return "?" if gcc_phat is None else "✓" if gcc_phat else "✗"


def _rank_label(table: Table) -> str:
    return "Sys. #" if table.reported_in_paper else "Rank"


def _rank(table: Table, index: int, row: Row) -> int:
    return row.system_number if row.system_number is not None else index + 1


# Characters a URL may hold without ending a Markdown link or an HTML attribute early.
_LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&'*+,;=%]+")

FigureUrls = Mapping[Path, Sequence[str]]  # results file -> URLs of its figures, relative to the page


def _safe_link(link: str | None) -> str | None:
    # A link comes from a stranger's system.json: only plain web links become clickable.
    return link if link and _LINK.fullmatch(link) else None


# ---------------------------------------------------------------- Markdown


# Markdown renders inline HTML: a system named <img src=x onerror=...> ran script when the table
# was viewed. Entities keep such text literal; backslashes keep Markdown's own marks literal.
_MD_MARKS = re.compile(r"([\\`*_\[\]|#~])")


def _md_cell(text: object) -> str:
    # Marks first: the entities html.escape writes (&#x27;) hold a "#" that must stay bare.
    marked = _MD_MARKS.sub(r"\\\1", " ".join(str(text).split()))
    return html.escape(marked, quote=True)


def _md_provenance(index: int, system: str, results: ResultsFile, figures: Sequence[str]) -> str:
    commit = f", commit {_md_cell(results.git_commit[:12])}" if results.git_commit else ""
    link = _safe_link(results.system.link)
    shown = ", ".join(f"[{_md_cell(Path(url).stem)}]({url})" for url in figures)
    return (
        f"{index}. **{_md_cell(system)}**: lusebench {_md_cell(results.lusebench_version)}{commit}, "
        f"test set `{results.dataset.fingerprint}`, scored {results.created_utc:%Y-%m-%d}"
        + (f", [link]({link})" if link else "")
        + (f"; figures: {shown}" if shown else "")
    )


def render_markdown(tables: Sequence[Table], figures: FigureUrls) -> str:
    """Markdown with one pipe table per test set and source count; best values in bold.

    Args:
        tables: as built by :func:`lusebench.leaderboard.tables.build_tables`.
        figures: the figure URLs of each results file, relative to the Markdown file.
    """
    lines = [
        "# lusebench leaderboard",
        "",
        f"Built by lusebench {__version__}. Tables marked as reported in the paper copy the paper's Table 1;",
        "they were not measured by lusebench and are never ranked with measured rows. Values are mean ± 95% CI;",
        "SDRi is plain SDR; Accuracy is the share of DoA errors within 5 deg.",
        TRACKS_NOTE,
        UNSEEN_HEAD_NOTE,
        f"{RANK_RULE} An interval in brackets is asymmetric: a share's (Wilson) or one cut by the metric's range.",
        CLIPS_NOTE,
    ]
    for table in tables:
        headers = ["System", "Tasks", "GCC-PHAT", "Channels"] + [f"{c.label} ({c.unit})" for c in table.columns]
        lines += ["", f"## {_md_cell(table.title)}", ""]
        if table.reported_in_paper:
            lines += [f"*{_md_cell(table.reported_in_paper)}*", ""]
        else:
            lines += [f"Test set fingerprint `{table.fingerprint}`.", ""]
            lines += [SUBSET_NOTE, ""] if table.coverage else []
        lines.append("| " + " | ".join([_rank_label(table), *headers]) + " |")
        lines.append("|" + "---:|" + "---|" * 4 + "---:|" * len(table.columns))
        for index, row in enumerate(table.rows):
            cells = [
                str(_rank(table, index, row)),
                _md_cell(row.system),
                _tasks_label(row.tasks),
                _gcc_phat_label(row.gcc_phat),
                str(row.channels),
            ]
            for column in table.columns:
                stat = row.values.get(column.key)
                text = _NOT_APPLICABLE if stat is None else _stat_text(stat)
                cells.append(f"**{text}**" if table.is_best(row, column) else text)
            lines.append("| " + " | ".join(cells) + " |")
        if not table.reported_in_paper:
            lines += ["", "Provenance:", ""]
            lines += [
                _md_provenance(i + 1, row.system, row.results, figures.get(row.results.path, ()))
                for i, row in enumerate(table.rows)
                if row.results is not None
            ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 2rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { cursor: pointer; user-select: none; text-align: left; background: #f4f4f4; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: bold; background: #e8f5e9; }
section.paper { border-left: 4px solid #b0bec5; padding-left: 1rem; }
p.paper-label { font-style: italic; color: #555; }
img.figure { max-width: 32rem; display: block; margin: 0.5rem 0; }
"""

# Sort a table by the clicked header: numbers by value, text alphabetically; a blank cell
# ("-", not applicable) always sorts last. Each click flips the direction.
_SCRIPT = """
document.querySelectorAll("table.leaderboard th[data-sort-type]").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], index = th.cellIndex;
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var numeric = th.dataset.sortType === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _td(text: str, sort: str | float, classes: str = "") -> str:
    cls = f' class="{classes}"' if classes else ""
    return f'<td{cls} data-sort="{_e(sort)}">{text}</td>'


def _html_provenance(row: Row, figures: FigureUrls) -> str:
    results = row.results
    if results is None:
        return _td("paper, Table 1", "")
    link = _safe_link(results.system.link)
    parts = [
        f"lusebench {_e(results.lusebench_version)}",
        f"commit <code>{_e(results.git_commit[:12])}</code>" if results.git_commit else "commit unknown",
        f"test set <code>{_e(results.dataset.fingerprint)}</code>",
        f"{_e(results.dataset.num_items)} items",
        f'<a href="{_e(link)}">{_e(link)}</a>' if link else "",
        _e(results.system.description),
    ]
    # loading="lazy": a closed <details> loads none of its figures.
    images = "".join(
        f'<a href="{_e(url)}"><img class="figure" loading="lazy" alt="{_e(Path(url).stem)}" src="{_e(url)}"></a>'
        for url in figures.get(results.path, ())
    )
    summary = f"{results.created_utc:%Y-%m-%d}"
    body = "<br>".join(part for part in parts if part) + images
    return _td(f"<details><summary>{summary}</summary>{body}</details>", results.created_utc.isoformat())


def _html_table(table: Table, figures: FigureUrls) -> str:
    headers = [(_rank_label(table), "number"), ("System", "text"), ("Tasks", "text"), ("GCC-PHAT", "text")]
    headers += [("Channels", "number")] + [(f"{c.label} ({c.unit})", "number") for c in table.columns]
    headers.append(("Provenance", "text"))
    head = "".join(f'<th data-sort-type="{kind}" scope="col">{_e(label)}</th>' for label, kind in headers)
    body = []
    for index, row in enumerate(table.rows):
        rank = _rank(table, index, row)
        cells = [
            _td(str(rank), rank, "num"),
            _td(_e(row.system), row.system),
            _td(_tasks_label(row.tasks), _tasks_label(row.tasks)),
            _td(_gcc_phat_label(row.gcc_phat), "" if row.gcc_phat is None else str(row.gcc_phat).lower()),
            _td(str(row.channels), row.channels, "num"),
        ]
        for column in table.columns:
            cells.append(_metric_cell(table, row, column))
        cells.append(_html_provenance(row, figures))
        body.append("<tr>" + "".join(cells) + "</tr>")
    if table.reported_in_paper:
        caption = f'<p class="paper-label">{_e(table.reported_in_paper)}</p>'
    else:
        caption = f"<p>Test set fingerprint <code>{_e(table.fingerprint)}</code></p>"
        caption += f"<p>{_e(SUBSET_NOTE)}</p>" if table.coverage else ""
    kind = "paper" if table.reported_in_paper else "measured"
    return (
        f'<section class="{kind}"><h2>{_e(table.title)}</h2>{caption}'
        f'<table class="leaderboard {kind}" data-num-sources="{table.num_sources}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></section>"
    )


def _metric_cell(table: Table, row: Row, column: Column) -> str:
    stat = row.values.get(column.key)
    if stat is None:
        return _td(_NOT_APPLICABLE, "", "num")
    classes = "num best" if table.is_best(row, column) else "num"
    return _td(_e(_stat_text(stat)), repr(stat.mean), classes)


def render_html(tables: Sequence[Table], figures: FigureUrls) -> str:
    """One HTML page: every table, sortable by clicking a header, best values marked.

    Args:
        tables: as built by :func:`lusebench.leaderboard.tables.build_tables`.
        figures: the figure URLs of each results file, relative to the page.
    """
    sections = "\n".join(_html_table(table, figures) for table in tables)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lusebench leaderboard</title>
<style>{_CSS}</style>
</head>
<body>
<h1>lusebench leaderboard</h1>
<p>Language-queried binaural sound event extraction and localization. Built by lusebench {_e(__version__)}.
Values are mean ± 95% confidence interval; SDRi is plain SDR; Accuracy is the share of DoA errors within 5°.
Tables marked <em>reported in the paper</em> copy the LuSeeL paper's Table 1: they were not measured by
lusebench and are never ranked with measured rows. Systems scored on different test sets are in different
tables. {_e(RANK_RULE)} An interval in brackets is asymmetric: a share's (Wilson) or one cut by the
metric's range. {_e(TRACKS_NOTE)} {_e(UNSEEN_HEAD_NOTE)} {_e(CLIPS_NOTE)} Click a column header to sort; best values are in bold.</p>
{sections}
<script>{_SCRIPT}</script>
</body>
</html>
"""
