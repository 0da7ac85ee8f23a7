"""Score a submission against a dataset folder: checks, per-item metrics in parallel, aggregation."""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from lusebench import __version__
from lusebench.allocator import retain_freed_memory
from lusebench.benchmark.aggregate import CLIP_COLUMN, aggregate
from lusebench.benchmark.dataset import Dataset, load_dataset, read_recipe_ids
from lusebench.benchmark.metrics import (
    DOA_TOLERANCE_DEG,
    bss_sdr_db,
    circular_error_deg,
    folded_error_deg,
    gcc_phat_itd_s,
    ild_db,
    level_db,
    sdr_db,
    si_snr_db,
)
from lusebench.benchmark.results import (
    FIGURES_DIR,
    RESULTS_ENTRIES,
    SCHEMA_VERSION,
    Results,
    load_results,
    write_results,
)
from lusebench.benchmark.submission import Problem, Submission, SubmissionError, check_audio, load_submission
from lusebench.benchmark.tracks import ABSENT_COLUMN, SAID_ABSENT_COLUMN, TrackOptions, add_track_columns
from lusebench.errors import LusebenchError
from lusebench.io import read_audio, replace_folder
from lusebench.provenance import git_commit

logger = logging.getLogger(__name__)

# Read by numpy/BLAS and OpenMP when a worker starts: one thread per process, so that N workers use
# N cores and never oversubscribe a machine shared with other jobs.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# What scoring one item returns: (mixture_id, problems, metrics).
_Outcome = tuple[str, list[Problem], dict[str, float]]


@dataclass(frozen=True)
class ItemJob:
    """Everything one worker needs to check and score one mixture.

    An absent-target item has no target file (``target_path`` None, ``target_sha256`` "") and a NaN
    ``target_azimuth_deg``; a NaN ``predicted_azimuth_deg`` is the submission's "absent".
    """

    mixture_id: str
    mixture_path: Path
    target_path: Path | None
    mixture_sha256: str
    target_sha256: str
    num_samples: int
    sample_rate: int
    estimate_path: Path | None
    predicted_azimuth_deg: float | None
    target_azimuth_deg: float
    score: bool
    target_absent: bool = False


def _extraction_metrics(estimate: np.ndarray, job: ItemJob) -> dict[str, float]:
    # The references are checked against the manifest as they are read: the fingerprint in
    # results.json then describes the bytes scored, not whatever the folder holds now.
    mixture, _ = read_audio(job.mixture_path, max_frames=job.num_samples, sha256=job.mixture_sha256)
    if job.target_absent:  # no reference: only how loud the answer is beside the mixture
        return {"absent_level_db": float(level_db(estimate, mixture))}
    target, _ = read_audio(job.target_path, max_frames=job.num_samples, sha256=job.target_sha256)
    signals = np.stack([estimate, mixture]).astype(np.float64)  # (2 = estimate|mixture, ears, time)
    target = target.astype(np.float64)
    record = {}
    for name, metric in (("si_snr", si_snr_db), ("sdr", sdr_db), ("bss_sdr", bss_sdr_db)):
        est_db, mix_db = metric(signals, target).mean(axis=-1)  # mean over ears
        record[f"{name}_db"] = float(est_db)
        record[f"{name}i_db"] = float(est_db - mix_db)
    pair = np.stack([estimate, target]).astype(np.float64)  # (2 = estimate|target, ears, time)
    itd_s = gcc_phat_itd_s(pair, job.sample_rate)
    ild = ild_db(pair)
    record["itd_error_us"] = float(abs(itd_s[0] - itd_s[1]) * 1e6)
    record["ild_error_db"] = float(abs(ild[0] - ild[1]))
    # SI-SNR ignores the answer's level, and the absent track rewards quiet answers: without this, an
    # extractor that answers every query 40 dB down scores its SI-SNRi and a perfect absent level.
    levels = level_db(np.stack([estimate, target]), mixture)
    record["level_error_db"] = float(abs(levels[0] - levels[1]))
    return record


def _localization_metrics(job: ItemJob) -> dict[str, float]:
    said_absent = math.isnan(job.predicted_azimuth_deg)
    record = {"doa_pred_deg": float(job.predicted_azimuth_deg), SAID_ABSENT_COLUMN: float(said_absent)}
    if job.target_absent:
        return record
    if said_absent:  # a present target said absent is missed, and has no error to average
        return {**record, "doa_correct_pct": 0.0, "doa_error_deg": math.nan, "doa_error_folded_deg": math.nan}
    error = float(circular_error_deg(job.predicted_azimuth_deg, job.target_azimuth_deg))
    return {
        **record,
        "doa_error_deg": error,
        "doa_error_folded_deg": float(folded_error_deg(job.predicted_azimuth_deg, job.target_azimuth_deg)),
        "doa_correct_pct": 100.0 if error <= DOA_TOLERANCE_DEG else 0.0,
    }


def score_item(job: ItemJob) -> _Outcome:
    """Check one mixture's estimate and, when ``job.score`` and it passes, compute its metrics.

    Returns:
        ``(mixture_id, problems, metrics)``; metrics is empty when not scored.
    """
    record: dict[str, float] = {}
    if job.estimate_path is not None:
        estimate, problems = check_audio(job.estimate_path, job.num_samples, job.sample_rate, job.target_sha256,
                                         allow_silence=job.target_absent)
        if problems:
            return job.mixture_id, problems, {}
        if job.score:
            record.update(_extraction_metrics(estimate, job))
    if job.score and job.predicted_azimuth_deg is not None:
        record.update(_localization_metrics(job))
    return job.mixture_id, [], record


@contextmanager
def _one_thread_per_child() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_jobs(jobs: list[ItemJob], workers: int, progress: bool) -> list[_Outcome]:
    bar = dict(total=len(jobs), desc="scoring" if jobs and jobs[0].score else "checking", unit="item", disable=not progress)
    if workers <= 1:
        retain_freed_memory()
        return [score_item(job) for job in tqdm(jobs, **bar)]
    # spawn, not fork: a forked child inherits the parent's thread pools (and torch's) half-initialised.
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=retain_freed_memory
    )
    with executor:
        chunksize = max(1, min(16, len(jobs) // (4 * workers)))
        with _one_thread_per_child():  # map submits every chunk now, so every worker starts in here
            outcomes = executor.map(score_item, jobs, chunksize=chunksize)
        try:
            return list(tqdm(outcomes, **bar))
        except BrokenProcessPool:
            # A killed worker (the OOM killer, a crash in a decoder) raises nothing of its own to show,
            # and the pool's traceback only points here.
            raise LusebenchError(
                "a worker process died while scoring (out of memory, or killed); rerun with --workers 1 "
                "to score in this process and see why"
            ) from None


def _jobs(submission: Submission, dataset: Dataset, score: bool, scored: set[str] | None = None) -> list[ItemJob]:
    """One job per answered mixture; only those in ``scored`` (all when None) are scored, the others checked."""
    jobs = []
    absent = dataset.absent
    for row, target_absent in zip(dataset.manifest.itertuples(index=False), absent):
        estimate = submission.audio.get(row.mixture_id)
        azimuth = submission.azimuths_deg.get(row.mixture_id)
        if estimate is None and azimuth is None:
            continue
        jobs.append(
            ItemJob(
                mixture_id=row.mixture_id,
                mixture_path=dataset.path / row.mixture_path,
                target_path=None if target_absent else dataset.path / row.target_path,
                mixture_sha256=str(row.mixture_sha256),
                target_sha256="" if target_absent else str(row.target_sha256),
                num_samples=int(row.num_samples),
                sample_rate=int(row.sample_rate),
                estimate_path=estimate,
                predicted_azimuth_deg=azimuth,
                target_azimuth_deg=float(row.target_azimuth_deg),
                score=score and (scored is None or row.mixture_id in scored),
                target_absent=bool(target_absent),
            )
        )
    return jobs


def _checked(
    submission_path: Path, dataset: Dataset, workers: int, progress: bool, score: bool, scored: set[str] | None = None
) -> tuple[Submission, list[_Outcome]]:
    submission = load_submission(submission_path, dataset)
    # A structurally broken submission is still decoded, to report every problem at once.
    outcomes = _run_jobs(_jobs(submission, dataset, score and not submission.problems, scored), workers, progress)
    problems = list(submission.problems) + [p for _, item_problems, _ in outcomes for p in item_problems]
    if problems:
        raise SubmissionError(submission.path, problems)
    return submission, outcomes


def check(submission: Path, data: Path, *, workers: int = 2, progress: bool = True) -> Submission:
    """Run every check of a submission against a dataset folder, without scoring.

    Raises:
        SubmissionError: listing every problem found.
        LusebenchError: when the dataset or submission folder cannot be read at all.
    """
    submission_checked, _ = _checked(Path(submission), load_dataset(data), workers, progress, score=False)
    return submission_checked


def evaluate(
    submission: Path,
    data: Path,
    out: Path | None = None,
    *,
    workers: int = 2,
    figures: bool = True,
    progress: bool = True,
    recipes: Path | None = None,
    tracks: TrackOptions = TrackOptions(),
) -> Results:
    """Check a submission, score every item, aggregate, and write the results folder.

    Args:
        submission: the submission folder (docs/submission-format.md).
        data: the dataset folder it answers (docs/dataset-format.md).
        out: results folder; ``SUBMISSION/results`` by default.
        workers: processes of one thread each (1 = in this process).
        figures: draw Figs. 2-4 into ``out/figures``.
        progress: show a progress bar.
        recipes: a file of mixture ids (one a line): score only these (e.g. the recipes that two
            copies of a fixed AudioCaps set both hold); the whole submission is still checked, and
            results.json's fingerprint is that of the recipes scored.
        tracks: thresholds of the joint score (lusebench/benchmark/tracks.py).

    Returns:
        The results (results.json content, per-item table, folder).

    Raises:
        SubmissionError: listing every problem; nothing is written then.
        LusebenchError: when the dataset or submission folder cannot be read at all.
    """
    started = time.perf_counter()
    submission = Path(submission)
    out = submission / "results" if out is None else Path(out)
    dataset = load_dataset(data)
    scored = dataset if recipes is None else dataset.restrict(read_recipe_ids(Path(recipes)), str(recipes))
    if not submission.is_dir():  # before staging SUBMISSION/results, which would create it
        raise LusebenchError(f"submission folder not found: {submission}")
    # The output folder is checked (and staged beside itself) before any scoring.
    with replace_folder(out, owned=RESULTS_ENTRIES) as staging:
        checked, outcomes = _checked(submission, dataset, workers, progress, score=True,
                                     scored=None if recipes is None else set(scored.mixture_ids))
        by_id = {mixture_id: record for mixture_id, _, record in outcomes}
        columns = ["mixture_id", "num_sources", "condition", "angular_separation_deg", "target_azimuth_deg"]
        # The target clip, where the set names it, groups the items for the by-clip interval.
        columns += [c for c in (CLIP_COLUMN, ABSENT_COLUMN) if c in dataset.manifest.columns]
        items = scored.manifest[columns].copy()
        records = pd.DataFrame([by_id.get(m, {}) for m in items["mixture_id"]], index=items.index)
        items = add_track_columns(pd.concat([items, records], axis=1), tracks)
        summary = {
            "schema_version": SCHEMA_VERSION,
            "lusebench_version": __version__,
            "git_commit": git_commit(),
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dataset": scored.describe(),
            "system": checked.system.to_dict(),
            "tracks": tracks.to_dict(),
            "metrics": aggregate(items),
        }
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        results = write_results(staging, summary, items)
        if figures:
            from lusebench.benchmark.figures import draw_figures  # matplotlib only when drawing

            draw_figures([results], staging / FIGURES_DIR)
    logger.info("scored %d items of %s in %.1f s -> %s", len(items), checked.system.name, summary["wall_time_s"], out)
    return dataclasses.replace(results, folder=out)


def rescore(results: Path, tracks: TrackOptions = TrackOptions(), *, figures: bool = True) -> Results:
    """Recompute the tracks' columns (tracks.py) and every aggregate of a results folder from its items.csv.

    No audio is read, so this works without the submission or the data: it re-scores a results
    folder with other joint thresholds, or brings one written before the tracks (schema 1) to the
    current schema. Metrics that need the audio (SI-SNR, absent-item levels, ...) keep their
    per-item values; absent-target figures need a table written with them (``said_absent``).

    Args:
        results: the results folder (or its results.json).
        tracks: thresholds of the joint score.
        figures: redraw ``figures/`` (Fig. 5 included).

    Returns:
        The rewritten results.

    Raises:
        LusebenchError: the folder or its item table cannot be read.
    """
    old = load_results(results)
    items = add_track_columns(old.items, tracks)
    summary = {key: value for key, value in old.summary.items() if key not in ("items", "metrics", "tracks")}
    summary.update(schema_version=SCHEMA_VERSION, tracks=tracks.to_dict(), metrics=aggregate(items))
    rewritten = write_results(old.folder, summary, items)
    if figures:
        from lusebench.benchmark.figures import draw_figures  # matplotlib only when drawing

        draw_figures([rewritten], old.folder / FIGURES_DIR)
    logger.info("re-scored %d items of %s -> %s", len(items), rewritten.name, old.folder)
    return rewritten
