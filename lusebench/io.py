"""File helpers shared by every room: atomic writes, checksums, audio files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from lusebench.errors import LusebenchError

AudioFormat = Literal["flac", "wav"]

# FLAC stores integers: 24 bits keep the quantisation noise ~140 dB under full scale, far below any
# metric's resolution; WAV keeps float32 so a user can have the rendered floats exactly.
# libFLAC's compression level 0-8 (libsndfile takes it as level / 8). Measured on rendered 10 s
# mixtures (perf/simulate_speed.py, README "Performance"): level 3 encodes as fast as 0-2 with files 8%
# smaller, and ~1.3x faster than libsndfile's default 5 with files ~3% larger; 6-8 cost 1.5-3x for
# 4-6% less. The level changes the bytes only, never the decoded samples.
FLAC_LEVEL = 3
# libsndfile's float -> 24-bit FLAC conversion: x * 2^23 rounded half to even, clipped to 24 bits.
_PCM24_SCALE = np.float32(1 << 23)
_PCM24_MAX = (1 << 23) - 1


_TMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place.

    A reader never sees a half-written file. A killed process leaves its temporary
    ``.<name>.<random>.tmp`` behind (the random part means no later write reuses it);
    :func:`remove_stale_temporaries` clears them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 - umask),
        # so that datasets, submissions and leaderboard pages can be shared and served.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it
    os.umask(umask)
    return umask


@contextmanager
def replace_folder(path: Path, owned: Collection[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` that replaces ``path`` when the block succeeds.

    Readers see the old folder or the new one, never a mix: no stale file of an earlier run
    survives. Everything is checked before the block runs, so a bad ``path`` fails before any
    long work. Nothing is written through a symlink: ``path`` must not be one.

    Args:
        path: the folder to (re)place.
        owned: the entry names this kind of folder holds; an existing ``path`` holding anything
            else is someone else's folder and is refused rather than replaced.

    Raises:
        LusebenchError: ``path`` is a symlink, a file, a folder of other files, or cannot be
            written beside.
    """
    path = Path(path)
    if path.is_symlink():
        raise LusebenchError(f"{path} is a symlink; lusebench does not write through links")
    if path.exists():
        if not path.is_dir():
            raise LusebenchError(f"{path} exists and is not a folder")
        foreign = sorted(entry.name for entry in path.iterdir() if entry.name not in owned)
        if foreign:
            raise LusebenchError(f"{path} holds files lusebench did not write ({', '.join(foreign[:3])}); choose another folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent))
    except OSError as error:
        raise LusebenchError(f"cannot write beside {path}: {error.strerror or error}") from None
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the results from others
        # Renaming moves a link that appeared meanwhile, never what it points to.
        retired = staging.with_name(staging.name + ".old")
        if path.is_symlink() or path.exists():
            os.rename(path, retired)
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def remove_stale_temporaries(folder: Path, older_than_s: float) -> int:
    """Delete the temporaries :func:`atomic_write` left under ``folder`` (recursively) by killed runs.

    Only files untouched for ``older_than_s`` go: another process writing into the same folder
    (a shard on a shared disk) holds its temporary for seconds, and must not lose it.

    Returns:
        How many were removed.
    """
    cutoff = time.time() - older_than_s
    removed = 0
    for tmp in Path(folder).rglob(f".*{_TMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink() and tmp.stat().st_mtime < cutoff:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


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
    data = np.ascontiguousarray(audio, dtype=np.float32)  # a copy only when it is not already so
    # max and -min give |x|'s peak (NaN included) without abs's temporary copy of the signal.
    peak = max(float(data.max()), -float(data.min())) if data.size else 0.0
    if not np.isfinite(peak) or peak >= 1.0:
        raise LusebenchError(f"refusing to encode audio with peak {peak:.3f}: it would clip")
    buffer = io.BytesIO()
    if audio_format == "flac":
        sf.write(buffer, _pcm24_frames(data), sample_rate, subtype="PCM_24", format="FLAC",
                 compression_level=FLAC_LEVEL / 8)
    elif audio_format == "wav":
        frames = data.T if data.ndim == 2 else data  # soundfile wants (time, channels)
        sf.write(buffer, frames, sample_rate, subtype="FLOAT", format="WAV")
    else:
        raise ValueError(f"unknown audio format {audio_format!r}")
    return buffer.getvalue()


def _pcm24_frames(data: np.ndarray) -> np.ndarray:
    """(time, channels) or (time,) int32 holding float32 ``data`` (channels, time) as 24-bit samples.

    The very integers libsndfile would make of the floats (x * 2^23 rounded half to even, the
    largest float below 1 clipped to 2^23 - 1), in the top 24 bits where it reads them from int32,
    so the decoded file is unchanged (tests/test_io.py). ``sf.write`` of the floats first copies
    the transposed signal and then converts it sample by sample: ~1.3 ms of ~5 per 10 s stereo
    file, against ~0.7 here. (torch's kernels take 0.3 ms on an idle core but ~40 ms with their
    default threads on a busy machine, so numpy it is.)
    """
    scaled = np.empty(data.shape[::-1], dtype=np.float32)  # (T, C)
    np.multiply(data.T, _PCM24_SCALE, out=scaled)  # exact: a power of two
    np.rint(scaled, out=scaled)  # half to even, as libsndfile's lrintf
    np.minimum(scaled, _PCM24_MAX, out=scaled)  # encode_audio's peak check leaves only 2^23 itself to clip
    frames = scaled.astype(np.int32)
    frames <<= 8
    return frames


def write_bytes(path: Path, payload: bytes) -> str:
    """Write ``payload`` atomically and return its sha256."""
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class AudioHeader:
    """What an audio file's header declares, read without decoding a sample."""

    frames: int
    channels: int
    sample_rate: int


_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError)


def read_regular_file(
    path: Path, *, follow_symlinks: bool = True, max_bytes: int | None = None, sha256: str | None = None
) -> bytes:
    """The bytes of a regular file (not a device or FIFO), bounded in size and optionally checked.

    Args:
        path: the file.
        follow_symlinks: False refuses a symlink as the last component (``O_NOFOLLOW``), so a
            stranger's file checked earlier cannot be swapped for a link to another one.
        max_bytes: refuse a larger file before reading it.
        sha256: the hex digest the bytes must have; the bytes checked are the bytes returned.

    Raises:
        LusebenchError: naming the file when it is missing, not a regular file, too large, or
            does not match ``sha256``.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | (0 if follow_symlinks else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise LusebenchError(f"file not found: {path}") from None
    except OSError as error:
        reason = "a symlink" if path.is_symlink() else error.strerror
        raise LusebenchError(f"cannot open {path}: {reason}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise LusebenchError(f"not a regular file: {path}")
        if max_bytes is not None and status.st_size > max_bytes:
            raise LusebenchError(f"{path} holds {status.st_size} bytes, more than the {max_bytes} it may")
        payload = handle.read()
    if sha256 is not None:
        found = hashlib.sha256(payload).hexdigest()
        if found != sha256:
            raise LusebenchError(
                f"{path} does not match its recorded sha256 ({sha256[:12]}..., found {found[:12]}...): "
                "the file was altered or damaged"
            )
    return payload


def audio_header(payload: bytes, name: str | Path) -> AudioHeader:
    """Frames, channels and rate from the header of an encoded FLAC or WAV file.

    Raises:
        LusebenchError: naming the file when it is not audio libsndfile can read.
    """
    try:
        info = sf.info(io.BytesIO(payload))
    except _DECODE_ERRORS as error:
        raise LusebenchError(f"cannot decode audio file {name}: {error}") from None
    return AudioHeader(frames=int(info.frames), channels=int(info.channels), sample_rate=int(info.samplerate))


def decode_audio(payload: bytes, name: str | Path, *, max_frames: int | None = None) -> tuple[np.ndarray, int]:
    """Decode the bytes of an audio file as float32 (channels, time) and its sample rate.

    Args:
        payload: the encoded file.
        name: named in errors.
        max_frames: refuse, from the header and before decoding, a longer file; decoding also
            stops there, whatever the header says (a 448 KB FLAC can hold hours of silence).

    Raises:
        LusebenchError: naming the file when it cannot be decoded or is too long.
    """
    header = audio_header(payload, name)
    if max_frames is not None and header.frames > max_frames:
        raise LusebenchError(f"audio file {name} declares {header.frames} frames, more than the {max_frames} expected")
    try:
        data, rate = sf.read(
            io.BytesIO(payload), frames=-1 if max_frames is None else max_frames, dtype="float32", always_2d=True
        )
    except _DECODE_ERRORS as error:
        raise LusebenchError(f"cannot decode audio file {name}: {error}") from None
    return np.ascontiguousarray(data.T), int(rate)


def read_audio(path: Path, *, max_frames: int | None = None, sha256: str | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 (channels, time) and its sample rate.

    Args:
        path: the file.
        max_frames: refuse a longer file from its header, before decoding.
        sha256: the digest the file must have (a data folder's reference checked against its manifest).

    Raises:
        LusebenchError: naming the file when it is missing, cannot be decoded, is too long or
            does not match ``sha256``.
    """
    return decode_audio(read_regular_file(path, sha256=sha256), path, max_frames=max_frames)
