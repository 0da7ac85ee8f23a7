"""Choose a localizer's absent threshold on a val set with absent items, from its submission there.

Reads the submission's doa_likelihood.npy (checked as evaluate checks it) and the set's manifest
(which items are absent), sweeps every threshold that changes an answer, and prints a few of them
and the one of highest balanced accuracy (lusebench.benchmark.absent_threshold). "never" means
never absent: it is chosen unless a threshold tells absent from present items better than chance.

    lusebench simulate --split val --sources 2 --num 500 --absent-share 0.1 --corpus debcaps \\
        --seed 20461 --duration 10 --out val-absent
    lusebench infer --checkpoint RUN/best.pt --data val-absent --out val-sub --absent-threshold none
    python scripts/choose_absent_threshold.py val-sub --data val-absent
    lusebench infer --checkpoint RUN/best.pt --data test-2src --out sub --absent-threshold T
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lusebench.benchmark.absent_threshold import AbsentThresholdSweep, ThresholdPoint, sweep_absent_threshold
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.submission import read_doa_likelihood
from lusebench.errors import LusebenchError


def shown_points(sweep: AbsentThresholdSweep, rows: int) -> list[ThresholdPoint]:
    """"Never absent", the chosen point and thresholds evenly spread over the sweep, at most ``rows``."""
    thresholds = sweep.points[1:]
    spread = np.linspace(0, len(thresholds) - 1, num=min(max(rows - 2, 0), len(thresholds))).round().astype(int)
    chosen = {sweep.points[0], sweep.chosen, *(thresholds[i] for i in spread)}
    return [point for point in sweep.points if point in chosen]


def format_table(sweep: AbsentThresholdSweep, rows: int) -> str:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", type=Path, help="a submission with doa_likelihood.npy, made on the val set")
    parser.add_argument("--data", type=Path, required=True, help="the val set it answers, with absent items")
    parser.add_argument("--rows", type=int, default=10, help="thresholds shown, at least 2 (default 10)")
    args = parser.parse_args(argv)
    try:
        if args.rows < 2:
            raise LusebenchError(f"--rows must be at least 2, got {args.rows}")
        dataset = load_dataset(args.data)
        likelihood = read_doa_likelihood(args.submission, dataset)  # (N, 360)
        sweep = sweep_absent_threshold(likelihood.max(axis=-1), np.array(dataset.absent, dtype=bool))
    except LusebenchError as error:
        print(f"choose_absent_threshold: error: {error}", file=sys.stderr)
        return 2
    print(format_table(sweep, args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
