"""The whole loop on the embedded defaults, in about a minute: what lusebench is for.

simulate a small 3-source test set -> reference submissions (mixture, oracle, random DoA) ->
evaluate each with its figures -> a leaderboard page beside the paper's Table 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lusebench.benchmark.evaluate import evaluate
from lusebench.benchmark.reference import REFERENCE_KINDS, write_reference
from lusebench.leaderboard import build_leaderboard
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOutputs:
    data: Path
    results: tuple[Path, ...]
    leaderboard: Path


def run_demo(out: Path | str, num_mixtures: int = 40, duration_s: float = 4.0, workers: int = 2, progress: bool = True) -> DemoOutputs:
    """Render, submit, score and rank into ``out`` (re-running resumes the rendering).

    Args:
        out: folder for ``data/``, ``submissions/<kind>/`` (each with ``results/``) and ``site/``.
        num_mixtures: mixtures of the demo test set.
        duration_s: their length in seconds.
        workers: evaluation processes.
        progress: show progress bars.
    """
    out = Path(out)
    data = out / "data" / "demo-3src"  # not the fixed benchmark set: 40 x 4 s, and it says so
    # minicaps, not the benchmark's corpus: its small test split opens and renders in a fraction of the time.
    config = SimulationConfig(num_sources=3, split="test", num_mixtures=num_mixtures, duration_s=duration_s, corpus="minicaps")
    simulate(config, data, progress=progress)
    results = []
    for kind in REFERENCE_KINDS:
        submission = write_reference(kind, data, out / "submissions" / kind, progress=progress)
        scored = evaluate(submission, data, workers=workers, progress=progress)
        results.append(scored.folder / "results.json")
    board = build_leaderboard(results, out / "site")
    return DemoOutputs(data=data, results=tuple(results), leaderboard=board.html)
