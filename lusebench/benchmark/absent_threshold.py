"""Choosing the likelihood peak under which a localizer says "absent", on a set with absent items.

A system's ``absent_threshold`` (system.json) turns every ``doa_likelihood.npy`` row peaking
under it into "absent". Taken from a label coding it assumes a model sure of where the target is;
chosen here, it is the one that separates the set's absent items from its present ones best.
``lusebench absent-threshold SUBMISSION --data VAL`` prints :func:`format_sweep` of
:func:`sweep_submission`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.submission import read_doa_likelihood
from lusebench.errors import LusebenchError


@dataclass(frozen=True)
class ThresholdPoint:
    """What one threshold says on a set.

    Attributes:
        threshold: a row peaking strictly under it is said absent; None: never absent.
        detected: absent items said absent.
        false_absent: present items said absent.
    """

    threshold: float | None
    detected: int
    false_absent: int


@dataclass(frozen=True)
class AbsentThresholdSweep:
    """Every candidate threshold of a set, and the one chosen.

    Attributes:
        num_absent: the set's absent items.
        num_present: its present items.
        points: "never absent" first, then the thresholds in ascending order.
        chosen: the point of highest balanced accuracy, the lowest threshold among equals.
    """

    num_absent: int
    num_present: int
    points: tuple[ThresholdPoint, ...]
    chosen: ThresholdPoint

    def detected_pct(self, point: ThresholdPoint) -> float:
        """Share of absent items said absent, in %."""
        return 100.0 * point.detected / self.num_absent

    def false_absent_pct(self, point: ThresholdPoint) -> float:
        """Share of present items said absent, in %."""
        return 100.0 * point.false_absent / self.num_present

    def balanced_accuracy_pct(self, point: ThresholdPoint) -> float:
        """Mean of the detection rate and of the present items answered, in % (50: chance)."""
        return (self.detected_pct(point) + 100.0 - self.false_absent_pct(point)) / 2.0


def sweep_absent_threshold(peaks: np.ndarray, absent: np.ndarray) -> AbsentThresholdSweep:
    """The absent detection and false-absent counts of every threshold that changes an answer, and
    the threshold of highest balanced accuracy.

    The candidates are "never absent" and the midpoints between consecutive distinct peaks (a
    threshold anywhere between two peaks gives the same answers; the midpoint keeps its margin when
    printed rounded). The criterion is balanced accuracy, the mean of the detection rate on absent
    items and of 1 - the false-absent rate on present items: each rate is over its own class, so the
    choice does not depend on the share of absent items in the set the threshold is chosen on (a val
    set's 10 % or 50 % pick the same threshold for the same peak distributions), whereas plain
    accuracy on a set with few absent items prefers "never absent" whatever the system can tell.
    "Never absent" scores 50 % and is kept unless a threshold scores strictly more; among equal
    scores the lowest threshold wins (fewest present targets lost). Scores are compared as exact
    integers, so equal counts tie exactly.

    Args:
        peaks: (N,) each item's likelihood peak (``doa_likelihood.npy``'s row maximum), finite.
        absent: (N,) bool, the item's target is absent (the manifest's ``target_absent``).

    Raises:
        LusebenchError: shapes differ, a peak is not finite, or the set holds no absent item or no
            present item (neither rate is then defined).
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    absent = np.asarray(absent, dtype=bool)
    if peaks.ndim != 1 or peaks.shape != absent.shape:
        raise LusebenchError(f"peaks {peaks.shape} and absent flags {absent.shape} must be two (N,) arrays")
    if not np.isfinite(peaks).all():
        raise LusebenchError("a likelihood peak is NaN or infinite")
    num_absent = int(absent.sum())
    num_present = len(absent) - num_absent
    if num_absent == 0:
        raise LusebenchError("the set holds no absent-target item: render it with --absent-share > 0")
    if num_present == 0:
        raise LusebenchError("the set holds no present-target item: no false-absent rate to weigh")
    values = np.unique(peaks)  # (K,) ascending
    # Items strictly under values[k] (k >= 1), hence under the midpoint between values[k-1] and values[k].
    order = np.argsort(peaks)
    sorted_peaks, sorted_absent = peaks[order], absent[order]
    under = np.searchsorted(sorted_peaks, values[1:], side="left")  # (K-1,)
    absent_under = np.concatenate([[0], np.cumsum(sorted_absent)])[under]
    present_under = under - absent_under
    thresholds = (values[:-1] + values[1:]) / 2.0
    points = [ThresholdPoint(None, 0, 0)] + [
        ThresholdPoint(float(t), int(d), int(f)) for t, d, f in zip(thresholds, absent_under, present_under)
    ]
    # Balanced accuracy times 2 * num_absent * num_present, less a constant: exact in integers.
    scores = [point.detected * num_present - point.false_absent * num_absent for point in points]
    chosen = points[int(np.argmax(scores))]  # the first maximum: never absent, else the lowest threshold
    return AbsentThresholdSweep(num_absent, num_present, tuple(points), chosen)


def sweep_submission(submission: Path | str, data: Path | str) -> AbsentThresholdSweep:
    """:func:`sweep_absent_threshold` of a submission's likelihood peaks on the set it answers.

    Args:
        submission: a submission folder with ``doa_likelihood.npy``, made on ``data`` (set.json),
            by a run that answered every item (``infer --absent-threshold none``).
        data: a rendered set with absent items (``simulate --absent-share``), a val set: a threshold
            chosen on the test set would be fitted to it.

    Raises:
        LusebenchError: the dataset or the likelihood file fails evaluate's checks (read through
            :func:`read_doa_likelihood`), or the set lacks absent or present items.
    """
    dataset = load_dataset(data)
    likelihood = read_doa_likelihood(submission, dataset)  # (N, 360)
    return sweep_absent_threshold(likelihood.max(axis=-1), np.array(dataset.absent, dtype=bool))


def shown_points(sweep: AbsentThresholdSweep, rows: int) -> list[ThresholdPoint]:
    """"Never absent", the chosen point and thresholds evenly spread over the sweep, at most ``rows``
    (2 or more), in the sweep's order."""
    if rows < 2:
        raise LusebenchError(f"--rows must be at least 2 (never absent and the chosen threshold), got {rows}")
    thresholds = sweep.points[1:]
    spread = np.linspace(0, len(thresholds) - 1, num=min(rows - 2, len(thresholds))).round().astype(int)
    shown = {sweep.points[0], sweep.chosen, *(thresholds[i] for i in spread)}
    return [point for point in sweep.points if point in shown]


def format_sweep(sweep: AbsentThresholdSweep, rows: int = 10) -> str:
    """A table of :func:`shown_points` (threshold, detected, false absent, balanced accuracy), the
    chosen one marked, and a last line with the ``infer --absent-threshold`` value that applies it."""
    lines = [f"{sweep.num_absent} absent and {sweep.num_present} present items; {len(sweep.points) - 1} thresholds",
             f"{'threshold':>12} {'detected':>9} {'false absent':>13} {'balanced acc.':>14}"]
    for point in shown_points(sweep, rows):
        threshold = "never" if point.threshold is None else f"{point.threshold:.4g}"
        mark = "  <- chosen" if point == sweep.chosen else ""
        lines.append(f"{threshold:>12} {sweep.detected_pct(point):>8.1f}% {sweep.false_absent_pct(point):>12.1f}% "
                     f"{sweep.balanced_accuracy_pct(point):>13.1f}%{mark}")
    chosen = sweep.chosen.threshold
    lines.append("chosen: none (never absent; infer --absent-threshold none)" if chosen is None
                 else f"chosen: {chosen!r} (infer --absent-threshold {chosen!r})")
    return "\n".join(lines)
