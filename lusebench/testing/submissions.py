"""Submission folders for tests: a good one with controllable errors, and each malformation the checks catch."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import soundfile as sf

from lusebench.benchmark.submission import (
    AUDIO_DIR,
    DOA_CSV,
    DOA_LIKELIHOOD,
    SYSTEM_FILE,
    SystemInfo,
    write_doa_csv,
    write_doa_likelihood,
    write_system_json,
)
from lusebench.io import encode_audio, read_audio, write_bytes

Malformation = Literal[
    "missing_item",
    "unknown_item",
    "wrong_channels",
    "wrong_rate",
    "wrong_length",
    "nan",
    "silent",
    "unreadable",
    "bad_doa_csv",
    "bad_likelihood",
    "no_system",
]
MALFORMATIONS: tuple[Malformation, ...] = Malformation.__args__


def make_submission(
    data: Path,
    out: Path,
    *,
    tasks: tuple[str, ...] = ("extraction", "localization"),
    noise: float = 0.1,
    doa_error_deg: float = 0.0,
    doa_format: Literal["csv", "likelihood"] = "csv",
    seed: int = 0,
) -> Path:
    """Write a valid submission: the target image plus white noise, and the true azimuth plus an offset.

    On an absent-target item (a set with ``target_absent``) it always answers: the mixture at -20 dB
    and the first source's azimuth.

    Args:
        data: dataset folder.
        out: submission folder to write.
        tasks: tasks the system claims.
        noise: std of the noise added to the target, relative to the target's RMS.
        doa_error_deg: offset added to every true azimuth (wrapped by the evaluator).
        doa_format: ``csv`` for doa.csv, ``likelihood`` for a one-hot doa_likelihood.npy.
        seed: seed of the noise.

    Returns:
        ``out``.
    """
    data, out = Path(data), Path(out)
    manifest = pd.read_parquet(data / "manifest.parquet")
    rng = np.random.default_rng(seed)
    absent = manifest["target_absent"].to_numpy(dtype=bool) if "target_absent" in manifest else np.zeros(len(manifest), bool)
    if "extraction" in tasks:
        for row, target_absent in zip(manifest.itertuples(index=False), absent):
            if target_absent:
                mixture, rate = read_audio(data / row.mixture_path)
                write_bytes(out / AUDIO_DIR / f"{row.mixture_id}.wav", encode_audio(0.1 * mixture, rate, "wav"))
                continue
            target, rate = read_audio(data / row.target_path)
            rms = np.sqrt(np.mean(target.astype(np.float64) ** 2))
            estimate = target + noise * rms * rng.standard_normal(target.shape)
            write_bytes(out / AUDIO_DIR / f"{row.mixture_id}.wav", encode_audio(estimate, rate, "wav"))
    if "localization" in tasks:
        first_source = np.array([a[0] for a in manifest["azimuths_deg"]])
        azimuths = np.where(absent, first_source, manifest["target_azimuth_deg"].to_numpy()) + doa_error_deg
        if doa_format == "csv":
            write_doa_csv(out, dict(zip(manifest["mixture_id"], azimuths.tolist())))
        else:
            likelihood = np.zeros((len(manifest), 360), dtype=np.float32)
            likelihood[np.arange(len(manifest)), np.round(azimuths).astype(int) % 360] = 1.0
            write_doa_likelihood(out, likelihood)
    write_system_json(out, SystemInfo(name="test-system", tasks=tuple(tasks), parameters=1, description="noisy oracle"))
    return out


def malform(submission: Path, problem: Malformation) -> str:
    """Break a valid two-task submission in one way (in place).

    Returns:
        A fragment of the message the checks must print for it.
    """
    submission = Path(submission)
    audio_files = sorted((submission / AUDIO_DIR).glob("*.wav"))
    first = audio_files[0]
    if problem == "missing_item":
        first.unlink()
        return f"audio missing for mixture id: {first.stem}"
    audio, rate = read_audio(first)
    if problem == "unknown_item":
        write_bytes(submission / AUDIO_DIR / "no-such-mixture.wav", encode_audio(audio, rate, "wav"))
        return "audio file for an unknown mixture id: no-such-mixture.wav"
    if problem == "wrong_channels":
        write_bytes(first, encode_audio(audio[:1], rate, "wav"))
        return f"wrong channel count (expected 2): {first.name}: 1"
    if problem == "wrong_rate":
        write_bytes(first, encode_audio(audio, rate // 2, "wav"))
        return f"wrong sample rate (expected {rate} Hz): {first.name}: {rate // 2}"
    if problem == "wrong_length":
        write_bytes(first, encode_audio(audio[:, :-10], rate, "wav"))
        return f"wrong length: {first.name}: {audio.shape[1] - 10} samples"
    if problem == "nan":
        audio[0, 5] = np.nan
        sf.write(first, audio.T, rate, subtype="FLOAT")  # encode_audio refuses non-finite samples
        return f"NaN or Inf samples: {first.name}"
    if problem == "silent":
        write_bytes(first, encode_audio(np.zeros_like(audio), rate, "wav"))
        return f"silent audio (a channel is all zero): {first.name}"
    if problem == "unreadable":
        first.write_bytes(b"this is not audio")
        return f"unreadable audio file: {first.name}"
    if problem == "bad_doa_csv":
        (submission / DOA_CSV).write_text("mixture_id,azimuth\nx,1\n")
        return "doa.csv must have exactly the columns mixture_id, azimuth_deg"
    if problem == "bad_likelihood":
        np.save(submission / DOA_LIKELIHOOD, np.zeros((2, 10)))
        return "doa_likelihood.npy must be a real-valued array of shape"
    if problem == "no_system":
        (submission / SYSTEM_FILE).unlink()
        return "system.json is missing"
    raise ValueError(f"unknown malformation {problem!r}")

