"""``lusebench leaderboard``: results files in, ``leaderboard.md`` and ``index.html`` out."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lusebench.benchmark.results import FIGURES_DIR
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, read_regular_file, replace_folder
from lusebench.leaderboard.paper import load_paper_table
from lusebench.leaderboard.render import render_html, render_markdown
from lusebench.leaderboard.results import RESULTS_FILENAME, ResultsFile, find_results, load_results
from lusebench.leaderboard.tables import UNSEEN_HEAD_TWINS, Table, build_tables

logger = logging.getLogger(__name__)

# The committed entries ship inside the package (the repository's leaderboard/entries is a link
# to them), so a plain `pip install` shows them as a clone does.
DEFAULT_ENTRIES = Path(str(resources.files("lusebench").joinpath("leaderboard", "entries")))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARKDOWN_FILE, HTML_FILE = "leaderboard.md", "index.html"
_MAX_FIGURE_BYTES = 16 << 20
# A figure's file name becomes part of a URL and a Markdown link: keep it to plain characters.
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def entry_or_path(path: Path) -> Path:
    """``path``, or the committed entry of that name when no such path exists here
    (``lusebench figures debcaps/small-luseel-2src MY/results``); a name is plain folder names
    joined by ``/``, never ``..`` or an absolute path."""
    path = Path(path)
    plain = not path.is_absolute() and all(_UNSAFE_NAME.search(part) is None and part not in (".", "..") for part in path.parts)
    if not path.exists() and plain and (DEFAULT_ENTRIES / path).is_dir():
        return DEFAULT_ENTRIES / path
    return path


def _default_entries() -> list[Path]:
    found = sorted(DEFAULT_ENTRIES.rglob(RESULTS_FILENAME)) if DEFAULT_ENTRIES.is_dir() else []
    if not found:
        logger.info("no results given and none in %s: showing the paper's Table 1 only", DEFAULT_ENTRIES)
    return found


def _entry_key(results: ResultsFile) -> str:
    # Stable across builds and distinct per results file, whatever its folder is called.
    return hashlib.sha256(str(results.path.resolve()).encode()).hexdigest()[:16]


def publish_figures(entries: Sequence[ResultsFile], out_dir: Path) -> dict[Path, tuple[str, ...]]:
    """Copy each entry's figures to ``out_dir/figures/<entry>/`` and return their URLs, relative to ``out_dir``.

    Only regular PNG files (checked by their signature, at most 16 MiB, never through a symlink)
    are copied; anything else in an entry's ``figures/`` is skipped with a warning.
    """
    published: dict[Path, tuple[str, ...]] = {}
    for results in entries:
        urls = []
        for figure in results.figures:
            try:
                payload = read_regular_file(figure, follow_symlinks=False, max_bytes=_MAX_FIGURE_BYTES)
            except LusebenchError as error:
                logger.warning("figure skipped: %s", error)
                continue
            if not payload.startswith(_PNG_SIGNATURE):
                logger.warning("figure skipped: %s is not a PNG file", figure)
                continue
            url = f"{FIGURES_DIR}/{_entry_key(results)}/{_UNSAFE_NAME.sub('_', figure.stem)}.png"
            atomic_write(out_dir / url, lambda tmp, payload=payload: tmp.write_bytes(payload))
            urls.append(url)
        published[results.path] = tuple(urls)
    return published


def _say_when_sets_differ(tables: Sequence[Table]) -> None:
    # Tables are per fingerprint, so different sets are never ranked together; but results a user
    # meant to compare may land in tables of their own, which only the title's fingerprint shows.
    sets: dict[tuple[int, str | None], set[str]] = {}
    for table in tables:
        # An unseen-head twin is meant to be another set: its figures are shown beside its seen set's.
        if table.fingerprint is not None and table.fingerprint not in UNSEEN_HEAD_TWINS.values():
            sets.setdefault((table.num_sources, table.condition), set()).add(table.fingerprint)
    for (count, condition), fingerprints in sets.items():
        if len(fingerprints) > 1:
            logger.warning(
                "results of %d different %s test sets with %d sources (fingerprints %s): ranked in separate tables, "
                "never together", len(fingerprints), condition, count, ", ".join(sorted(f[:12] for f in fingerprints)),
            )


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
        out_dir: folder that receives ``leaderboard.md``, ``index.html`` and ``figures/``; created
            if needed, replaced whole (a folder holding other files is refused).
        include_paper: show the paper's Table 1 beside the measured tables.

    Raises:
        LusebenchError: a path is missing, a results file is malformed or of an unknown
            schema version, or ``out_dir`` cannot be written (nothing is written then).
    """
    paths = find_results([entry_or_path(path) for path in results]) if results else _default_entries()
    entries = [load_results(path) for path in paths]
    tables = build_tables(entries, load_paper_table() if include_paper else None)
    _say_when_sets_differ(tables)
    out_dir = Path(out_dir)
    markdown_path, html_path = out_dir / MARKDOWN_FILE, out_dir / HTML_FILE
    # Written beside ``out_dir`` and renamed into place whole: no page points at figures of another build.
    with replace_folder(out_dir, owned=(MARKDOWN_FILE, HTML_FILE, FIGURES_DIR)) as staging:
        figures = publish_figures(entries, staging)
        markdown = render_markdown(tables, figures)
        page = render_html(tables, figures)
        for name, text in ((MARKDOWN_FILE, markdown), (HTML_FILE, page)):
            atomic_write(staging / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    logger.info("%d results files -> %d tables in %s and %s", len(entries), len(tables), markdown_path, html_path)
    return Leaderboard(markdown=markdown_path, html=html_path, tables=tables)
