"""What the bigger benchmark corpus costs: debcaps beside minicaps, measured in the same run.

Prints, for each embedded corpus: opening it (`open_corpus`: reading the three CSVs and listing
the audio folder), checking one split (`Corpus.check`, the pass `simulate` makes before writing:
the last frame of every clip), decoding every clip of the test split once (what a render's cache
fills with), and `simulate` of the first N mixtures of the fixed `test-3src` set drawn from it
(10 s, one worker; the renderer's cost does not depend on the corpus, the clip reads do). Rounds
alternate between the corpora so both see the same load; the load average is printed before and
after.

    python perf/corpus_speed.py [--num 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from lusebench.simulation.config import BENCHMARK_SETS
from lusebench.simulation.corpus import _cached_audio, open_corpus
from lusebench.simulation.writer import simulate

SETS = {"minicaps": "minicaps-test-3src", "debcaps": "test-3src"}


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(corpus_name: str, num: int, scratch: Path) -> dict[str, float]:
    _cached_audio.cache_clear()
    opened = {}
    figures = {"open": _seconds(lambda: opened.setdefault("c", open_corpus(corpus_name)))}
    corpus = opened["c"]
    figures["check test split"] = _seconds(lambda: corpus.check("test"))
    test = corpus.split("test")
    figures["decode test split"] = _seconds(lambda: [corpus._decode(clip) for clip in test])
    out = scratch / corpus_name
    shutil.rmtree(out, ignore_errors=True)
    config = BENCHMARK_SETS[SETS[corpus_name]].config(num_mixtures=num)
    figures[f"simulate {num} of {SETS[corpus_name]}"] = _seconds(lambda: simulate(config, out, progress=False))
    figures["clips (test)"] = len(test)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=50, help="mixtures simulated per round (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per corpus (default 3)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETS}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for name in SETS:
                results[name].append(measure(name, args.num, Path(scratch)))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for name, rounds in results.items():
        print(f"{name} ({int(rounds[0]['clips (test)'])} test clips), best of {args.rounds}:")
        for key in rounds[0]:
            if key != "clips (test)":
                print(f"  {key:32s} {min(r[key] for r in rounds) * 1000:9.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
