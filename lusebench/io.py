"""File helpers shared by every room: atomic writes, checksums, audio files, and the one door to
files that strangers made.

Every file a stranger hands us (a data folder, a submission, a results folder, a checkpoint, a
SOFA file) is opened here: a name taken from such a file is a plain file name
(:func:`plain_name`), a path taken from one is resolved against its folder and refused outside
it (:func:`resolve_inside`), and only regular files are opened, checked with ``lstat`` first and
opened non-blocking, so that a FIFO or a device in place of a file fails at once instead of
hanging (:func:`open_regular`). Arrays (:func:`load_npy`) are read from a checked header, before
anything of the header's size is allocated.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
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
    # The folders above ``path`` that this call creates go again if it fails: nothing is left behind.
    created = [parent for parent in path.absolute().parents if not parent.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent))
    except OSError as error:
        _remove_empty(created)
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
        _remove_empty(created)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is empty; leave any that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


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
    """Hex sha256 of a regular file's bytes.

    Raises:
        LusebenchError: naming the file when it is missing or not a regular file.
    """
    digest = hashlib.sha256()
    with open_regular(path) as handle:
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


DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError)


# A name a stranger's file gives us that becomes a file name (a mixture id): letters, digits, ".",
# "_" and "-", starting with a letter or digit, at most 200 characters. So no separator, no "..",
# no hidden file, nothing absolute, nothing a shell or a URL would read otherwise.
PLAIN_NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 200 characters"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def plain_name(value: Any, where: str) -> str:
    """``value`` if it is a plain file name (:data:`PLAIN_NAME_RULE`).

    Raises:
        LusebenchError: naming ``where`` and the value.
    """
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise LusebenchError(f"{where}: {json.dumps(value, default=repr)[:80]} is not a plain file name ({PLAIN_NAME_RULE})")
    return value


def resolve_inside(folder: Path, relative: Any, where: str) -> Path:
    """``folder / relative`` for a path a stranger's file names, refused unless it lies inside ``folder``.

    ``relative`` must be a relative path with ``/`` separators and no ``..``; links are followed
    to judge where it leads, so a link inside the folder that points out of it is refused too.

    Returns:
        ``folder / relative`` as given (for messages), known to lie inside ``folder``.

    Raises:
        LusebenchError: naming ``where`` and the path.
    """
    def shown() -> str:
        return json.dumps(relative, default=repr)[:120]

    if not isinstance(relative, str) or not relative or "\x00" in relative or "\\" in relative:
        raise LusebenchError(f"{where}: {shown()} is not a relative path with / separators")
    if relative.startswith("/") or ".." in relative.split("/"):
        raise LusebenchError(f"{where}: {shown()} leads out of its folder {folder}")
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, relative))
    if not target.startswith(root.rstrip(os.sep) + os.sep):
        raise LusebenchError(f"{where}: {shown()} leads out of its folder {folder} (through a link)")
    return Path(folder) / relative


@contextmanager
def open_regular(path: Path, *, follow_symlinks: bool = True, max_bytes: int | None = None) -> Iterator[io.BufferedReader]:
    """Open a regular file for reading: never a FIFO, socket or device, and never blocking on one.

    The file is checked with ``lstat`` (``stat`` through a link when ``follow_symlinks``) before it
    is opened, then opened ``O_NONBLOCK`` and checked again on the open descriptor, so a FIFO put
    in its place meanwhile fails at once too.

    Args:
        path: the file.
        follow_symlinks: False refuses a symlink as the last component (``O_NOFOLLOW``), so a
            stranger's file checked earlier cannot be swapped for a link to another one.
        max_bytes: refuse a larger file before reading it.

    Raises:
        LusebenchError: naming the file when it is missing, not a regular file or too large.
    """
    path = Path(path)
    try:
        status = os.stat(path) if follow_symlinks else os.lstat(path)
    except FileNotFoundError:
        raise LusebenchError(f"file not found: {path}") from None
    except OSError as error:
        raise LusebenchError(f"cannot open {path}: {error.strerror or error}") from None
    if stat.S_ISLNK(status.st_mode):
        raise LusebenchError(f"cannot open {path}: a symlink")
    if not stat.S_ISREG(status.st_mode):
        raise LusebenchError(f"not a regular file: {path}")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
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
        yield handle


def read_regular_file(
    path: Path, *, follow_symlinks: bool = True, max_bytes: int | None = None, sha256: str | None = None
) -> bytes:
    """The bytes of a regular file (not a device or FIFO), bounded in size and optionally checked.

    Args:
        path: the file.
        follow_symlinks: as for :func:`open_regular`.
        max_bytes: refuse a larger file before reading it.
        sha256: the hex digest the bytes must have; the bytes checked are the bytes returned.

    Raises:
        LusebenchError: naming the file when it is missing, not a regular file, too large, or
            does not match ``sha256``.
    """
    with open_regular(path, follow_symlinks=follow_symlinks, max_bytes=max_bytes) as handle:
        # A file that grew after the size check is read no further than the bound (+1 to notice).
        payload = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(payload) > max_bytes:
        raise LusebenchError(f"{path} holds more than the {max_bytes} bytes it may")
    if sha256 is not None:
        found = hashlib.sha256(payload).hexdigest()
        if found != sha256:
            raise LusebenchError(
                f"{path} does not match its recorded sha256 ({sha256[:12]}..., found {found[:12]}...): "
                "the file was altered or damaged"
            )
    return payload


_NPY_MAGIC = b"\x93NUMPY"
def load_npy(payload: bytes, name: str | Path, *, max_elements: int, kinds: str = "iuf") -> np.ndarray:
    """Decode the bytes of a ``.npy`` file after checking its header.

    The header's dtype and shape are checked first, so a 100-byte file claiming 360e9 values is
    refused without allocating them; ``.npz`` archives and pickles are refused by their magic.

    Args:
        payload: the file's bytes.
        name: named in errors.
        max_elements: the most values the array may hold.
        kinds: the dtype kinds accepted (numpy's ``dtype.kind`` letters).

    Raises:
        LusebenchError: naming the file when it is not a ``.npy`` array of an accepted kind and size.
    """
    if not payload.startswith(_NPY_MAGIC):
        what = "a zip archive (.npz)" if payload.startswith(b"PK") else "not a .npy array"
        raise LusebenchError(f"{name} is {what}; a plain .npy array is expected")
    handle = io.BytesIO(payload)
    try:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(handle)  # bounded: numpy refuses a header over 10,000 bytes
    except (ValueError, SyntaxError, TypeError, EOFError, UnicodeDecodeError) as error:
        raise LusebenchError(f"{name} has a damaged .npy header ({str(error).splitlines()[0][:120]})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None:
        raise LusebenchError(f"{name} must be a real-valued array, not {dtype}")
    elements = math.prod(shape)
    if elements > max_elements:
        raise LusebenchError(f"{name} declares shape {shape} ({elements} values), more than the {max_elements} it may hold")
    if len(payload) - handle.tell() < elements * dtype.itemsize:
        raise LusebenchError(f"{name} is truncated: its header declares shape {shape} of {dtype}")
    try:
        return np.load(io.BytesIO(payload), allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise LusebenchError(f"{name} cannot be read as .npy ({str(error).splitlines()[0][:120]})") from None


def audio_header(payload: bytes, name: str | Path) -> AudioHeader:
    """Frames, channels and rate from the header of an encoded FLAC or WAV file.

    Raises:
        LusebenchError: naming the file when it is not audio libsndfile can read.
    """
    try:
        info = sf.info(io.BytesIO(payload))
    except DECODE_ERRORS as error:
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
    except DECODE_ERRORS as error:
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
