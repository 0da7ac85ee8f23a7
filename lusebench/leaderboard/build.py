"""``lusebench leaderboard``: results files in, ``leaderboard.md`` and ``index.html`` out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lusebench.io import atomic_write
from lusebench.leaderboard.paper import load_paper_table
from lusebench.leaderboard.render import render_html, render_markdown
from lusebench.leaderboard.results import RESULTS_FILENAME, find_results, load_results
from lusebench.leaderboard.tables import Table, build_tables

logger = logging.getLogger(__name__)

# The committed entries ship inside the package (the repository's leaderboard/entries is a link
# to them), so a plain `pip install` shows them as a clone does.
DEFAULT_ENTRIES = Path(str(resources.files("lusebench").joinpath("leaderboard", "entries")))


def _default_entries() -> list[Path]:
    found = sorted(DEFAULT_ENTRIES.rglob(RESULTS_FILENAME)) if DEFAULT_ENTRIES.is_dir() else []
    if not found:
        logger.info("no results given and none in %s: showing the paper's Table 1 only", DEFAULT_ENTRIES)
    return found


@dataclass(frozen=True)
class Leaderboard:
    """What :func:`build_leaderboard` wrote and the tables it shows."""

    markdown: Path
    html: Path
    tables: tuple[Table, ...]


def build_leaderboard(results: Sequence[Path], out_dir: Path, *, include_paper: bool = True) -> Leaderboard:
    """Check every results file, rank them per test set and source count, write Markdown and HTML.

    Args:
        results: ``results.json`` files or folders searched recursively for them; empty means
            the committed entries shipped in the package (``DEFAULT_ENTRIES``) (paper tables only when that is absent).
        out_dir: folder that receives ``leaderboard.md`` and ``index.html``; created if needed.
        include_paper: show the paper's Table 1 beside the measured tables.

    Raises:
        LusebenchError: a path is missing, or a results file is malformed or of an unknown
            schema version (nothing is written then).
    """
    paths = find_results(results) if results else _default_entries()
    entries = [load_results(path) for path in paths]
    tables = build_tables(entries, load_paper_table() if include_paper else None)
    out_dir = Path(out_dir)
    markdown_path, html_path = out_dir / "leaderboard.md", out_dir / "index.html"
    markdown = render_markdown(tables, out_dir.resolve())
    page = render_html(tables)
    for path, text in ((markdown_path, markdown), (html_path, page)):
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    logger.info("%d results files -> %d tables in %s and %s", len(entries), len(tables), markdown_path, html_path)
    return Leaderboard(markdown=markdown_path, html=html_path, tables=tables)
