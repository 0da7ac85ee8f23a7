"""Synthetic dataset folders in the documented layout (docs/dataset-format.md), for tests.

The signals are noise bursts placed by a spherical-head model (Woodworth ITD, a broadband ILD),
so that localization and spatial metrics have a known answer without any HRTF or corpus file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lusebench import __version__
from lusebench.io import atomic_write, encode_audio, write_bytes, write_json

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_HEAD_RADIUS_M = 0.0875
_SPEED_OF_SOUND_M_S = 343.0
# Broadband level difference at 90 deg; a rough figure for a head at mid frequencies.
_MAX_ILD_DB = 10.0
_PEAK = 0.8


def spherical_head_cues(azimuth_deg: float) -> tuple[float, float]:
    """ITD and ILD of a far source on the horizontal plane, left ear minus right ear.

    Args:
        azimuth_deg: 0 = front, 90 = left (counter-clockwise).

    Returns:
        ``(itd_s, ild_db)``: positive when the left ear hears the source first / louder.
    """
    lateral = np.arcsin(np.sin(np.deg2rad(azimuth_deg)))  # front and back share their cues
    itd_s = _HEAD_RADIUS_M / _SPEED_OF_SOUND_M_S * (lateral + np.sin(lateral))
    return float(itd_s), float(_MAX_ILD_DB * np.sin(lateral))


def binaural_image(dry: np.ndarray, azimuth_deg: float, sample_rate: int) -> np.ndarray:
    """Place a mono signal at an azimuth with a fractional ITD and a broadband ILD.

    Args:
        dry: (time,) signal.
        azimuth_deg: source azimuth, 0 = front, 90 = left.
        sample_rate: Hz.

    Returns:
        (2, time) image, left then right.
    """
    itd_s, ild_db = spherical_head_cues(azimuth_deg)
    n = dry.shape[-1]
    n_fft = n + 64  # room for the delay so it does not wrap around
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    spectrum = np.fft.rfft(dry, n=n_fft)
    # The lagging ear is delayed by |ITD|; the leading ear is not delayed.
    delays_s = np.array([max(-itd_s, 0.0), max(itd_s, 0.0)])  # (2,)
    shifted = spectrum[None, :] * np.exp(-2j * np.pi * freqs[None, :] * delays_s[:, None])  # (2, F)
    image = np.fft.irfft(shifted, n=n_fft)[:, :n]  # (2, time)
    gains = 10.0 ** (np.array([ild_db, -ild_db]) / 40.0)
    return image * gains[:, None]


def _noise_burst(rng: np.random.Generator, num_samples: int) -> tuple[np.ndarray, float, float]:
    """A coloured noise burst with Hann fades, its onset and length as fractions of the item."""
    white = rng.standard_normal(num_samples + 16)
    taps = rng.uniform(0.2, 1.0, size=rng.integers(1, 8))  # random low-pass colouring
    coloured = np.convolve(white, taps / np.linalg.norm(taps), mode="valid")[:num_samples]
    length = int(num_samples * rng.uniform(0.5, 0.9))
    onset = int(rng.integers(0, num_samples - length + 1))
    envelope = np.zeros(num_samples)
    envelope[onset : onset + length] = np.hanning(length)
    burst = coloured * envelope
    return burst / np.sqrt(np.mean(burst**2)), onset, length


def _circular_distance_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def make_dataset(
    directory: Path,
    num_items: int = 4,
    num_sources: int = 2,
    sample_rate: int = 16000,
    seconds: float = 1.0,
    seed: int = 0,
    split: str = "test",
    audio_format: str = "flac",
    absent_share: float = 0.0,
) -> Path:
    """Write a synthetic dataset folder with the documented layout and manifest.

    Args:
        directory: folder to create (or fill).
        num_items: number of mixtures.
        num_sources: target + interferers per mixture (>= 2).
        sample_rate: Hz.
        seconds: length of every item.
        seed: base seed; item ``i`` uses ``np.random.default_rng([seed, split_code, i])``.
        split: ``train``, ``val`` or ``test``.
        audio_format: ``flac`` or ``wav``.
        absent_share: share of absent-target items (the last ``round(share * num_items)``): their
            mixture holds every source, their query clip none; no target file, no target azimuth.

    Returns:
        The dataset folder.
    """
    directory = Path(directory)
    num_samples = int(round(seconds * sample_rate))
    rows = []
    first_absent = num_items - int(round(absent_share * num_items))
    for index in range(num_items):
        absent = index >= first_absent
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
        mixture_id = f"{split}-{num_sources}src-{index:06d}"
        azimuths = rng.uniform(0.0, 360.0, size=num_sources)
        snrs = np.concatenate([[0.0], rng.uniform(-5.0, 5.0, size=num_sources - 1)])
        gains = 0.05 * 10.0 ** (-snrs / 20.0)
        bursts = [_noise_burst(rng, num_samples) for _ in range(num_sources)]
        images = np.stack(
            [binaural_image(gain * burst, az, sample_rate) for gain, (burst, _, _), az in zip(gains, bursts, azimuths)]
        )  # (sources, 2, time)
        mixture = images.sum(axis=0)
        mixture_gain = min(1.0, _PEAK / float(np.max(np.abs(mixture))))
        mixture_path = f"audio/mixture/{mixture_id}.{audio_format}"
        target_path = f"audio/target/{mixture_id}.{audio_format}"
        mixture_sha256 = write_bytes(directory / mixture_path, encode_audio(mixture * mixture_gain, sample_rate, audio_format))
        if absent:
            target_path = target_sha256 = None
        else:
            target_sha256 = write_bytes(directory / target_path, encode_audio(images[0] * mixture_gain, sample_rate, audio_format))
        clip_ids = [f"noise-{index}-{k}" for k in range(num_sources)]
        captions = [f"noise burst {k}" for k in range(num_sources)]
        rows.append(
            {
                "mixture_id": mixture_id,
                "split": split,
                "index": index,
                "num_sources": num_sources,
                "seed": seed,
                "sample_rate": sample_rate,
                "num_samples": num_samples,
                "duration_s": num_samples / sample_rate,
                "corpus": "synthetic",
                "caption": f"a query for sound {index}" if absent else captions[0],
                "target_clip_id": f"query-{index}" if absent else clip_ids[0],
                "target_azimuth_deg": math.nan if absent else float(azimuths[0]),
                "clip_ids": clip_ids,
                "captions": captions,
                "clip_offsets_s": [0.0] * num_sources,
                "onsets_s": [onset / sample_rate for _, onset, _ in bursts],
                "azimuths_deg": azimuths.tolist(),
                "snr_db": snrs.tolist(),
                "gains": (gains * mixture_gain).tolist(),
                "mixture_gain": mixture_gain,
                "angular_separation_deg": math.nan if absent else min(
                    _circular_distance_deg(azimuths[0], a) for a in azimuths[1:]
                ),
                "hrtf": "spherical-head",
                "hrtf_interpolation": "linear-aligned",
                "mixture_path": mixture_path,
                "target_path": target_path,
                "mixture_sha256": mixture_sha256,
                "target_sha256": target_sha256,
                "schema_version": 1,
                "lusebench_version": __version__,
            }
            | ({"target_absent": absent, "query_clip_id": f"query-{index}" if absent else ""} if absent_share else {})
        )
    manifest = pd.DataFrame(rows)
    atomic_write(directory / "manifest.parquet", lambda tmp: manifest.to_parquet(tmp, index=False))
    config = {
        "schema_version": 1,
        "lusebench_version": __version__,
        "num_sources": num_sources,
        "split": split,
        "num_mixtures": num_items,
        "seed": seed,
        "sample_rate": sample_rate,
        "duration_s": seconds,
        "corpus": "synthetic",
        "hrtf": "spherical-head",
        "audio_format": audio_format,
    }
    write_json(directory / "config.json", config)
    (directory / "LICENSES.md").write_text("Synthetic noise generated by lusebench.testing; no third-party content.\n")
    return directory
