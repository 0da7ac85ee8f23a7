"""Group checked results into ranked tables in the layout of the paper's Table 1.

One table per (test set fingerprint, condition, source count): systems scored on different test
sets are never ranked together. The paper's own rows form separate tables, one per source count,
placed beside the measured tables with the same source count. A system scored on a test set and on its
unseen-head twin (UNSEEN_HEAD_TWINS) shows the twin's figures in extra columns of the set's table.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lusebench.benchmark.metrics import METRICS
from lusebench.leaderboard.results import TRACK_METRICS, Coverage, ResultsFile, Stat

if TYPE_CHECKING:
    from lusebench.leaderboard.paper import PaperTable

# Figures are shown, and best values decided, at the paper's precision: 0.1 dB, 0.1 %, 0.1 deg.
DECIMALS = 1


@dataclass(frozen=True)
class Column:
    """A metric column of Table 1; ``key`` is the results.json metric key."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


COLUMNS: tuple[Column, ...] = (
    Column("si_snri_db", "SI-SNRi", "dB", higher_is_better=True),
    # Plain SDR (10 log10 |s|^2 / |s - s_hat|^2), the AudioSep / DCASE LASS definition.
    Column("sdri_db", "SDRi", "dB", higher_is_better=True),
    Column("doa_accuracy_pct", "Accuracy", "%", higher_is_better=True),
    Column("doa_mae_deg", "MAE", "deg", higher_is_better=False),
)
# The tracks beyond the paper (docs/submission-format.md), after the paper's columns, one per key the
# results reader takes (TRACK_METRICS), with the benchmark's unit and direction and a label short
# enough for a table; a table shows one only where one of its rows has it, so the paper's tables
# keep the paper's layout.
_TRACK_LABELS: Mapping[str, str] = {
    "joint_success_pct": "Joint",
    "doa_front_back_pct": "Front-back conf.",
    "doa_mae_resolved_deg": "MAE resolved",
    "level_error_db": "Level error",
    "absent_level_db": "Absent level",
    "absent_detected_pct": "Absent detected",
    "false_absent_pct": "False absent",
}
TRACK_COLUMNS: tuple[Column, ...] = tuple(
    Column(key, _TRACK_LABELS[key], METRICS[key].unit, METRICS[key].higher_is_better) for key in TRACK_METRICS
)

# The unseen-listener track: a fixed test set's fingerprint -> its unseen-head twin's (the same recipes,
# each mixture on one of two SONICOM subjects, which default training never hears; BENCHMARK_SETS).
# Pinned, not derived from BENCHMARK_SETS: a fingerprint holds each mixture's headroom gain, which
# follows its peak as rendered on its head; a test fails when BENCHMARK_SETS gains a twin not here.
UNSEEN_HEAD_TWINS: Mapping[str, str] = {
    # test-2src -> test-2src-unseen-head
    "4480fe0bb8d9d5dda5fc20f63b5c8bf2f07af42ec724f4b42770a82e8166f3ce":
        "ee4876dfdefd73c0a4dd58aa249d74ef4dc658af193fe35cf515477e55488e44",
    # test-3src -> test-3src-unseen-head
    "c905da020fb84ac588218cfa798aab610d95cee500324ed76565e171f2ae72fc":
        "c383c82497bf5db88bda1d64229368bbe870e37b01b2b69f931697a710d746ec",
}
# Where a system has results on a set and its twin, the twin's figures beside its own, after the
# paper's columns (the key prefix keeps them apart from the set's own figures in a row's values).
UNSEEN_HEAD_PREFIX = "unseen_head."
UNSEEN_HEAD_COLUMNS: tuple[Column, ...] = tuple(
    Column(f"{UNSEEN_HEAD_PREFIX}{c.key}", f"{c.label} unseen head", c.unit, c.higher_is_better)
    for c in COLUMNS if c.key in ("si_snri_db", "doa_accuracy_pct", "doa_mae_deg")
)


@dataclass(frozen=True)
class Row:
    """One system in one table.

    ``values`` holds only the columns the system's tasks cover (a missing key is the paper's "-").
    ``results`` is the file a measured row came from; ``None`` for a row reported in the paper,
    which carries the paper's ``system_number`` instead.
    """

    system: str
    tasks: tuple[str, ...]
    gcc_phat: bool | None  # None: not stated by the submission
    channels: int
    values: Mapping[str, Stat]
    system_number: int | None = None
    results: ResultsFile | None = None


@dataclass(frozen=True)
class Table:
    """Rows that may be compared: one test set, one condition, one source count."""

    test_set: str
    num_sources: int
    rows: tuple[Row, ...]
    fingerprint: str | None = None
    condition: str | None = None
    split: str | None = None
    reported_in_paper: str | None = None  # the paper's provenance label, for paper tables only
    coverage: Coverage | None = None  # a fixed AudioCaps set's: what part of it every row was scored on

    @property
    def title(self) -> str:
        # Two test sets may share a folder name: the short fingerprint tells them apart.
        parts = [f"{self.test_set} ({self.fingerprint[:12]})" if self.fingerprint else self.test_set]
        parts += [part for part in (self.split, self.condition, self.coverage and self.coverage.text) if part]
        parts.append(f"{self.num_sources} sources")
        return " · ".join(parts)

    @functools.cached_property
    def columns(self) -> tuple[Column, ...]:
        """The paper's columns, then the unseen-head and track columns that a row of this table has."""
        extra = UNSEEN_HEAD_COLUMNS + TRACK_COLUMNS
        return COLUMNS + tuple(c for c in extra if any(c.key in row.values for row in self.rows))

    @functools.cached_property
    def _best(self) -> dict[str, float | None]:
        # Computed once per table: asking per cell made 2,000 entries quadratic (13.5 s).
        best: dict[str, float | None] = {}
        for column in self.columns:
            values = [round(row.values[column.key].mean, DECIMALS) for row in self.rows if column.key in row.values]
            best[column.key] = (max(values) if column.higher_is_better else min(values)) if values else None
        return best

    def best(self, column: Column) -> float | None:
        """Best value of ``column`` at display precision, or ``None`` when no row has one."""
        return self._best[column.key]

    def is_best(self, row: Row, column: Column) -> bool:
        stat = row.values.get(column.key)
        return stat is not None and round(stat.mean, DECIMALS) == self.best(column)


# What _rank_key does, in the words the page shows.
RANK_RULE = (
    "Measured rows are ranked by SI-SNRi (higher first), then DoA accuracy (higher first), then DoA MAE "
    "(lower first), on the unrounded means; a metric a system does not report ranks it after those that do."
)


# How results over two copies of a fixed AudioCaps set compare, in the words the page shows.
SUBSET_NOTE = (
    "A fixed AudioCaps set is rendered from each user's own copy of AudioCaps, which holds a part of its "
    "recipes; a table ranks only results over the same recipes (one fingerprint). To compare results over "
    "two copies, score both on the recipes both hold: comm -12 A/recipes.txt B/recipes.txt > common.txt, "
    "then lusebench evaluate SUBMISSION --data A --recipes common.txt (and likewise on B)."
)


# What the second interval of a cell is, in the words the page shows.
CLIPS_NOTE = (
    "The interval after \"clips\" treats the target clip as the unit drawn (a fixed set reuses a few dozen "
    "clips across its mixtures): it is the one to read for a claim about sounds outside the set."
)


# What the track columns are, in the words the page shows.
TRACKS_NOTE = (
    "After the paper's columns, where a table has them: Joint is the share of items whose target was both "
    "extracted (SI-SNRi >= 3 dB by default) and located (within 20 deg); Front-back conf. the share of errors "
    "over 20 deg whose mirror image about the interaural axis is within 20 deg, and MAE resolved the MAE with "
    "those mirrored; Level error the distance in dB between the level of the answer and of the target on present "
    "items (SI-SNR ignores it; read it beside Absent level, which a quiet answer to every query also wins); on "
    "absent-target items, the output level re the mixture (floored at -60 dB) and the share said absent; False "
    "absent the share of present targets said absent."
)


# What the unseen-head columns are, in the words the page shows.
UNSEEN_HEAD_NOTE = (
    "On test-2src and test-3src, a system also scored on the set's unseen-head twin (test-Nsrc-unseen-head: "
    "the same mixtures rendered on two SONICOM human subjects instead of KEMAR, heads default training never "
    "hears) shows the twin's SI-SNRi, Accuracy and MAE beside its own (\"unseen head\"): the difference is the "
    "head alone. Rows are ranked on the set's own figures; the twin has its own table."
)


def _rank_key(row: Row) -> tuple[float, float, float, str]:
    # Extraction quality first (the benchmark's main task), then localization; a metric a
    # system does not report sorts after every reported value.
    def signed(key: str, sign: float) -> float:
        return sign * row.values[key].mean if key in row.values else math.inf

    return (signed("si_snri_db", -1.0), signed("doa_accuracy_pct", -1.0), signed("doa_mae_deg", 1.0), row.system)


def _folder_name(path: str) -> str:
    # The path was written on the evaluating machine, maybe Windows: split on either separator.
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] or "unnamed test set"


def _measured_row(results: ResultsFile, num_sources: int) -> Row:
    system = results.system
    return Row(
        system=system.name,
        tasks=system.tasks,
        gcc_phat=system.gcc_phat,
        channels=system.channels,
        values=results.metrics[num_sources],
        results=results,
    )


def _distinct_names(rows: list[Row]) -> list[Row]:
    """Rows whose system names repeat within a table get the shortest tail of their results
    folder's path that tells them apart (the same reference scored twice, two runs of one name)."""
    by_name: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_name.setdefault(row.system, []).append(index)
    rows = list(rows)
    for name, indices in by_name.items():
        if len(indices) < 2:
            continue
        parts = [rows[i].results.path.parent.parts if rows[i].results else ("?",) for i in indices]
        for i, path in zip(indices, parts):
            # Results paths are distinct (find_results reads each file once), so some tail is unique.
            depth = 1
            while depth < len(path) and sum(other[-depth:] == path[-depth:] for other in parts) > 1:
                depth += 1
            rows[i] = replace(rows[i], system=f"{name} [{'/'.join(path[-depth:])}]")
    return rows


def _with_unseen_head(row: Row, members: Sequence[ResultsFile], twins: Sequence[ResultsFile], count: int) -> Row:
    """``row`` with its system's figures on the set's unseen-head twin, where the system has exactly
    one result on each (two results of one name on either set would leave which to pair a guess)."""
    same = [twin for twin in twins if twin.system.name == row.system]
    if len(same) != 1 or sum(member.system.name == row.system for member in members) != 1:
        return row
    twin = same[0].metrics.get(count, {})
    unseen = {column.key: twin[column.key[len(UNSEEN_HEAD_PREFIX):]] for column in UNSEEN_HEAD_COLUMNS
              if column.key[len(UNSEEN_HEAD_PREFIX):] in twin}
    return replace(row, values={**row.values, **unseen}) if unseen else row


def build_tables(results: Sequence[ResultsFile], paper: PaperTable | None = None) -> tuple[Table, ...]:
    """Group results into ranked tables, with the paper's tables beside them.

    Args:
        results: checked results files; one file yields a row in each of its source counts.
        paper: the paper's Table 1, or ``None`` to leave it out.

    Returns:
        Tables ordered by source count; for each count the paper's table comes first, then the
        measured ones ordered by test set name, condition and fingerprint. Measured rows are
        ranked by SI-SNRi, then DoA accuracy, then MAE; paper rows keep the paper's order.
    """
    groups: dict[tuple[int, str, str], list[ResultsFile]] = {}
    for item in results:
        for count in item.dataset.num_sources:
            groups.setdefault((count, item.dataset.fingerprint, item.dataset.condition), []).append(item)

    measured: list[Table] = []
    for (count, fingerprint, condition), members in groups.items():
        twins = groups.get((count, UNSEEN_HEAD_TWINS.get(fingerprint, ""), condition), [])
        # One fingerprint is one test set, but its folder may have moved: show every name seen.
        names = sorted({_folder_name(member.dataset.path) for member in members})
        measured.append(
            Table(
                test_set=" = ".join(names),
                num_sources=count,
                rows=tuple(sorted(_distinct_names([_with_unseen_head(_measured_row(m, count), members, twins, count)
                                                   for m in members]), key=_rank_key)),
                fingerprint=fingerprint,
                condition=condition,
                split=members[0].dataset.split,
                coverage=members[0].dataset.coverage,
            )
        )
    tables: list[Table] = []
    counts = sorted({table.num_sources for table in measured} | set(paper.rows_by_num_sources if paper else ()))
    for count in counts:
        if paper is not None and count in paper.rows_by_num_sources:
            tables.append(
                Table(
                    test_set=paper.test_set,
                    num_sources=count,
                    rows=paper.rows_by_num_sources[count],
                    reported_in_paper=paper.provenance,
                )
            )
        same_count = [table for table in measured if table.num_sources == count]
        tables += sorted(same_count, key=lambda t: (t.test_set, t.condition or "", t.fingerprint or ""))
    return tuple(tables)

