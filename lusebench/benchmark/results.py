"""The results folder: results.json (the leaderboard's contract) beside the per-item table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, write_json

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


def load_results(path: Path) -> Results:
    """Read a results folder (or its results.json) written by ``lusebench evaluate``.

    Raises:
        LusebenchError: when results.json or its item table is missing or unreadable, or the
            schema is newer than this lusebench.
    """
    path = Path(path)
    file = path if path.suffix == ".json" else path / RESULTS_FILE
    try:
        summary = json.loads(file.read_text())
    except FileNotFoundError:
        raise LusebenchError(f"no {RESULTS_FILE} at {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise LusebenchError(f"cannot read {file}: {error}") from None
    if int(summary.get("schema_version", 0)) > SCHEMA_VERSION:
        raise LusebenchError(f"{file} has schema_version {summary['schema_version']}; this lusebench reads up to {SCHEMA_VERSION}")
    items_file = file.parent / summary.get("items", ITEMS_FILE)
    try:
        items = pd.read_csv(items_file, dtype={"mixture_id": str})
    except (OSError, ValueError) as error:
        raise LusebenchError(f"cannot read the item table {items_file}: {error}") from None
    return Results(summary=summary, items=items, folder=file.parent)
