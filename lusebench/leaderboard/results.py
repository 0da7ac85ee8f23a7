"""Read and check the ``results.json`` files that ``lusebench evaluate`` writes (schema versions 1 and 2).

The leaderboard trusts nothing it reads: every field it shows is type-checked here, and every
problem in a file is reported in one line before the file is rejected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lusebench import __version__
from lusebench.benchmark.metrics import METRICS
from lusebench.benchmark.results import FIGURES_DIR, SCHEMA_VERSION
from lusebench.errors import LusebenchError
from lusebench.schema import MAX_RESULTS_JSON_BYTES, SHA256_HEX, TASKS, Fields, SystemInfo, load_json, parse_system

logger = logging.getLogger(__name__)

# Version 2 only added keys (lusebench/benchmark/tracks.py): a version 1 file reads as one without them.
SCHEMA_VERSIONS = tuple(range(1, SCHEMA_VERSION + 1))
RESULTS_FILENAME = "results.json"
# The columns of the paper's Table 1 that each task must fill; other metric keys are ignored here.
TASK_METRICS: Mapping[str, tuple[str, ...]] = {
    "extraction": ("si_snri_db", "sdri_db"),
    "localization": ("doa_accuracy_pct", "doa_mae_deg"),
}
# The tracks' columns (docs/submission-format.md), read where a file has them: older files, one-task
# systems and sets without absent-target items lack some, and their cells stay empty.
TRACK_METRICS: tuple[str, ...] = (
    "joint_success_pct",
    "doa_front_back_pct",
    "doa_mae_resolved_deg",
    "level_error_db",
    "absent_level_db",
    "absent_detected_pct",
    "false_absent_pct",
)


@dataclass(frozen=True)
class Stat:
    """One aggregated metric: mean over items, its 95% interval, item count.

    ``ci95`` is half the interval's width; ``low``/``high`` its ends, None in results files
    written before intervals could be asymmetric (there: mean -/+ ci95). ``clips_low``/``clips_high``
    bound the interval over target clips (lusebench/benchmark/aggregate.py), of ``clips`` clips;
    None in files written before it existed or for a set that does not name its clips.
    """

    mean: float
    ci95: float | None = None
    n: int | None = None
    low: float | None = None
    high: float | None = None
    clips_low: float | None = None
    clips_high: float | None = None
    clips: int | None = None


@dataclass(frozen=True)
class Coverage:
    """How much of a fixed AudioCaps set a result was scored on: ``recipes`` of the set's ``of``."""

    recipe_set: str
    recipes: int
    of: int

    @property
    def text(self) -> str:
        return f"{self.recipes:,} of {self.of:,} recipes of {self.recipe_set}"


@dataclass(frozen=True)
class DatasetInfo:
    """The test set a results file was scored on; ``fingerprint`` tells test sets apart.

    ``coverage`` is set for a fixed AudioCaps set (rendered from a user's copy); None otherwise.
    """

    path: str
    fingerprint: str
    split: str
    num_items: int
    num_sources: tuple[int, ...]
    condition: str
    sample_rate: int
    coverage: Coverage | None = None


@dataclass(frozen=True)
class ResultsFile:
    """A checked ``results.json``: provenance, test set, system and the Table 1 metrics.

    ``metrics`` maps a source count to the metrics (key -> Stat) of the system's tasks only.
    ``figures`` are the PNG files in the ``figures/`` folder beside the file, sorted by name.
    """

    path: Path
    lusebench_version: str
    git_commit: str | None
    created_utc: datetime
    dataset: DatasetInfo
    system: SystemInfo
    metrics: Mapping[int, Mapping[str, Stat]]
    figures: tuple[Path, ...] = ()


class _Fields(Fields):
    """The schema's field reader, plus the metric blocks only results.json has."""

    def stat(self, block: Mapping[str, Any] | None, where: str, key: str) -> Stat | None:
        """The metric, or ``None`` when it is malformed (reported) or has no scored item (``mean: null``)."""
        entry = self.take(block, where, key, "an object")
        if entry is None:
            return None
        # The evaluator writes mean null for a metric no item could be scored on (n = 0).
        mean = self.take(entry, f"{where}.{key}", "mean", "a finite number", nullable=True)
        ci95 = self.take(entry, f"{where}.{key}", "ci95", "a finite number", nullable=True)
        n = self.take(entry, f"{where}.{key}", "n", "a non-negative integer")
        # The interval's ends arrived with bounded intervals (Wilson), the by-clip interval later;
        # older files lack them.
        ends = [
            self.take(entry, f"{where}.{key}", end, "a finite number", nullable=True) if end in entry else None
            for end in ("ci95_low", "ci95_high", "ci95_clips_low", "ci95_clips_high")
        ]
        clips = self.take(entry, f"{where}.{key}", "clips", "a non-negative integer") if "clips" in entry else None
        if mean is None or n is None:
            return None
        low, high, clips_low, clips_high = (None if end is None else float(end) for end in ends)
        return Stat(mean=float(mean), ci95=None if ci95 is None else float(ci95), n=n, low=low, high=high,
                    clips_low=clips_low, clips_high=clips_high, clips=clips)


def _covers(tasks: tuple[str, ...], key: str) -> bool:
    """Whether a system of ``tasks`` can have the metric ``key`` (a joint metric needs both tasks)."""
    task = METRICS[key].task
    return set(TASKS) <= set(tasks) if task == "both" else task in tasks


def _parse_utc(text: str | None, fields: _Fields) -> datetime | None:
    if text is None:
        return None
    try:
        # Python 3.10's fromisoformat does not read the "Z" suffix the contract uses.
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fields.problems.append(f"created_utc is not an ISO 8601 time: {text!r}")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_results(data: Any, path: Path) -> ResultsFile:
    """Check the decoded JSON of one results file against schema version 1 or 2.

    Args:
        data: the decoded JSON document.
        path: where it was read from; named in errors and used to find ``figures/``.

    Raises:
        LusebenchError: one line naming the file: an unknown ``schema_version``, or every
            missing or mistyped field the leaderboard needs.
    """
    if not isinstance(data, dict):
        raise LusebenchError(f"malformed results file {path}: the top level should be a JSON object")
    version = data.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        shown = "no schema_version" if "schema_version" not in data else f"schema_version {json.dumps(version)}"
        raise LusebenchError(
            f"unknown results format in {path}: {shown} (lusebench {__version__} reads schema_version "
            f"{' and '.join(map(str, SCHEMA_VERSIONS))}; upgrade lusebench or re-run `lusebench evaluate`)"
        )
    fields = _Fields()
    lusebench_version = fields.take(data, "results", "lusebench_version", "a non-empty string")
    git_commit = fields.take(data, "results", "git_commit", "a string", nullable=True)
    created_utc = _parse_utc(fields.take(data, "results", "created_utc", "a string"), fields)

    dataset_block = fields.take(data, "results", "dataset", "an object")
    fingerprint = fields.take(dataset_block, "dataset", "fingerprint", "a string")
    if fingerprint is not None and not SHA256_HEX.fullmatch(fingerprint):
        fields.problems.append(f"dataset.fingerprint should be 64 lowercase hex digits, not {fingerprint[:70]!r}")
    dataset_values = {
        "path": fields.take(dataset_block, "dataset", "path", "a string"),
        "split": fields.take(dataset_block, "dataset", "split", "a non-empty string"),
        "num_items": fields.take(dataset_block, "dataset", "num_items", "a positive integer"),
        "num_sources": fields.take(dataset_block, "dataset", "num_sources", "a non-empty list of positive integers"),
        "condition": fields.take(dataset_block, "dataset", "condition", "a non-empty string"),
        "sample_rate": fields.take(dataset_block, "dataset", "sample_rate", "a positive integer"),
    }

    coverage = _coverage(dataset_block, dataset_values["num_items"], fields)

    # The system block is system.json as evaluate checked it: the same schema checks it here.
    system_block = fields.take(data, "results", "system", "an object")
    system = parse_system(system_block, "system", fields)
    # A system block with another mistake still names its tasks: check their metrics too, so
    # that every problem of the file is reported at once.
    claimed = system_block.get("tasks") if system_block is not None else None
    tasks = system.tasks if system is not None else tuple(t for t in TASKS if isinstance(claimed, list) and t in claimed)

    metrics_block = fields.take(data, "results", "metrics", "an object")
    overall = fields.take(metrics_block, "metrics", "overall", "an object")
    by_num_sources = fields.take(metrics_block, "metrics", "by_num_sources", "an object")
    metrics: dict[int, dict[str, Stat]] = {}
    num_sources = dataset_values["num_sources"] or []
    metric_keys = [key for task in TASK_METRICS if task in tasks for key in TASK_METRICS[task]]
    for count in num_sources:
        block, where = (by_num_sources or {}).get(str(count)), f"metrics.by_num_sources.{count}"
        if block is None and len(num_sources) == 1:
            # A test set of one source count: its overall figures are that count's figures.
            block, where = overall, "metrics.overall"
        if block is None:
            fields.problems.append(f"{where} is missing but dataset.num_sources lists {count}")
            continue
        if not isinstance(block, dict):
            fields.problems.append(f"{where} should be an object")
            continue
        stats = {key: fields.stat(block, where, key) for key in metric_keys}
        stats.update({key: fields.stat(block, where, key) for key in TRACK_METRICS if key in block and _covers(tasks, key)})
        metrics[count] = {key: stat for key, stat in stats.items() if stat is not None}

    if fields.problems:
        raise LusebenchError(f"malformed results file {path}: " + "; ".join(fields.problems))
    return ResultsFile(
        path=path,
        lusebench_version=lusebench_version,
        git_commit=git_commit,
        created_utc=created_utc,
        dataset=DatasetInfo(fingerprint=fingerprint, coverage=coverage,
                            **{**dataset_values, "num_sources": tuple(num_sources)}),
        system=system,
        metrics=metrics,
        figures=_own_figures(path.parent),
    )


def _coverage(dataset_block: Mapping[str, Any] | None, num_items: int | None, fields: _Fields) -> Coverage | None:
    """The optional ``dataset.coverage`` block (fixed AudioCaps sets); None when absent or malformed (reported)."""
    if dataset_block is None or "coverage" not in dataset_block:
        return None
    block = fields.take(dataset_block, "dataset", "coverage", "an object")
    values = [fields.take(block, "dataset.coverage", key, kind) for key, kind in (
        ("recipe_set", "a non-empty string"), ("recipes", "a positive integer"), ("of", "a positive integer"))]
    if any(value is None for value in values):
        return None
    coverage = Coverage(*values)
    if coverage.recipes > coverage.of or (num_items is not None and coverage.recipes != num_items):
        fields.problems.append(f"dataset.coverage says {coverage.recipes} of {coverage.of} recipes "
                               f"for {num_items} items")
        return None
    return coverage


def load_results(path: Path) -> ResultsFile:
    """Read and check one ``results.json``.

    Raises:
        LusebenchError: the file is missing, is not JSON, or fails :func:`parse_results`.
    """
    path = Path(path)
    try:
        data = load_json(path, MAX_RESULTS_JSON_BYTES)
    except LusebenchError as error:
        raise LusebenchError(f"malformed results file: {error}") from None
    return parse_results(data, path)


def _own_figures(folder: Path) -> tuple[Path, ...]:
    """The PNG files in ``folder/figures`` that are regular files of the entry, not links out of it."""
    figures_dir = folder / FIGURES_DIR
    if figures_dir.is_symlink() or not figures_dir.is_dir():
        return ()
    return tuple(sorted(f for f in figures_dir.glob("*.png") if f.is_file() and not f.is_symlink()))


def find_results(paths: Iterable[Path]) -> list[Path]:
    """Expand files and folders into the ``results.json`` files they hold, searched recursively.

    Raises:
        LusebenchError: a path does not exist, or a folder holds no ``results.json``.
    """
    found: dict[Path, None] = {}  # ordered set: a file named twice is read once
    for path in map(Path, paths):
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            inside = sorted(path.rglob(RESULTS_FILENAME))
            if not inside:
                raise LusebenchError(f"no {RESULTS_FILENAME} under {path}")
            found.update((file.resolve(), None) for file in inside)
        else:
            raise LusebenchError(f"results path not found: {path}")
    logger.debug("found %d results files", len(found))
    return list(found)
