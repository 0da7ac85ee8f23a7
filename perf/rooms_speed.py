"""Speed of the reverberant condition: BRIR bank builds, and rendering with BRIRs vs HRIRs.

Prints, on one core at 16 kHz with the embedded MIT KEMAR set:
  * BRIR build time per room (absorption calibration on the target's image sources) and per
    source position (image sources + grouped binaural synthesis), for rooms drawn from the
    default ranges, and the read time of the same entries from the bank;
  * rendering 10 s, 3-source mixtures per second with BRIRs (~0.5-1 s long) against the
    512-tap-class HRIR path, in the same run, same dry signals.

    python perf/rooms_speed.py [--rooms 6] [--repeats 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from lusebench.simulation.brir_bank import BrirBank, BrirSpec
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer
from lusebench.simulation.rooms import RoomRanges, draw_room, load_sphere_hrirs, room_absorption
from simulate_speed import _rate  # this folder's sibling script, on sys.path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sr = 16000
    start = time.perf_counter()
    sphere = load_sphere_hrirs("kemar", sr)
    print(f"HRTF sphere: {len(sphere.directions)} directions x {sphere.hrirs.shape[-1]} taps, "
          f"loaded in {time.perf_counter() - start:.2f} s")
    ranges = RoomRanges()
    room_times, source_times, read_times, lengths, rt60s = [], [], [], [], []
    filters = None
    with tempfile.TemporaryDirectory() as bank_dir:
        bank = BrirBank(bank_dir, sphere)
        for k in range(args.rooms):
            rng = np.random.default_rng([2025, k])
            room = draw_room(rng, tuple(float(a) for a in rng.uniform(0, 360, 3)), ranges)
            start = time.perf_counter()
            absorption, order = room_absorption(room, ranges.max_image_order, sr)
            room_times.append(time.perf_counter() - start)
            specs = [BrirSpec(room.dims_m, absorption, order, room.listener_m, s) for s in room.sources_m]
            irs = []
            for spec in specs:
                start = time.perf_counter()
                irs.append(bank.get(spec).ir)
                source_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                bank.get(spec)
                read_times.append(time.perf_counter() - start)
            lengths += [ir.shape[-1] for ir in irs]
            rt60s.append(room.rt60_s)
            if filters is None or max(ir.shape[-1] for ir in irs) > filters.shape[-1]:
                length = max(ir.shape[-1] for ir in irs)
                filters = np.stack([np.pad(ir, ((0, 0), (0, length - ir.shape[-1]))) for ir in irs])
    print(f"rooms: {args.rooms}, RT60 {min(rt60s):.2f}-{max(rt60s):.2f} s, BRIR length {min(lengths)}-{max(lengths)} taps")
    print(f"BRIR bank build, per room (absorption calibration): {1000 * np.mean(room_times):7.1f} ms")
    print(f"BRIR bank build, per source position:               {1000 * np.mean(source_times):7.1f} ms "
          f"(max {1000 * max(source_times):.0f} ms)")
    print(f"BRIR bank read, per source position:                {1000 * np.mean(read_times):7.1f} ms "
          f"({np.mean(source_times) / np.mean(read_times):.0f}x faster than building)")

    renderer = Renderer(load_hrtf("kemar", sr))
    rng = np.random.default_rng(0)
    dry = (0.05 * rng.standard_normal((3, 10 * sr))).astype(np.float32)
    azimuths = np.array([10.0, 100.0, 250.0])
    hrir_rate = _rate(lambda: renderer.render(dry, azimuths), args.repeats)
    brir_rate = _rate(lambda: renderer.render_filters(dry, filters), args.repeats)
    print(f"render 10 s x 3 sources, HRIRs ({renderer.filter_length} taps):  {hrir_rate:7.1f} mixtures/s")
    print(f"render 10 s x 3 sources, BRIRs ({filters.shape[-1]} taps): {brir_rate:7.1f} mixtures/s "
          f"({hrir_rate / brir_rate:.2f}x the HRIR time)")


if __name__ == "__main__":
    main()
