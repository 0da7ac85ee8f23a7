"""Speed of `lusebench evaluate` per 10 s binaural three-source item, against the same evaluation with mir_eval.

Prints: the wall time of `evaluate` with N workers (one thread each), the serial per-item cost with
fast_bss_eval and with mir_eval's bss_eval_sources in its place (same items, same run), their ratio,
and the projection to 1,000 items on 2 cores.

    python perf/evaluate_speed.py --items 60 --workers 2
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy and torch load

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import lusebench.benchmark.evaluate as evaluate_module
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.evaluate import _jobs, evaluate, score_item
from lusebench.benchmark.submission import load_submission
from lusebench.testing.datasets import make_dataset
from lusebench.testing.submissions import make_submission


def _mir_eval_sdr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """bss_eval_sources per ear, no permutation, with the same (..., ears, time) contract."""
    import mir_eval

    estimate, reference = np.broadcast_arrays(estimate, reference)
    out = np.empty(estimate.shape[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for index in np.ndindex(out.shape):
            out[index] = mir_eval.separation.bss_eval_sources(
                reference[index][None], estimate[index][None], compute_permutation=False
            )[0][0]
    return out


def _serial_ms_per_item(jobs) -> float:
    started = time.perf_counter()
    for job in jobs:
        score_item(job)
    return (time.perf_counter() - started) / len(jobs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "data", num_items=args.items, num_sources=3, seconds=args.seconds)
        submission = make_submission(data, Path(tmp) / "sub", noise=0.3, doa_error_deg=3.0)
        started = time.perf_counter()
        evaluate(submission, data, Path(tmp) / "res", workers=args.workers, figures=False, progress=False)
        wall_s = time.perf_counter() - started
        dataset = load_dataset(data)
        jobs = _jobs(load_submission(submission, dataset), dataset, score=True)
        fast_ms = _serial_ms_per_item(jobs)
        evaluate_module.bss_sdr_db = _mir_eval_sdr_db
        mir_ms = _serial_ms_per_item(jobs)
    print(f"items: {args.items} x {args.seconds:g} s, 3 sources, 16 kHz, all metrics")
    print(f"evaluate(), {args.workers} workers, incl. start-up and checks: {wall_s:.1f} s "
          f"({wall_s / args.items * 1e3:.0f} ms/item)")
    print(f"serial per item, fast_bss_eval: {fast_ms:.0f} ms; mir_eval: {mir_ms:.0f} ms; "
          f"ratio mir_eval/fast_bss_eval = {mir_ms / fast_ms:.2f}x")
    print(f"projected 1,000 items on {args.workers} cores: fast_bss_eval {fast_ms * 1000 / args.workers / 1e3:.0f} s, "
          f"mir_eval {mir_ms * 1000 / args.workers / 1e3:.0f} s")


if __name__ == "__main__":
    main()
