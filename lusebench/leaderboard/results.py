"""Read and check the ``results.json`` files that ``lusebench evaluate`` writes (schema version 1).

The leaderboard trusts nothing it reads: every field it shows is type-checked here, and every
problem in a file is reported in one line before the file is rejected.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lusebench import __version__
from lusebench.errors import LusebenchError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RESULTS_FILENAME = "results.json"
TASKS = ("extraction", "localization")
# The columns of the paper's Table 1 that each task must fill; other metric keys are ignored here.
TASK_METRICS: Mapping[str, tuple[str, ...]] = {
    "extraction": ("si_snri_db", "sdri_db"),
    "localization": ("doa_accuracy_pct", "doa_mae_deg"),
}
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Stat:
    """One aggregated metric: mean over items, its 95% interval, item count.

    ``ci95`` is half the interval's width; ``low``/``high`` its ends, None in results files
    written before intervals could be asymmetric (there: mean -/+ ci95).
    """

    mean: float
    ci95: float | None = None
    n: int | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """The test set a results file was scored on; ``fingerprint`` tells test sets apart."""

    path: str
    fingerprint: str
    split: str
    num_items: int
    num_sources: tuple[int, ...]
    condition: str
    sample_rate: int


@dataclass(frozen=True)
class SystemInfo:
    """The scored system as its ``system.json`` describes it."""

    name: str
    tasks: tuple[str, ...]
    channels: int
    gcc_phat: bool | None  # None: the system.json did not say
    description: str = ""
    link: str | None = None
    parameters: int | None = None


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_KINDS: Mapping[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "a non-empty string": lambda v: isinstance(v, str) and bool(v.strip()),
    "an integer": _is_int,
    "a positive integer": lambda v: _is_int(v) and v > 0,
    "a non-negative integer": lambda v: _is_int(v) and v >= 0,
    "a finite number": _is_number,
    "a boolean": lambda v: isinstance(v, bool),
    "an object": lambda v: isinstance(v, dict),
    "a non-empty list of positive integers": lambda v: isinstance(v, list)
    and bool(v)
    and all(_is_int(x) and x > 0 for x in v),
    "a non-empty list of tasks (extraction, localization)": lambda v: isinstance(v, list)
    and bool(v)
    and all(x in TASKS for x in v),
}


class _Fields:
    """Reads typed fields from nested JSON objects and collects every problem it meets."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def take(
        self, block: Mapping[str, Any] | None, where: str, key: str, kind: str, *, nullable: bool = False
    ) -> Any:
        if block is None:  # the enclosing object was already reported
            return None
        if key not in block:
            self.problems.append(f"{where}.{key} is missing")
            return None
        value = block[key]
        if value is None and nullable:
            return None
        if not _KINDS[kind](value):
            self.problems.append(f"{where}.{key} should be {kind}, not {json.dumps(value)[:40]}")
            return None
        return value

    def stat(self, block: Mapping[str, Any] | None, where: str, key: str) -> Stat | None:
        """The metric, or ``None`` when it is malformed (reported) or has no scored item (``mean: null``)."""
        entry = self.take(block, where, key, "an object")
        if entry is None:
            return None
        # The evaluator writes mean null for a metric no item could be scored on (n = 0).
        mean = self.take(entry, f"{where}.{key}", "mean", "a finite number", nullable=True)
        ci95 = self.take(entry, f"{where}.{key}", "ci95", "a finite number", nullable=True)
        n = self.take(entry, f"{where}.{key}", "n", "a non-negative integer")
        # The interval's ends arrived with bounded intervals (Wilson); older files lack them.
        ends = [
            self.take(entry, f"{where}.{key}", end, "a finite number", nullable=True) if end in entry else None
            for end in ("ci95_low", "ci95_high")
        ]
        if mean is None or n is None:
            return None
        low, high = (None if end is None else float(end) for end in ends)
        return Stat(mean=float(mean), ci95=None if ci95 is None else float(ci95), n=n, low=low, high=high)


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
    """Check the decoded JSON of one results file against schema version 1.

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
    if version != SCHEMA_VERSION:
        shown = "no schema_version" if "schema_version" not in data else f"schema_version {json.dumps(version)}"
        raise LusebenchError(
            f"unknown results format in {path}: {shown} (lusebench {__version__} reads schema_version "
            f"{SCHEMA_VERSION}; upgrade lusebench or re-run `lusebench evaluate`)"
        )
    fields = _Fields()
    lusebench_version = fields.take(data, "results", "lusebench_version", "a non-empty string")
    git_commit = fields.take(data, "results", "git_commit", "a string", nullable=True)
    created_utc = _parse_utc(fields.take(data, "results", "created_utc", "a string"), fields)

    dataset_block = fields.take(data, "results", "dataset", "an object")
    fingerprint = fields.take(dataset_block, "dataset", "fingerprint", "a string")
    if fingerprint is not None and not _FINGERPRINT.fullmatch(fingerprint):
        fields.problems.append(f"dataset.fingerprint should be 64 lowercase hex digits, not {fingerprint[:70]!r}")
    dataset_values = {
        "path": fields.take(dataset_block, "dataset", "path", "a string"),
        "split": fields.take(dataset_block, "dataset", "split", "a non-empty string"),
        "num_items": fields.take(dataset_block, "dataset", "num_items", "a positive integer"),
        "num_sources": fields.take(dataset_block, "dataset", "num_sources", "a non-empty list of positive integers"),
        "condition": fields.take(dataset_block, "dataset", "condition", "a non-empty string"),
        "sample_rate": fields.take(dataset_block, "dataset", "sample_rate", "a positive integer"),
    }

    system_block = fields.take(data, "results", "system", "an object")
    tasks = fields.take(system_block, "system", "tasks", "a non-empty list of tasks (extraction, localization)")
    system_values = {
        "name": fields.take(system_block, "system", "name", "a non-empty string"),
        "channels": fields.take(system_block, "system", "channels", "a positive integer"),
        "gcc_phat": fields.take(system_block, "system", "gcc_phat", "a boolean", nullable=True),
        "description": fields.take(system_block, "system", "description", "a string", nullable=True) or "",
        "link": fields.take(system_block, "system", "link", "a string", nullable=True) or None,
        "parameters": fields.take(system_block, "system", "parameters", "a non-negative integer", nullable=True),
    }

    metrics_block = fields.take(data, "results", "metrics", "an object")
    overall = fields.take(metrics_block, "metrics", "overall", "an object")
    by_num_sources = fields.take(metrics_block, "metrics", "by_num_sources", "an object")
    metrics: dict[int, dict[str, Stat]] = {}
    num_sources = dataset_values["num_sources"] or []
    metric_keys = [key for task in TASK_METRICS if task in (tasks or ()) for key in TASK_METRICS[task]]
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
        metrics[count] = {key: stat for key, stat in stats.items() if stat is not None}

    if fields.problems:
        raise LusebenchError(f"malformed results file {path}: " + "; ".join(fields.problems))
    figures_dir = path.parent / "figures"
    return ResultsFile(
        path=path,
        lusebench_version=lusebench_version,
        git_commit=git_commit,
        created_utc=created_utc,
        dataset=DatasetInfo(fingerprint=fingerprint, **{**dataset_values, "num_sources": tuple(num_sources)}),
        system=SystemInfo(tasks=tuple(tasks), **system_values),
        metrics=metrics,
        figures=tuple(sorted(figures_dir.glob("*.png"))) if figures_dir.is_dir() else (),
    )


def load_results(path: Path) -> ResultsFile:
    """Read and check one ``results.json``.

    Raises:
        LusebenchError: the file is missing, is not JSON, or fails :func:`parse_results`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LusebenchError(f"cannot read results file {path}: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LusebenchError(
            f"malformed results file {path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    return parse_results(data, path)


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
