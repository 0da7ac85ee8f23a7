"""Speed of the reverberant condition, each figure beside its alternative measured in the same run.

Prints, on one core at 16 kHz with the embedded MIT KEMAR set:
  * BRIR build time per room (absorption calibration on the target's image sources) and per
    source position (image sources + binaural synthesis + DRR), ours against the previous
    synthesis (one FFT of the whole BRIR per used direction, HRIR spectra recomputed per source,
    kept below as the baseline) on the same rooms, alternated, with the largest difference
    between their BRIRs; and the read time of the same entries from the bank;
  * rendering 10 s, 3-source mixtures with BRIRs against the HRIR path, alternated, same dry
    signals; and the FFTs alone of each path (the BRIR path at its fastest block size): the BRIR
    path's over the whole HRIR render is the floor of the render ratio for exact FFT convolution;
  * the minutes to build the ``test-3src-reverb`` bank (1,000 mixtures, 3,000 BRIRs), estimated
    from rendering its first ``--bank-mixtures`` mixtures into an empty bank with 1 and with 2
    workers (``lusebench simulate --benchmark test-3src-reverb --workers N`` builds the bank as
    it renders; each worker builds the BRIRs of its own mixtures).

    python perf/rooms_speed.py [--rooms 6] [--repeats 20] [--bank-mixtures 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import scipy.fft
import torch
from scipy.signal import sosfiltfilt

from lusebench.simulation import rooms
from lusebench.simulation.brir_bank import BrirBank, BrirSpec
from lusebench.simulation.config import BENCHMARK_SETS
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer, _long_filter_fft_size
from lusebench.simulation.writer import simulate


def previous_binaural_rir(images: rooms.ImageSources, damping: np.ndarray, listener_m: tuple[float, ...],
                          sphere: rooms.SphereHrirs) -> np.ndarray:
    """The synthesis before the overlap-save one (lusebench 022c895), the baseline of the build time:
    per chunk of 64 directions, one train per direction and one FFT of the whole BRIR's length of
    each train and of each HRIR, summed in float64."""
    import pyroomacoustics as pra
    from pyroomacoustics import libroom

    listener = np.asarray(listener_m, dtype=np.float64)
    relative = images.positions - listener[:, None]  # (3, K)
    distance = np.linalg.norm(relative, axis=0)
    direction = sphere.nearest(relative.T)  # (K,)
    samples = distance / rooms.SPEED_OF_SOUND * sphere.sample_rate
    whole = np.floor(samples).astype(np.int64)
    fdl = int(pra.constants.get("frac_delay_length"))
    fractions = np.zeros((len(samples), fdl), dtype=np.float32)
    libroom.fractional_delay(fractions, (samples - whole).astype(np.float32), pra.constants.get("sinc_lut_granularity"), 1)
    taps = fractions.astype(np.float64) * (damping / distance)[:, None]  # (K, fdl)
    num_taps = sphere.hrirs.shape[-1]
    train_length = int(whole.max()) + fdl
    length = train_length + num_taps - 1
    nfft = scipy.fft.next_fast_len(length, real=True)
    used = np.unique(direction)
    spectrum = np.zeros((2, nfft // 2 + 1), dtype=np.complex128)
    for start in range(0, len(used), 64):
        chunk = used[start : start + 64]
        slot = np.full(len(sphere.hrirs), -1)
        slot[chunk] = np.arange(len(chunk))
        mine = slot[direction] >= 0
        flat = (slot[direction[mine], None] * train_length + whole[mine, None] + np.arange(fdl)).ravel()
        trains = np.bincount(flat, weights=taps[mine].ravel(), minlength=len(chunk) * train_length)
        trains = trains.reshape(len(chunk), train_length)
        hrir_spectra = torch.fft.rfft(torch.from_numpy(sphere.hrirs[chunk].astype(np.float32)), n=nfft)  # (C, 2, F)
        train_spectra = torch.fft.rfft(torch.from_numpy(trains.astype(np.float32)), n=nfft)  # (C, F)
        spectrum += torch.einsum("cf,cef->ef", train_spectra, hrir_spectra).numpy()
    brir = scipy.fft.irfft(spectrum, n=nfft)[:, :length]
    sos = rooms._highpass(sphere.sample_rate)
    return sosfiltfilt(sos, brir, axis=-1) if sos is not None else brir


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def build_speed(sphere: rooms.SphereHrirs, num_rooms: int, sr: int) -> np.ndarray:
    """Per-room and per-source build times, ours vs the previous synthesis; returns filters for rendering."""
    ranges = rooms.RoomRanges()
    room_times, ours, previous, read_times, lengths, rt60s, errors = [], [], [], [], [], [], []
    filters = None
    with tempfile.TemporaryDirectory() as bank_dir:
        bank = BrirBank(bank_dir, sphere)
        for k in range(num_rooms):
            rng = np.random.default_rng([2025, k])
            room = rooms.draw_room(rng, tuple(float(a) for a in rng.uniform(0, 360, 3)), ranges)
            elapsed, (absorption, order) = _timed(lambda: rooms.room_absorption(room, ranges.max_image_order, sr))
            room_times.append(elapsed)
            irs = []
            for source in room.sources_m:
                spec = BrirSpec(room.dims_m, absorption, order, room.listener_m, source)
                args = (spec.dims_m, spec.absorption, spec.image_order, spec.listener_m, spec.source_m, sphere)
                with mock.patch.object(rooms, "binaural_rir", previous_binaural_rir):
                    elapsed, before = _timed(lambda: rooms.compute_brir(*args))
                previous.append(elapsed)
                elapsed, brir = _timed(lambda: bank.get(spec))  # computes and stores it
                ours.append(elapsed)
                errors.append(np.abs(brir.ir - before.ir).max() / np.abs(before.ir).max())
                read_times.append(_timed(lambda: bank.get(spec))[0])
                irs.append(brir.ir)
            lengths += [ir.shape[-1] for ir in irs]
            rt60s.append(room.rt60_s)
            if filters is None or max(ir.shape[-1] for ir in irs) > filters.shape[-1]:
                length = max(ir.shape[-1] for ir in irs)
                filters = np.stack([np.pad(ir, ((0, 0), (0, length - ir.shape[-1]))) for ir in irs])
    print(f"rooms: {num_rooms}, RT60 {min(rt60s):.2f}-{max(rt60s):.2f} s, BRIR length {min(lengths)}-{max(lengths)} taps")
    print(f"BRIR bank build, per room (absorption calibration): {1000 * np.mean(room_times):7.1f} ms")
    print(f"BRIR bank build, per source position: ours {1000 * np.mean(ours):6.1f} ms (max {1000 * max(ours):.0f}) | "
          f"previous synthesis {1000 * np.mean(previous):6.1f} ms (max {1000 * max(previous):.0f}) | "
          f"{np.mean(previous) / np.mean(ours):.2f}x faster; BRIRs differ by at most "
          f"{20 * np.log10(max(errors)):.0f} dB of the peak")
    print(f"BRIR bank read, per source position: {1000 * np.mean(read_times):7.1f} ms "
          f"({np.mean(ours) / np.mean(read_times):.0f}x faster than building)")
    return filters


def render_speed(filters: np.ndarray, repeats: int, sr: int) -> float:
    """HRIR and BRIR rendering alternated call by call, so that both see the same load; returns
    the HRIR render's median seconds."""
    renderer = Renderer(load_hrtf("kemar", sr))
    rng = np.random.default_rng(0)
    dry = (0.05 * rng.standard_normal((3, 10 * sr))).astype(np.float32)
    azimuths = np.array([10.0, 100.0, 250.0])
    hrir, brir = [], []
    for _ in range(repeats + 1):  # the first of each is a warm-up
        hrir.append(_timed(lambda: renderer.render(dry, azimuths))[0])
        brir.append(_timed(lambda: renderer.render_filters(dry, filters))[0])
    hrir_s, brir_s = np.median(hrir[1:]), np.median(brir[1:])
    print(f"render 10 s x 3 sources (median of {repeats}, alternated): HRIRs ({renderer.filter_length} taps) "
          f"{1 / hrir_s:6.1f} mix/s ({1e3 * hrir_s:.2f} ms) | BRIRs ({filters.shape[-1]} taps) {1 / brir_s:6.1f} mix/s "
          f"({1e3 * brir_s:.2f} ms) = {brir_s / hrir_s:.2f}x the HRIR time")
    return float(hrir_s)


def fft_floor(filters: np.ndarray, repeats: int, sr: int, hrir_render_s: float) -> None:
    """The transforms alone of each path, timed the same way: a lower bound of any overlap-add.

    The HRIR path's transforms at its own size (interpolated spectra: an inverse and a forward
    transform per source and ear; per block: one forward, two inverse); the BRIR path's at every
    size 2^k and 3 * 2^k that fits the filter (2 filter transforms per source, then the same per
    block), its fastest size kept. The BRIR path's transforms over the whole HRIR render
    (``hrir_render_s``) is the least the BRIR/HRIR render ratio can be with exact FFT convolution
    of these filters, whatever the rest of the BRIR path costs.
    """
    renderer = Renderer(load_hrtf("kemar", sr))
    sources, samples, length = 3, 10 * sr, filters.shape[-1]

    def transforms(nfft: int, block: int, interpolated: bool) -> float:
        blocks = -(-samples // block)
        signal = torch.zeros(sources, blocks, nfft)
        products = torch.zeros(sources, 2, blocks, nfft // 2 + 1, dtype=torch.complex64)
        taps = torch.zeros(sources, 2, nfft)
        filter_spectra = torch.zeros(sources, 2, nfft // 2 + 1, dtype=torch.complex64)

        def run() -> None:
            if interpolated:  # the HRIR path: interpolated spectra back to a causal FIR
                torch.fft.irfft(filter_spectra, n=nfft)
            torch.fft.rfft(taps)
            torch.fft.rfft(signal)
            torch.fft.irfft(products, n=nfft)

        return float(np.median([_timed(run)[0] for _ in range(repeats + 1)][1:]))

    hrir = transforms(renderer.nfft, renderer.block, interpolated=True)
    sizes = [size for k in range(12, 19) for size in (1 << k, 3 << (k - 1)) if 2 * length <= size <= 4 * samples]
    brir = {size: transforms(size, size - length + 1, interpolated=False) for size in sizes}
    best = min(brir, key=brir.get)
    print(f"transforms only, 10 s x 3 sources: HRIR path {1e3 * hrir:.2f} ms (nfft {renderer.nfft}); BRIR path "
          f"{1e3 * brir[best]:.2f} ms at its fastest nfft {best} (render uses {_long_filter_fft_size(length, samples)}) "
          f"= {brir[best] / hrir:.2f}x; the BRIR transforms alone are {brir[best] / hrir_render_s:.2f}x the whole HRIR "
          f"render: the floor of the BRIR/HRIR render ratio with exact FFT convolution")


def bank_minutes(num: int) -> None:
    """Minutes to build the test-3src-reverb bank, from its first ``num`` mixtures into empty banks."""
    benchmark = BENCHMARK_SETS["test-3src-reverb"]
    config = replace(benchmark.config(), num_mixtures=num)  # same seed: the set's first mixtures and rooms
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            elapsed, _ = _timed(lambda: simulate(config, Path(tmp) / "set", workers=workers, progress=False,
                                                 brir_bank=Path(tmp) / "bank"))
            built = len(list((Path(tmp) / "bank").rglob("*.npy")))
        minutes = elapsed / num * benchmark.num_mixtures / 60
        print(f"test-3src-reverb, first {num} mixtures ({built} BRIRs) into an empty bank, --workers {workers}: "
              f"{elapsed:5.1f} s (start-up included) -> ~{minutes:4.1f} min for the whole set's "
              f"{benchmark.num_mixtures * benchmark.num_sources} BRIRs; load {os.getloadavg()[0]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--bank-mixtures", type=int, default=60, help="mixtures of the bank estimate (0: skip it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sr = 16000
    print(f"load average {os.getloadavg()}")
    elapsed, sphere = _timed(lambda: rooms.load_sphere_hrirs("kemar", sr))
    print(f"HRTF sphere: {len(sphere.directions)} directions x {sphere.hrirs.shape[-1]} taps, loaded in {elapsed:.2f} s; "
          f"HRIR spectra cached in {_timed(lambda: sphere.spectra)[0]:.2f} s")
    filters = build_speed(sphere, args.rooms, sr)
    fft_floor(filters, args.repeats, sr, render_speed(filters, args.repeats, sr))
    if args.bank_mixtures:
        bank_minutes(args.bank_mixtures)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
