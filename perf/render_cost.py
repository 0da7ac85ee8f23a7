"""CPU cost of rendering and of building BRIRs, this tree against another git ref (main by default).

Each tree runs in a fresh process (alternated, ``--rounds`` times) and reports CPU milliseconds
(user + system, one thread) per call: rendering three 10 s sources through HRIRs and through
16,000-tap filters (BRIR-like), and building the BRIRs of three drawn rooms' sources. Issue 22
moved these from torch's FFTs to scipy.fft so that simulation does not import torch; this is the
price of that move, measured against the torch code it replaced.

    python perf/render_cost.py --rounds 2 --baseline main
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_startup import ROOT, _export

_PROBE = """
import json, time
import numpy as np
from lusebench.simulation import rooms
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer
try:  # the torch renderer of older trees ran on one thread in simulate
    import torch
    torch.set_num_threads(1)
except ImportError:
    pass

def cpu_ms(function, repeats):
    function()
    start = time.process_time()
    for _ in range(repeats):
        function()
    return (time.process_time() - start) / repeats * 1e3

renderer = Renderer(load_hrtf("kemar", 16000))
rng = np.random.default_rng(0)
dry = (0.05 * rng.standard_normal((3, 160000))).astype(np.float32)
azimuths = rng.uniform(0, 360, 3)
filters = (rng.standard_normal((3, 2, 16000)) * np.exp(-np.arange(16000) / 3000)).astype(np.float32)
figures = {"HRIR render": cpu_ms(lambda: renderer.render(dry, azimuths), 40),
           "16k-tap render": cpu_ms(lambda: renderer.render_filters(dry, filters), 20)}
sphere = rooms.load_sphere_hrirs("kemar", 16000)
sphere.spectra
ranges = rooms.RoomRanges()
specs = []
for k in range(3):
    draw = np.random.default_rng([2025, k])
    room = rooms.draw_room(draw, tuple(float(a) for a in draw.uniform(0, 360, 3)), ranges)
    absorption, order = rooms.room_absorption(room, ranges.max_image_order, 16000)
    specs += [(room.dims_m, absorption, order, room.listener_m, source) for source in room.sources_m]
start = time.process_time()
for spec in specs:
    rooms.compute_brir(*spec, sphere)
figures["BRIR build per source"] = (time.process_time() - start) / len(specs) * 1e3
print(json.dumps(figures))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default="main", help="git ref to compare with (default main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trees = {"this tree": ROOT, args.baseline: _export(args.baseline, scratch)}
        figures: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
        for _ in range(args.rounds):
            for label, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
                done = subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True, capture_output=True,
                                      text=True, cwd=scratch)
                figures[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for name in figures["this tree"][0]:
            shown = "; ".join(f"{label} {min(r[name] for r in runs):.1f}-{max(r[name] for r in runs):.1f} ms"
                              for label, runs in figures.items())
            print(f"{name:>22} (CPU per call): {shown}  (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
