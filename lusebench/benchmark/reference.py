"""Reference submissions that bound the scores: the mixture passed through, the oracle, random DoA."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from tqdm import tqdm

from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.submission import (
    AUDIO_DIR,
    SUBMISSION_ENTRIES,
    SystemInfo,
    write_doa_csv,
    write_set_json,
    write_system_json,
)
from lusebench.errors import LusebenchError
from lusebench.io import DECODE_ERRORS, atomic_write, read_regular_file, replace_folder, write_bytes

logger = logging.getLogger(__name__)

ReferenceKind = Literal["mixture", "oracle", "random"]
REFERENCE_KINDS: tuple[ReferenceKind, ...] = ("mixture", "oracle", "random")

_SYSTEMS: dict[str, SystemInfo] = {
    "mixture": SystemInfo(
        name="reference-mixture", tasks=("extraction",), parameters=0, gcc_phat=False,
        description="The binaural mixture passed through unchanged: every improvement is 0 dB.",
    ),
    "oracle": SystemInfo(
        name="reference-oracle", tasks=("extraction", "localization"), parameters=0, gcc_phat=False,
        description="The reference target image and the true azimuth, silence and \"absent\" where the target "
        "is absent: the ceiling of every metric.",
    ),
    "random": SystemInfo(
        name="reference-random", tasks=("localization",), parameters=0, gcc_phat=False,
        description="Azimuths drawn uniformly from [0, 360): expected 2.8% accuracy (10 of 360 deg) and 90 deg MAE.",
    ),
}


# libsndfile's default FLAC level, then the strongest: the set's files are written at level 3 (io.py).
_ORACLE_FLAC_LEVELS = (5 / 8, 1.0)


def _oracle_bytes(reference: bytes, name: str, sha256: str) -> tuple[str, bytes]:
    """The reference's exact samples in other bytes than the reference's (evaluate refuses byte
    copies), no larger than it: a FLAC reference is re-encoded losslessly at another compression
    level with its own bit depth (16 or 24 bit: the integers read back are the file's), a float WAV
    reference is written as WAVEX (the same samples, a 36-byte longer header)."""
    try:
        info = sf.info(io.BytesIO(reference))
        # (time, channels): a FLAC file's integers, a WAV file's floats
        samples, rate = sf.read(io.BytesIO(reference), dtype="int32" if info.format == "FLAC" else "float64", always_2d=True)
    except DECODE_ERRORS as error:  # a damaged file whose checksum a stranger's manifest records
        raise LusebenchError(f"cannot decode audio file {name}: {error}") from None
    if info.format == "FLAC" and info.subtype in ("PCM_16", "PCM_24"):
        for level in _ORACLE_FLAC_LEVELS:
            buffer = io.BytesIO()
            sf.write(buffer, samples, rate, subtype=info.subtype, format="FLAC", compression_level=level)
            if hashlib.sha256(buffer.getvalue()).hexdigest() != sha256:
                return ".flac", buffer.getvalue()
        raise LusebenchError(f"cannot write {name}'s samples in bytes other than its own")
    if info.format == "WAV" and info.subtype in ("FLOAT", "DOUBLE", "PCM_16", "PCM_24"):
        buffer = io.BytesIO()
        sf.write(buffer, samples, rate, subtype=info.subtype, format="WAVEX")
        return ".wav", buffer.getvalue()
    raise LusebenchError(f"{name}: the oracle reads FLAC (16/24-bit) or WAV references, not {info.format} {info.subtype}")


def write_reference(kind: ReferenceKind, data: Path, out: Path, seed: int = 0, progress: bool = True) -> Path:
    """Write a reference submission for a dataset folder.

    Args:
        kind: ``mixture`` (extraction: the mixture itself), ``oracle`` (both tasks: the target
            image and true azimuth), or ``random`` (localization: uniform azimuths).
        data: the dataset folder.
        out: the submission folder to write.
        seed: seed of the random azimuths.
        progress: show a progress bar.

    Returns:
        ``out``.

    Raises:
        LusebenchError: for an unknown kind, a negative seed, an unreadable dataset or one whose
            files do not match its manifest, or an ``out`` that cannot be written; ``out`` is
            then left as it was.
    """
    if kind not in REFERENCE_KINDS:
        raise LusebenchError(f"reference kind must be one of {', '.join(REFERENCE_KINDS)}, got {kind!r}")
    if seed < 0:  # numpy's generators take non-negative seeds only
        raise LusebenchError(f"--seed must be 0 or more, got {seed}")
    dataset = load_dataset(data)
    out = Path(out)
    manifest = dataset.manifest
    absent = dataset.absent
    # Written beside itself and renamed into place whole: a failure (an altered reference on the
    # last row) leaves no partial submission.
    with replace_folder(out, owned=SUBMISSION_ENTRIES) as staging:
        if kind in ("mixture", "oracle"):
            column = "mixture" if kind == "mixture" else "target"
            rows = zip(manifest["mixture_id"], manifest[f"{column}_path"], manifest[f"{column}_sha256"], absent,
                       manifest["num_samples"])
            for mixture_id, relative, sha256, target_absent, num_samples in tqdm(
                rows, total=len(manifest), desc=f"writing {kind}", unit="item", disable=not progress
            ):
                if kind == "oracle" and target_absent:  # the right answer to a query for a sound not there
                    silence = np.zeros((2, int(num_samples)))  # 16-bit FLAC: a few kB, where WAV took 640 kB per 10 s
                    atomic_write(
                        staging / AUDIO_DIR / f"{mixture_id}.flac",
                        lambda tmp, a=silence: sf.write(tmp, a.T, dataset.sample_rate, subtype="PCM_16", format="FLAC"),
                    )
                    continue
                source = dataset.path / relative  # inside the folder: the manifest was checked
                if kind == "mixture":
                    write_bytes(staging / AUDIO_DIR / f"{mixture_id}{source.suffix}", read_regular_file(source, sha256=sha256))
                    continue
                suffix, payload = _oracle_bytes(read_regular_file(source, sha256=sha256), source.name, sha256)
                write_bytes(staging / AUDIO_DIR / f"{mixture_id}{suffix}", payload)
        if kind == "oracle":  # an absent target's azimuth is NaN: an empty cell, "absent"
            write_doa_csv(staging, dict(zip(manifest["mixture_id"], manifest["target_azimuth_deg"].astype(float))))
        elif kind == "random":
            rng = np.random.default_rng(seed)
            write_doa_csv(staging, dict(zip(manifest["mixture_id"], rng.uniform(0.0, 360.0, size=len(manifest)).tolist())))
        write_set_json(staging, dataset)
        write_system_json(staging, _SYSTEMS[kind])
    logger.info("wrote the %s reference submission for %d mixtures to %s", kind, len(manifest), out)
    return out
