"""The results folder: results.json (the leaderboard's contract) beside the per-item table."""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, read_regular_file, resolve_inside, write_json
from lusebench.schema import KINDS, MAX_RESULTS_JSON_BYTES, Fields, load_json, parse_system

# 2 added the ``tracks`` block (thresholds of the joint score) and the metrics of
# lusebench/benchmark/tracks.py; version 1 files still load (they lack those keys).
SCHEMA_VERSION = 2
RESULTS_FILE = "results.json"
ITEMS_FILE = "items.csv"
FIGURES_DIR = "figures"
# Everything evaluate writes into a results folder; a folder holding anything else is not replaced.
RESULTS_ENTRIES = (RESULTS_FILE, ITEMS_FILE, FIGURES_DIR)


@dataclass(frozen=True)
class Results:
    """What ``evaluate`` produces.

    Attributes:
        summary: the content of results.json.
        items: one row per mixture, in manifest order.
        folder: where they were written.
    """

    summary: dict
    items: pd.DataFrame
    folder: Path

    @property
    def name(self) -> str:
        return str(self.summary["system"]["name"])


def write_results(folder: Path, summary: dict, items: pd.DataFrame) -> Results:
    """Write items.csv, then results.json (each atomically), so a results.json always has its table."""
    folder = Path(folder)
    atomic_write(folder / ITEMS_FILE, lambda tmp: items.to_csv(tmp, index=False, float_format="%.6g"))
    write_json(folder / RESULTS_FILE, {**summary, "items": ITEMS_FILE})
    return Results(summary=summary, items=items, folder=folder)


# The by-separation figures' cells; the scatter reads these item columns.
_FIGURE_KEYS = ("si_snri_db", "doa_mae_deg")
_FIGURE_COLUMNS = ("si_snri_db", "doa_error_deg")
MAX_ITEMS_BYTES = 256 << 20
_MAX_BINS = 64


def _check_figure_metrics(summary: dict, fields: Fields) -> None:
    """What draw_figures reads of results.json: the separation bins and the cells of each bin."""
    metrics = fields.take(summary, "results", "metrics", "an object")
    by_separation = fields.take(metrics, "metrics", "by_separation", "an object")
    if by_separation is None:
        return
    edges = by_separation.get("bins_deg")
    if not (isinstance(edges, list) and 2 <= len(edges) <= _MAX_BINS and all(KINDS["a finite number"](e) for e in edges)
            and all(a < b for a, b in zip(edges, edges[1:]))):
        fields.problems.append(f"metrics.by_separation.bins_deg should be 2 to {_MAX_BINS} increasing finite numbers")
        return
    for key in _FIGURE_KEYS:
        cells = by_separation.get(key)
        if cells is None:
            continue
        where = f"metrics.by_separation.{key}"
        if not isinstance(cells, list) or len(cells) != len(edges) - 1:
            fields.problems.append(f"{where} should be a list of {len(edges) - 1} cells, one per bin")
            continue
        for index, cell in enumerate(cells):
            if not isinstance(cell, dict):
                fields.problems.append(f"{where}[{index}] should be an object")
                continue
            for name in ("mean", "ci95", "ci95_low", "ci95_high"):
                fields.take(cell, f"{where}[{index}]", name, "a finite number", nullable=True, default=None)


def _gunzip(packed: bytes, name: Path) -> bytes:
    """A gzipped item table's bytes, refused past MAX_ITEMS_BYTES as it is unpacked (a small file
    may unpack to gigabytes)."""
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        payload = unpacker.decompress(packed, MAX_ITEMS_BYTES + 1)
    except zlib.error as error:
        raise LusebenchError(f"cannot read the item table {name}: {error}") from None
    if len(payload) > MAX_ITEMS_BYTES or unpacker.unconsumed_tail:
        raise LusebenchError(f"{name} unpacks to more than {MAX_ITEMS_BYTES} bytes")
    return payload


def load_results(path: Path) -> Results:
    """Read a results folder (or its results.json) written by ``lusebench evaluate``, checked.

    results.json is read through the schema's bounded decoder and checked for what the figures
    read (the system, the separation bins and their cells); its item table must lie beside it,
    as ``items.csv`` or gzipped as ``items.csv.gz`` (the committed entries hold it so).

    Raises:
        LusebenchError: one line naming the file when results.json or its item table is missing,
            unreadable or malformed, lies outside the folder, or the schema is newer than this
            lusebench.
    """
    path = Path(path)
    file = path if path.suffix == ".json" else path / RESULTS_FILE
    if not (file.exists() or file.is_symlink()):
        raise LusebenchError(f"no {RESULTS_FILE} at {path}")
    summary = load_json(file, MAX_RESULTS_JSON_BYTES)
    if not isinstance(summary, dict):
        raise LusebenchError(f"malformed results file {file}: the top level should be a JSON object")
    version = summary.get("schema_version")
    if not KINDS["a positive integer"](version):
        raise LusebenchError(f"malformed results file {file}: schema_version should be a positive integer, not {json.dumps(version)[:40]}")
    if version > SCHEMA_VERSION:
        raise LusebenchError(f"{file} has schema_version {version}; this lusebench reads up to {SCHEMA_VERSION}")
    fields = Fields()
    parse_system(fields.take(summary, "results", "system", "an object"), "system", fields)
    items_name = fields.take(summary, "results", "items", "a non-empty string", default=ITEMS_FILE)
    _check_figure_metrics(summary, fields)
    if fields.problems:
        raise LusebenchError(f"malformed results file {file}: " + "; ".join(fields.problems))
    items_file = resolve_inside(file.parent, items_name, f"{file}: items")
    packed = items_file.with_name(items_file.name + ".gz")
    if not (items_file.exists() or items_file.is_symlink()) and packed.is_file() and not packed.is_symlink():
        items_file = packed
        payload = _gunzip(read_regular_file(packed, follow_symlinks=False, max_bytes=MAX_ITEMS_BYTES), packed)
    else:
        payload = read_regular_file(items_file, max_bytes=MAX_ITEMS_BYTES)
    try:
        items = pd.read_csv(io.BytesIO(payload), dtype={"mixture_id": str})
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        raise LusebenchError(f"cannot read the item table {items_file}: {str(error).splitlines()[0][:200]}") from None
    for column in _FIGURE_COLUMNS:
        if column in items.columns and not pd.api.types.is_numeric_dtype(items[column]):
            raise LusebenchError(f"{items_file}: column {column} should hold numbers")
    return Results(summary=summary, items=items, folder=file.parent)
