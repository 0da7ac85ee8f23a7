"""File helpers shared by every room: atomic writes, checksums, audio files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from lusebench.errors import LusebenchError

AudioFormat = Literal["flac", "wav"]

# FLAC stores integers: 24 bits keep the quantisation noise ~140 dB under full scale, far below any
# metric's resolution; WAV keeps float32 so a user can have the rendered floats exactly.
_SUBTYPES: dict[str, str] = {"flac": "PCM_24", "wav": "FLOAT"}


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place.

    A reader never sees a half-written file, and an interrupted run leaves only a ``.tmp`` file
    that the next run overwrites.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 - umask),
        # so that datasets, submissions and leaderboard pages can be shared and served.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_audio(audio: np.ndarray, sample_rate: int, audio_format: AudioFormat) -> bytes:
    """Encode ``audio`` of shape (channels, time) or (time,) into the bytes of a FLAC or WAV file.

    Raises:
        LusebenchError: if a sample lies outside [-1, 1), which the file would clip silently.
    """
    data = np.asarray(audio, dtype=np.float32)
    # max and -min give |x|'s peak (NaN included) without abs's temporary copy of the signal.
    peak = max(float(data.max()), -float(data.min())) if data.size else 0.0
    if not np.isfinite(peak) or peak >= 1.0:
        raise LusebenchError(f"refusing to encode audio with peak {peak:.3f}: it would clip")
    buffer = io.BytesIO()
    frames = data.T if data.ndim == 2 else data  # soundfile wants (time, channels)
    sf.write(buffer, frames, sample_rate, subtype=_SUBTYPES[audio_format], format=audio_format.upper())
    return buffer.getvalue()


def write_bytes(path: Path, payload: bytes) -> str:
    """Write ``payload`` atomically and return its sha256."""
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))
    return hashlib.sha256(payload).hexdigest()


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 (channels, time) and its sample rate.

    Raises:
        LusebenchError: naming the file when it is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise LusebenchError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise LusebenchError(f"cannot decode audio file {path}: {error}") from None
    return np.ascontiguousarray(data.T), int(rate)
