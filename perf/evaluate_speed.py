"""Speed of `lusebench evaluate` per 10 s binaural three-source item, against fast_bss_eval and mir_eval.

Renders N test mixtures with `simulate` (embedded corpus, KEMAR; what `lusebench simulate` writes),
writes a noisy-oracle submission, then prints, in the same run:
- the wall time of `evaluate` with W worker processes of one thread each (start-up and checks included);
- the serial per-item cost of scoring an item (all metrics, reading and checks included) with our
  BSS-eval SDR, with ``fast_bss_eval.sdr`` and with mir_eval's ``bss_eval_sources`` in its place,
  interleaved item by item on the same items, and the BSS-eval SDR share alone;
- the ratios, and the projection to 1,000 items on W cores.

    python perf/evaluate_speed.py --items 200 --workers 2
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy and torch load

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import fast_bss_eval
import numpy as np
import torch

import lusebench.benchmark.evaluate as evaluate_module
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.evaluate import _jobs, evaluate, score_item
from lusebench.benchmark.metrics import MAX_DB, bss_sdr_db
from lusebench.benchmark.submission import load_submission
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate
from lusebench.testing.submissions import make_submission

SdrFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _fast_bss_eval_sdr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """fast_bss_eval per ear, no permutation, with the (..., ears, time) contract of bss_sdr_db."""
    estimate, reference = np.broadcast_arrays(estimate, reference)
    return fast_bss_eval.sdr(reference[..., None, :], estimate[..., None, :], clamp_db=MAX_DB)[..., 0]


def _mir_eval_sdr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """bss_eval_sources per ear, no permutation, with the same contract."""
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


IMPLEMENTATIONS: dict[str, SdrFunction] = {
    "ours": bss_sdr_db,
    "fast_bss_eval": _fast_bss_eval_sdr_db,
    "mir_eval": _mir_eval_sdr_db,
}


def _timed(function: SdrFunction, spent: list[float]) -> SdrFunction:
    def wrapper(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        result = function(estimate, reference)
        spent.append(time.perf_counter() - started)
        return result

    return wrapper


def _serial_ms_per_item(jobs: list[evaluate_module.ItemJob]) -> dict[str, tuple[float, float]]:
    """Per implementation: (ms per item, all metrics; ms per item, BSS-eval SDR alone)."""
    totals = {name: 0.0 for name in IMPLEMENTATIONS}
    sdr_spent: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    try:
        for job in jobs:  # interleaved, so that a load change on the shared machine hits all three alike
            for name, function in IMPLEMENTATIONS.items():
                evaluate_module.bss_sdr_db = _timed(function, sdr_spent[name])
                started = time.perf_counter()
                score_item(job)
                totals[name] += time.perf_counter() - started
    finally:
        evaluate_module.bss_sdr_db = bss_sdr_db
    return {name: (totals[name] / len(jobs) * 1e3, sum(sdr_spent[name]) / len(jobs) * 1e3) for name in IMPLEMENTATIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="mixtures rendered and scored by evaluate()")
    parser.add_argument("--serial-items", type=int, default=30, help="of those, items timed serially per implementation")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # minicaps, the corpus the README's figures were measured on (scoring does not depend on it).
        config = SimulationConfig(num_sources=3, num_mixtures=args.items, duration_s=args.seconds, corpus="minicaps")
        started = time.perf_counter()
        simulate(config, data, workers=args.workers, progress=False)
        render_s = time.perf_counter() - started
        submission = make_submission(data, Path(tmp) / "sub", noise=0.1, doa_error_deg=3.0)
        started = time.perf_counter()
        evaluate(submission, data, Path(tmp) / "res", workers=args.workers, figures=False, progress=False)
        wall_s = time.perf_counter() - started
        dataset = load_dataset(data)
        jobs = _jobs(load_submission(submission, dataset), dataset, score=True)[: args.serial_items]
        serial = _serial_ms_per_item(jobs)
    ours_ms, ours_sdr_ms = serial["ours"]
    print(f"items: {args.items} x {args.seconds:g} s, 3 sources, 16 kHz, rendered by simulate in {render_s:.0f} s")
    print(
        f"evaluate(), {args.workers} workers of 1 thread, start-up and checks included: {wall_s:.1f} s "
        f"({wall_s / args.items * 1e3:.0f} ms/item) -> 1,000 items: {wall_s / args.items * 1000:.0f} s"
    )
    print(f"serial per item over {len(jobs)} items (all metrics | BSS-eval SDR alone), ratio to ours:")
    for name, (item_ms, sdr_ms) in serial.items():
        print(
            f"  {name:14s} {item_ms:6.0f} ms | {sdr_ms:6.0f} ms   x{item_ms / ours_ms:.2f} | x{sdr_ms / ours_sdr_ms:.2f}"
            f"   1,000 items on {args.workers} cores: {item_ms * 1000 / args.workers / 1e3:.0f} s"
        )


if __name__ == "__main__":
    main()
