"""Speed and memory of the simulation, against a plain per-channel scipy convolution.

Prints, for 10 s, 16 kHz, 3-source mixtures with the embedded MIT KEMAR HRIRs on one core:
rendering alone (ours vs a loop of scipy.signal.fftconvolve per source and ear, same inputs),
FLAC encoding, `simulate` end to end with 1 and 2 workers, dynamic mixing per worker, and
the peak memory of `simulate` at N and 10 N mixtures (it must stay flat). The load average is
printed before and after: on a shared machine compare the ratios measured in the same run.

    python perf/simulate_speed.py [--num 1000] [--memory-num 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import fftconvolve

from lusebench.io import encode_audio
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.dynamic import DynamicMixingDataset
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer
from lusebench.simulation.writer import simulate


def _rate(function, repeats: int, warmup: int = 1) -> float:
    """Calls per second of ``function`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return repeats / (time.perf_counter() - start)


def render_speed(repeats: int) -> None:
    renderer = Renderer(load_hrtf("kemar", 16000))
    rng = np.random.default_rng(0)
    dry = (0.05 * rng.standard_normal((3, 160000))).astype(np.float32)
    azimuths = rng.uniform(0, 360, 3)
    hrirs = renderer.hrirs(azimuths)  # the very filters ours applies, for a like-for-like baseline

    def ours() -> None:
        renderer.render(dry, rng.uniform(0, 360, 3))

    def scipy_loop() -> None:
        images = np.stack([[fftconvolve(dry[s], hrirs[s, e])[:160000] for e in range(2)] for s in range(3)])
        images.sum(axis=0)

    ours_rate, scipy_rate = _rate(ours, repeats), _rate(scipy_loop, max(repeats // 4, 5))
    print(f"render (3 src, 10 s, 1 thread): ours {ours_rate:7.1f} mix/s ({1e3 / ours_rate:5.2f} ms) | "
          f"scipy fftconvolve loop {scipy_rate:7.1f} mix/s ({1e3 / scipy_rate:5.2f} ms) | ratio {ours_rate / scipy_rate:.1f}x")
    image = renderer.render(dry, azimuths).mixture
    flac_rate = _rate(lambda: encode_audio(image, 16000, "flac"), repeats)
    print(f"FLAC encode (2 ch, 10 s, 24 bit): {1e3 / flac_rate:.2f} ms per file")


def simulate_speed(num: int) -> None:
    config = SimulationConfig(num_mixtures=num, seed=123)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            simulate(config, Path(tmp) / f"w{workers}", workers=workers, progress=False)
            elapsed = time.perf_counter() - start
            print(f"simulate {num} x 10 s 3-src mixtures, mixture + target FLAC, --workers {workers}: "
                  f"{num / elapsed:6.1f} mix/s ({elapsed:.1f} s, start-up included)")


def dynamic_speed(repeats: int, warmup: int) -> None:
    dataset = DynamicMixingDataset(SimulationConfig(split="train", num_mixtures=10_000))
    counter = iter(range(10_000))
    # A worker decodes each clip once (the corpus keeps decoded clips); over an epoch that is
    # start-up, so the warm-up draws enough mixtures to have decoded the embedded train split.
    rate = _rate(lambda: dataset[next(counter)], repeats, warmup)
    print(f"dynamic mixing (3 src, 10 s, 1 thread, after {warmup} warm-up items): {rate:6.1f} mix/s per worker")


def _peak_rss_mb(num: int) -> float:
    code = (
        "import resource, sys, tempfile, torch\n"
        "from lusebench.simulation.config import SimulationConfig\n"
        "from lusebench.simulation.writer import simulate\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        f"    simulate(SimulationConfig(split='train', num_mixtures={num}, duration_s=0.5, num_sources=2), tmp + '/s', progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def memory(num: int) -> None:
    small, large = _peak_rss_mb(num), _peak_rss_mb(10 * num)
    print(f"peak RSS of simulate (train split, 0.5 s, 2 src): N={num}: {small:.0f} MB, N={10 * num}: {large:.0f} MB "
          f"(ratio {large / small:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=1000, help="mixtures for the end-to-end runs (start-up included)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls for the micro benchmarks")
    parser.add_argument("--dynamic-repeats", type=int, default=300, help="timed dynamic-mixing items")
    parser.add_argument("--dynamic-warmup", type=int, default=300, help="untimed dynamic-mixing items first")
    parser.add_argument("--memory-num", type=int, default=500, help="N of the memory test (and 10 N)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()}))
    render_speed(args.repeats)
    dynamic_speed(args.dynamic_repeats, args.dynamic_warmup)
    simulate_speed(args.num)
    memory(args.memory_num)
    print(json.dumps({"load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
