"""The paper's Table 1 at a chosen scale, in one command: train, infer, evaluate all five systems.

``lusebench replicate --sources 2 --preset small --out runs/table1-small`` renders the fixed
``test-{N}src`` set and one shared val set at the preset's clip length, then for every system runs
``train-baseline`` -> ``infer`` (over the 10 s test mixtures, windowed) -> ``evaluate`` as
separate processes, ``jobs`` systems at a time, and builds the leaderboard of the results.

Every stage is skipped when its output is complete (a finished run, a submission with its
``system.json``, which ``infer`` writes last, a ``results.json``), so an interrupted replication
resumes where it stopped, and a run already trained by hand is reused. Systems are independent
and each is seeded, so ``jobs`` changes the wall time, not the numbers. Model selection uses
the val set only; the test set is read by ``infer`` and ``evaluate`` alone.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lusebench.baselines.systems import SYSTEMS, system_config
from lusebench.baselines.train import TrainConfig, val_simulation_config
from lusebench.errors import LusebenchError
from lusebench.leaderboard import build_leaderboard
from lusebench.simulation.config import BENCHMARK_CORPUS, BENCHMARK_SETS
from lusebench.simulation.gm import load_soundfont
from lusebench.simulation.gmcaps import GENERATOR_VERSION, build_gmcaps
from lusebench.simulation.writer import simulate

log = logging.getLogger(__name__)

SYSTEM_ORDER = tuple(SYSTEMS)  # the registry's order, which is Table 1's


@dataclass(frozen=True)
class ReplicateConfig:
    """One replication of Table 1.

    Attributes:
        num_sources: 2 or 3 (the fixed test sets).
        preset: model and recipe size of every system.
        systems: which systems, in order.
        jobs: systems trained and scored at once, each in its own process with
            ``cpu_count // jobs`` threads.
        seed: training seed of every system.
        test_data: a rendered test set to score on; the fixed ``test-{N}src`` when None.
        eval_workers: scoring processes of each ``evaluate``.
        gm_clips: when above 0, render a gmcaps corpus of this many clips (``data/gmcaps-N``) and
            train on ``corpus`` plus it; validation stays on ``corpus`` alone.
        corpus: the corpus trained and validated on (its train and val splits); by default the
            one the fixed test sets are drawn from (their test split).
        query_pairs, select_on: passed to every ``train-baseline`` (None keeps the preset's):
            recipe A of the committed small rows is ``query_pairs=False, select_on="loss"``.
    """

    num_sources: int = 3
    preset: str = "paper"
    systems: tuple[str, ...] = SYSTEM_ORDER
    jobs: int = 1
    seed: int = 0
    test_data: Path | None = None
    eval_workers: int = 2
    gm_clips: int = 0
    corpus: str = BENCHMARK_CORPUS
    query_pairs: bool | None = None
    select_on: str | None = None

    def __post_init__(self) -> None:
        if self.num_sources not in (2, 3):
            raise LusebenchError(f"--sources must be 2 or 3 (the fixed test sets), got {self.num_sources}")
        unknown = [s for s in self.systems if s not in SYSTEM_ORDER]
        if unknown or not self.systems:
            raise LusebenchError(f"unknown system(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SYSTEM_ORDER)}")
        if self.jobs < 1 or self.eval_workers < 1:
            raise LusebenchError(f"--jobs and --eval-workers must be at least 1, got {self.jobs} and {self.eval_workers}")
        if self.select_on not in (None, "loss", "metrics"):
            raise LusebenchError(f"--select-on must be loss or metrics, got {self.select_on!r}")
        if self.gm_clips < 0:
            raise LusebenchError(f"--gm-clips must be 0 (none) or more, got {self.gm_clips}")


def _stage(command: list[str], log_path: Path, threads: int) -> float:
    """Runs one ``lusebench`` stage as a process (output to ``log_path``); returns its wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "a") as handle:
        code = subprocess.call([sys.executable, "-m", "lusebench.cli", *command], stdout=handle, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise LusebenchError(f"`lusebench {command[0]}` failed (exit {code}); see {log_path}")
    return time.perf_counter() - started


def _pipeline(system: str, config: ReplicateConfig, out: Path, val: Path, test: Path, corpus: str, threads: int) -> Path:
    run, submission, results = out / "runs" / system, out / "submissions" / system, out / "results" / system
    logs = out / "logs"
    train = ["train-baseline", "--system", system, "--sources", str(config.num_sources), "--preset", config.preset,
             "--corpus", corpus, "--val-data", str(val), "--out", str(run), "--no-progress"]
    if config.query_pairs is not None:
        train += ["--query-pairs" if config.query_pairs else "--no-query-pairs"]
    if config.select_on is not None:
        train += ["--select-on", config.select_on]
    # A run folder from before is resumed: finished if it was cut short, else left as it is.
    train += ["--resume"] if (run / "last.pt").is_file() else ["--seed", str(config.seed)]
    log.info("%s: training (log %s)", system, logs / f"{system}.train.log")
    seconds = {"train": _stage(train, logs / f"{system}.train.log", threads)}
    best = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    if not (submission / "system.json").is_file():
        log.info("%s: inference on %s", system, test)
        seconds["infer"] = _stage(["infer", "--checkpoint", str(best), "--data", str(test), "--out", str(submission), "--no-progress"],
               logs / f"{system}.infer.log", threads)
    if not (results / "results.json").is_file():
        log.info("%s: evaluation", system)
        seconds["evaluate"] = _stage(["evaluate", str(submission), "--data", str(test), "--out", str(results), "--workers",
                str(config.eval_workers), "--no-progress"], logs / f"{system}.evaluate.log", threads)
    # One line per call, with the wall seconds of the stages it ran: a resumed replication adds
    # the time of what it redid (a finished run's train stage only checks, in seconds).
    with open(logs / f"{system}.seconds.jsonl", "a") as handle:
        handle.write(json.dumps({"threads": threads, **seconds}) + "\n")
    return results / "results.json"


def replicate(config: ReplicateConfig, out: Path | str, progress: bool = True) -> Path:
    """Trains, infers, evaluates every system of ``config`` into ``out`` and builds ``out/site``.

    Returns:
        The leaderboard page.

    Raises:
        LusebenchError: a stage failed (its log is named), or a bad configuration.
    """
    out = Path(out)
    if config.preset == "paper":
        import torch

        if not torch.cuda.is_available():
            log.warning("the paper preset trains at ~4 s per mixture per step on a CPU: --preset small fits one "
                        "(about 20 min per system)")
    if config.gm_clips:
        load_soundfont()  # a missing synthesizer fails here, before an hour of rendering and training
    test = config.test_data
    if test is None:
        name = f"test-{config.num_sources}src"
        test = out / "data" / name
        simulate(BENCHMARK_SETS[name].config(), test, progress=progress)
    model = system_config(config.systems[0], config.preset)  # every system of a preset has the same clips
    recipe = TrainConfig.for_preset(config.preset, system=config.systems[0], num_sources=config.num_sources, corpus=config.corpus)
    val = out / "data" / f"val-{config.num_sources}src-{model.clip_samples}"
    simulate(val_simulation_config(recipe, model.sample_rate, model.clip_samples / model.sample_rate), val, progress=progress)

    corpus = config.corpus
    if config.gm_clips:
        gmcaps = out / "data" / f"gmcaps-{config.gm_clips}"
        if not _gmcaps_complete(gmcaps, config.gm_clips):
            build_gmcaps(gmcaps, config.gm_clips, workers=os.cpu_count() or 1, progress=progress)
        corpus = f"{config.corpus}+audiocaps:{gmcaps}"

    threads = max(1, (os.cpu_count() or 1) // config.jobs)
    with ThreadPoolExecutor(config.jobs) as pool:
        futures = [pool.submit(_pipeline, system, config, out, val, test, corpus, threads) for system in config.systems]
        results = [future.result() for future in futures]
    board = build_leaderboard(results, out / "site")
    return board.html


def _gmcaps_complete(folder: Path, clips: int) -> bool:
    """Whether ``folder`` holds a finished gmcaps corpus of ``clips`` clips of seed 0 (it is written whole or not at all)."""
    try:
        written = json.loads((folder / "gmcaps.json").read_text())
    except (OSError, ValueError):
        return False
    return written.get("clips") == clips and written.get("seed") == 0 and written.get("generator_version") == GENERATOR_VERSION


__all__ = ["ReplicateConfig", "SYSTEM_ORDER", "replicate"]
