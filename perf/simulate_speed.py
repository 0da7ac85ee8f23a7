"""Speed and memory of the simulation, each figure beside its alternative measured in the same run.

Prints, for 10 s, 16 kHz, 3-source mixtures with the embedded MIT KEMAR HRIRs on one core:
rendering alone (ours vs a loop of scipy.signal.fftconvolve per source and ear, same inputs),
encoding one rendered 10 s stereo file as FLAC at every libFLAC level (time and size) against
float32 WAV, `simulate` end to end with 1 and 2 workers, FLAC against `--format wav` run after
run (interleaved, so both see the same load), dynamic mixing per worker, and the peak memory of
`simulate` at N and 10 N mixtures (it must stay flat). The load average is printed before and
after: on a shared machine compare the ratios measured in the same run.

    python perf/simulate_speed.py [--num 1000] [--rounds 2] [--memory-num 500]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import soundfile as sf
from scipy.signal import fftconvolve

from lusebench.io import FLAC_LEVEL, encode_audio
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.dynamic import DynamicMixingDataset
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer
from lusebench.simulation.writer import simulate

# The corpus the README's figures were measured on; the render's cost does not depend on it, clip reads do.
CORPUS = "minicaps"


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


def encode_speed(repeats: int) -> None:
    """encode_audio (ours, level FLAC_LEVEL) vs soundfile on the floats at every level vs WAV."""
    config = SimulationConfig(num_mixtures=4, seed=123, corpus=CORPUS)
    with tempfile.TemporaryDirectory() as tmp:  # real mixtures: noise would not compress
        simulate(config, Path(tmp) / "s", progress=False)
        files = sorted((Path(tmp) / "s" / "audio").rglob("*.flac"))
        signals = [sf.read(path, dtype="float32")[0].T.copy() for path in files]

    def soundfile_floats(level: float | None) -> int:
        sizes = 0
        for signal in signals:
            buffer = io.BytesIO()
            sf.write(buffer, signal.T, 16000, subtype="PCM_24", format="FLAC", compression_level=level)
            sizes += len(buffer.getvalue())
        return sizes

    def per_file(function) -> tuple[float, float]:
        """(ms, kB) per file of function() -> total bytes."""
        rate = _rate(function, max(repeats // len(signals), 3))
        return 1e3 / rate / len(signals), function() / len(signals) / 1e3

    ours = per_file(lambda: sum(len(encode_audio(x, 16000, "flac")) for x in signals))
    wav = per_file(lambda: sum(len(encode_audio(x, 16000, "wav")) for x in signals))
    print(f"encode a rendered 10 s stereo file: ours (FLAC level {FLAC_LEVEL}) {ours[0]:5.2f} ms, {ours[1]:4.0f} kB | "
          f"WAV float32 {wav[0]:5.2f} ms, {wav[1]:4.0f} kB")
    default = per_file(lambda: soundfile_floats(None))
    print(f"  sf.write of the floats, libsndfile's default level (5): {default[0]:5.2f} ms, {default[1]:4.0f} kB "
          f"(ours: {default[0] / ours[0]:.2f}x faster, {ours[1] / default[1] - 1:+.1%} size)")
    for level in range(9):
        ms, kb = per_file(lambda: soundfile_floats(level / 8))
        print(f"  sf.write of the floats, level {level}: {ms:5.2f} ms, {kb:4.0f} kB")


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def simulate_speed(num: int, rounds: int) -> None:
    """simulate with FLAC and with WAV, alternated, so that both see the same load."""
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for workers in (1, 2):
                for audio_format in ("flac", "wav"):
                    config = SimulationConfig(num_mixtures=num, seed=123, audio_format=audio_format, corpus=CORPUS)
                    out = Path(tmp) / f"{audio_format}-w{workers}-r{round_}"
                    start, cpu = time.perf_counter(), _cpu_s()
                    simulate(config, out, workers=workers, progress=False)
                    elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu
                    rates.setdefault((audio_format, workers), []).append(num / elapsed)
                    print(f"simulate {num} x 10 s 3-src, mixture + target, {audio_format.upper():4s} --workers {workers}: "
                          f"{num / elapsed:6.1f} mix/s ({elapsed:5.1f} s, start-up included; "
                          f"{1e3 * cpu / num:5.1f} CPU-ms per mixture = {num / cpu:5.1f} mix/s per busy core) "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)
                    shutil.rmtree(out)
    for workers in (1, 2):
        flac, wav = np.median(rates["flac", workers]), np.median(rates["wav", workers])
        print(f"simulate --workers {workers}, median of {rounds}: FLAC {flac:6.1f} mix/s, WAV {wav:6.1f} mix/s "
              f"(FLAC at {flac / wav:.0%} of WAV)")


def dynamic_speed(repeats: int, warmup: int) -> None:
    dataset = DynamicMixingDataset(SimulationConfig(split="train", num_mixtures=10_000, corpus=CORPUS))
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
        f"    simulate(SimulationConfig(split='train', num_mixtures={num}, duration_s=0.5, num_sources=2, corpus={CORPUS!r}), tmp + '/s', progress=False)\n"
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
    parser.add_argument("--rounds", type=int, default=2, help="FLAC/WAV alternations of the end-to-end runs")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls for the micro benchmarks")
    parser.add_argument("--dynamic-repeats", type=int, default=300, help="timed dynamic-mixing items")
    parser.add_argument("--dynamic-warmup", type=int, default=300, help="untimed dynamic-mixing items first")
    parser.add_argument("--memory-num", type=int, default=500, help="N of the memory test (and 10 N)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()}))
    render_speed(args.repeats)
    encode_speed(args.repeats)
    dynamic_speed(args.dynamic_repeats, args.dynamic_warmup)
    simulate_speed(args.num, args.rounds)
    memory(args.memory_num)
    print(json.dumps({"load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
