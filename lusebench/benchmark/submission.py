"""The submission format, and the checks that collect every problem of a submission into one report.

A submission is a folder (see docs/submission-format.md)::

    system.json            name, tasks, parameters, description, link (+ channels, gcc_phat)
    set.json               the fingerprint of the set it answers (written by infer and reference)
    audio/<mixture_id>.flac|.wav   extraction: the target's binaural image, 2 channels, data rate and length
    doa.csv                localization: mixture_id, azimuth_deg (wrapped into [0, 360); empty: target absent)
    doa_likelihood.npy     localization, instead of doa.csv: (num_mixtures, 360) in manifest order (a row
                           whose peak is under system.json's ``absent_threshold``: target absent)
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lusebench.benchmark.dataset import Dataset
from lusebench.benchmark.metrics import DOA_BINS, azimuth_from_likelihood, wrap_azimuth_deg
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, audio_header, decode_audio, load_npy, read_regular_file, write_json
from lusebench.schema import MAX_SYSTEM_JSON_BYTES, SHA256_HEX, TASKS, Fields, SystemInfo, Task, load_json, parse_system

logger = logging.getLogger(__name__)

SYSTEM_FILE = "system.json"
# Mixture ids say split, source count and index, not the set: `test-2src-000000` is in every
# two-source test set whatever its seed. The fingerprint a submission records is what ties it to
# one set, so ids need not be unique across sets.
SET_FILE = "set.json"
_MAX_SET_JSON_BYTES = 4096
AUDIO_DIR = "audio"
DOA_CSV = "doa.csv"
DOA_LIKELIHOOD = "doa_likelihood.npy"
AUDIO_SUFFIXES = (".flac", ".wav")
# Everything a submission folder holds (results/ is where evaluate writes by default); a folder
# holding anything else is someone else's and is not replaced by reference or infer.
SUBMISSION_ENTRIES = (SYSTEM_FILE, SET_FILE, AUDIO_DIR, DOA_CSV, DOA_LIKELIHOOD, "results")
NUM_CHANNELS = 2
# Below one step of 24-bit audio a channel carries nothing, and every ratio on it is undefined.
SILENCE_PEAK = 1e-7
_SHOWN_PER_PROBLEM = 5
# Size bounds, checked before a file is read: headers plus the widest row or sample a valid file has.
_CSV_HEADER_BYTES = 4096
_CSV_ROW_BYTES = 256
_NPY_HEADER_BYTES = 4096
_AUDIO_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission: ``kind`` says what, ``where`` names the file or id."""

    kind: str
    where: str = ""


class SubmissionError(LusebenchError):
    """A submission failed its checks; ``problems`` lists all of them."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        super().__init__(format_problems(self.path, self.problems))


def format_problems(path: Path, problems: list[Problem]) -> str:
    """A report with one line per kind of problem, naming up to five files or ids each."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        grouped[problem.kind].append(problem.where)
    lines = [f"submission {path} is invalid ({len(problems)} problem(s)):"]
    for kind, wheres in grouped.items():
        named = [w for w in wheres if w]
        if not named:
            lines.append(f"  - {kind}")
            continue
        more = f" (+{len(named) - _SHOWN_PER_PROBLEM} more)" if len(named) > _SHOWN_PER_PROBLEM else ""
        lines.append(f"  - {kind}: {', '.join(named[:_SHOWN_PER_PROBLEM])}{more}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Submission:
    """A submission after its structural checks.

    Attributes:
        path: the folder.
        system: its ``system.json`` (``None`` only while problems are being collected).
        tasks: the tasks scored.
        audio: the audio file of every mixture that has exactly one (extraction).
        azimuths_deg: predicted azimuth per mixture id, wrapped into [0, 360), NaN where the
            submission says the target is absent (localization).
        problems: structural problems found; content problems of audio files come later.
    """

    path: Path
    system: SystemInfo | None
    tasks: tuple[Task, ...]
    audio: dict[str, Path] = field(default_factory=dict)
    azimuths_deg: dict[str, float] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def _own_file(path: Path, name: str, problems: list[Problem]) -> Path | None:
    """``path/name`` if it is a regular file of the submission itself, else None (a problem when it is not)."""
    file = path / name
    if file.is_symlink():
        # A link may point at the data folder's references (a perfect score) or at the host's files.
        problems.append(Problem("symlinks are not read (a submission holds its own files)", name))
        return None
    if not file.exists():
        return None
    if not file.is_file() or not file.resolve().is_relative_to(path.resolve()):
        problems.append(Problem("not a regular file inside the submission folder", name))
        return None
    return file


def _read_system(path: Path, problems: list[Problem]) -> SystemInfo | None:
    file = _own_file(path, SYSTEM_FILE, problems)
    if file is None:
        if not (path / SYSTEM_FILE).is_symlink():
            problems.append(Problem(f"{SYSTEM_FILE} is missing"))
        return None
    try:
        data = load_json(file, MAX_SYSTEM_JSON_BYTES, follow_symlinks=False)
    except LusebenchError as error:
        problems.append(Problem(f"{SYSTEM_FILE} cannot be read", str(error)))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(f"{SYSTEM_FILE} must hold a JSON object"))
        return None
    fields = Fields()
    system = parse_system(data, "system", fields)
    problems.extend(Problem(f"{SYSTEM_FILE}: {problem}") for problem in fields.problems)
    return system


def _check_set(path: Path, dataset: Dataset, problems: list[Problem]) -> None:
    """Refuse a submission made for another set; warn when it does not say which set it answers.

    Raises:
        LusebenchError: ``set.json`` names another fingerprint than the dataset's (one line).
    """
    if not _present(path / SET_FILE):
        logger.warning(
            "%s has no %s: nothing says which set it answers; scored against %s (fingerprint %s) on trust "
            "(lusebench infer and reference write it)", path, SET_FILE, dataset.path, dataset.fingerprint[:12],
        )
        return
    file = _own_file(path, SET_FILE, problems)
    if file is None:
        return
    try:
        data = load_json(file, _MAX_SET_JSON_BYTES, follow_symlinks=False)
    except LusebenchError as error:
        problems.append(Problem(f"{SET_FILE} cannot be read", str(error)))
        return
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    if not isinstance(fingerprint, str) or not SHA256_HEX.fullmatch(fingerprint):
        problems.append(Problem(f"{SET_FILE} must hold an object with a \"fingerprint\" of 64 lowercase hex digits"))
        return
    if fingerprint != dataset.fingerprint:
        raise LusebenchError(
            f"submission {path} answers another set (fingerprint {fingerprint[:12]}) than {dataset.path} "
            f"({dataset.fingerprint[:12]}): score it with --data pointing at the set it was made for"
        )


def _find_audio(path: Path, dataset: Dataset, problems: list[Problem]) -> dict[str, Path]:
    folder = path / AUDIO_DIR
    if folder.is_symlink():
        problems.append(Problem("symlinks are not read (a submission holds its own files)", f"{AUDIO_DIR}/"))
        return {}
    if not folder.is_dir():
        problems.append(Problem(f"{AUDIO_DIR}/ is missing although the tasks include extraction"))
        return {}
    known = set(dataset.mixture_ids)
    found: dict[str, list[Path]] = defaultdict(list)
    for entry in sorted(folder.iterdir()):
        if entry.suffix.lower() not in AUDIO_SUFFIXES:
            problems.append(Problem(f"unexpected entry in {AUDIO_DIR}/ (only .flac or .wav files)", entry.name))
        elif _own_file(folder, entry.name, problems) is None:
            continue
        elif entry.stem not in known:
            problems.append(Problem("audio file for an unknown mixture id", entry.name))
        else:
            found[entry.stem].append(entry)
    audio = {}
    for mixture_id in dataset.mixture_ids:
        files = found.get(mixture_id, [])
        if not files:
            problems.append(Problem("audio missing for mixture id", mixture_id))
        elif len(files) > 1:
            problems.append(Problem("more than one audio file for mixture id", mixture_id))
        else:
            audio[mixture_id] = files[0]
    return audio


def _read_own_bytes(path: Path, name: str, max_bytes: int, problems: list[Problem]) -> bytes | None:
    file = _own_file(path, name, problems)
    if file is None:
        return None
    try:
        return read_regular_file(file, follow_symlinks=False, max_bytes=max_bytes)
    except LusebenchError as error:
        problems.append(Problem(f"{name} cannot be read", str(error)))
        return None


def _read_doa_csv(path: Path, dataset: Dataset, problems: list[Problem]) -> dict[str, float]:
    payload = _read_own_bytes(path, DOA_CSV, _CSV_HEADER_BYTES + _CSV_ROW_BYTES * len(dataset.mixture_ids), problems)
    if payload is None:
        return {}
    try:
        # As text, NaN markers kept: an empty azimuth says "absent", while "nan" or "x" is refused.
        table = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        problems.append(Problem(f"{DOA_CSV} cannot be read", str(error).splitlines()[0]))
        return {}
    if sorted(table.columns) != ["azimuth_deg", "mixture_id"]:
        shown = ", ".join(str(c)[:40] for c in table.columns[:5])
        problems.append(Problem(f"{DOA_CSV} must have exactly the columns mixture_id, azimuth_deg", shown))
        return {}
    ids = table["mixture_id"].astype(str)
    text = table["azimuth_deg"].astype(str).str.strip()
    absent = (text == "").to_numpy()
    azimuths = pd.to_numeric(text.where(~absent, "0"), errors="coerce").to_numpy(dtype=np.float64)
    known = set(dataset.mixture_ids)
    for mixture_id in sorted(set(ids[ids.duplicated()])):
        problems.append(Problem(f"{DOA_CSV}: mixture id appears more than once", mixture_id))
    for mixture_id, azimuth, said_absent in zip(ids, azimuths, absent):
        if mixture_id not in known:
            problems.append(Problem(f"{DOA_CSV}: unknown mixture id", mixture_id[:80]))
        elif not said_absent and not math.isfinite(azimuth):
            problems.append(Problem(f"{DOA_CSV}: azimuth_deg is not a finite number", mixture_id))
    present = set(ids)
    for mixture_id in dataset.mixture_ids:
        if mixture_id not in present:
            problems.append(Problem(f"{DOA_CSV}: azimuth missing for mixture id", mixture_id))
    wrapped = wrap_azimuth_deg(np.where(np.isfinite(azimuths), azimuths, 0.0))  # the rest are problems above
    return dict(zip(ids, np.where(absent, np.nan, wrapped).tolist()))


def _load_likelihood(path: Path, dataset: Dataset, problems: list[Problem]) -> np.ndarray | None:
    """The (num_mixtures, 360) array, or None where it cannot be read or has the wrong shape; rows
    holding NaN or Inf are returned and listed in ``problems``."""
    expected = (len(dataset.mixture_ids), DOA_BINS)
    # float64 is the widest dtype accepted; the .npy header is at most a few hundred bytes.
    payload = _read_own_bytes(path, DOA_LIKELIHOOD, _NPY_HEADER_BYTES + 8 * expected[0] * expected[1], problems)
    if payload is None:
        return None
    try:
        likelihood = load_npy(payload, DOA_LIKELIHOOD, max_elements=expected[0] * expected[1], kinds="iuf")
    except LusebenchError as error:
        problems.append(Problem(f"{DOA_LIKELIHOOD} cannot be read", str(error)))
        return None
    # Real numbers only: complex values have no argmax a reader would agree on, and bool is no likelihood.
    if likelihood.shape != expected:
        problems.append(
            Problem(f"{DOA_LIKELIHOOD} must be a real-valued array of shape {expected} in manifest order",
                    f"got {likelihood.dtype} {likelihood.shape}")
        )
        return None
    bad_rows = np.flatnonzero(~np.isfinite(likelihood).all(axis=-1))
    for row in bad_rows:
        problems.append(Problem(f"{DOA_LIKELIHOOD}: NaN or Inf in the row of mixture id", dataset.mixture_ids[row]))
    return likelihood


def read_doa_likelihood(path: Path | str, dataset: Dataset) -> np.ndarray:
    """A submission's ``doa_likelihood.npy``, checked as ``evaluate`` checks it: the submission
    answers ``dataset`` (set.json), and the file is its own regular file, a real-valued .npy
    array (never unpickled) of shape (num_mixtures, 360) in manifest order, finite.

    Raises:
        LusebenchError: ``path`` is not a folder, answers another set, or has no likelihood file;
            :class:`SubmissionError` listing every problem of the file.
    """
    path = Path(path)
    if not path.is_dir():
        raise LusebenchError(f"submission folder not found: {path}")
    problems: list[Problem] = []
    _check_set(path, dataset, problems)
    if not _present(path / DOA_LIKELIHOOD):
        raise LusebenchError(f"{path} has no {DOA_LIKELIHOOD} (infer writes it for every localization system)")
    likelihood = _load_likelihood(path, dataset, problems)
    if problems or likelihood is None:
        raise SubmissionError(path, problems)
    return likelihood


def _read_likelihood(
    path: Path, dataset: Dataset, problems: list[Problem], absent_threshold: float | None
) -> dict[str, float]:
    likelihood = _load_likelihood(path, dataset, problems)
    if likelihood is None:
        return {}
    azimuths = azimuth_from_likelihood(likelihood)
    if absent_threshold is not None:
        azimuths = np.where(likelihood.max(axis=-1) < absent_threshold, np.nan, azimuths)
    return dict(zip(dataset.mixture_ids, azimuths.tolist()))


def _present(file: Path) -> bool:
    return file.is_symlink() or file.exists()  # a dangling link is present, and refused later


def load_submission(path: Path, dataset: Dataset) -> Submission:
    """Read a submission folder and check its structure against a dataset.

    Only regular files inside the folder are read; symlinks are refused. A ``set.json`` naming
    another set's fingerprint is refused at once; a submission without one is scored with a warning. Audio content
    (readability, channels, rate, length, NaN/Inf, silence, copies of the references) is
    checked per item by :func:`check_audio` while scoring, so that every file is decoded once.

    Returns:
        The submission, with every structural problem found in ``problems``.

    Raises:
        LusebenchError: when ``path`` is not a folder, or answers another set.
    """
    path = Path(path)
    if not path.is_dir():
        raise LusebenchError(f"submission folder not found: {path}")
    problems: list[Problem] = []
    _check_set(path, dataset, problems)
    system = _read_system(path, problems)
    has_audio = _present(path / AUDIO_DIR)
    has_likelihood, has_csv = _present(path / DOA_LIKELIHOOD), _present(path / DOA_CSV)
    has_doa = has_likelihood or has_csv
    if system is not None:
        tasks = system.tasks
        if has_audio and "extraction" not in tasks:
            problems.append(Problem(f"{AUDIO_DIR}/ is present but {SYSTEM_FILE} tasks lack extraction"))
        if has_doa and "localization" not in tasks:
            problems.append(Problem(f"{DOA_CSV} or {DOA_LIKELIHOOD} is present but {SYSTEM_FILE} tasks lack localization"))
    else:  # still check what is there, so the report is complete
        tasks = tuple(t for t, present in zip(TASKS, (has_audio, has_doa)) if present)
    audio = _find_audio(path, dataset, problems) if "extraction" in tasks else {}
    azimuths: dict[str, float] = {}
    if "localization" in tasks:
        if not has_doa:
            problems.append(Problem(f"neither {DOA_CSV} nor {DOA_LIKELIHOOD} is present although the tasks include localization"))
        # Both may be given; the explicit azimuths of doa.csv win over the likelihood's argmax.
        if has_likelihood:
            azimuths = _read_likelihood(path, dataset, problems, system.absent_threshold if system else None)
        if has_csv:
            azimuths = _read_doa_csv(path, dataset, problems)
    return Submission(path, system, tasks, audio, azimuths, tuple(problems))


def max_audio_bytes(num_samples: int) -> int:
    """Largest file a 2-channel estimate of ``num_samples`` may be: float64 WAV samples plus headers."""
    return _AUDIO_HEADER_BYTES + 8 * NUM_CHANNELS * num_samples


def check_audio(
    file: Path, num_samples: int, sample_rate: int, reference_sha256: str, allow_silence: bool = False
) -> tuple[np.ndarray | None, list[Problem]]:
    """Read one extracted-target file, check it from its header, then decode and check its samples.

    Args:
        file: the audio file (a regular file; a symlink is refused).
        num_samples: expected samples per channel; a longer file is refused before decoding.
        sample_rate: expected rate in Hz.
        reference_sha256: the reference target's checksum: a byte copy of it is refused ("" for none).
        allow_silence: accept an all-zero channel (the right answer where the target is absent).

    Returns:
        ``(audio, problems)``: audio (2, time) float32 when there is no problem, else ``None``.
    """
    try:
        payload = read_regular_file(file, follow_symlinks=False, max_bytes=max_audio_bytes(num_samples))
        header = audio_header(payload, file.name)
    except LusebenchError as error:
        return None, [Problem("unreadable audio file", f"{file.name} ({error})")]
    if reference_sha256 and hashlib.sha256(payload).hexdigest() == reference_sha256:
        return None, [Problem("a byte copy of the data folder's reference target (not an estimate)", file.name)]
    problems = []
    if header.channels != NUM_CHANNELS:
        problems.append(Problem(f"wrong channel count (expected {NUM_CHANNELS})", f"{file.name}: {header.channels}"))
    if header.sample_rate != sample_rate:
        problems.append(Problem(f"wrong sample rate (expected {sample_rate} Hz)", f"{file.name}: {header.sample_rate}"))
    if header.frames != num_samples:
        problems.append(Problem("wrong length", f"{file.name}: {header.frames} samples, expected {num_samples}"))
    if problems:
        return None, problems
    try:
        audio, _ = decode_audio(payload, file.name, max_frames=num_samples)
    except LusebenchError as error:
        return None, [Problem("unreadable audio file", f"{file.name} ({error})")]
    if audio.shape[1] != num_samples:  # the header promised more than the stream holds
        return None, [Problem("wrong length", f"{file.name}: {audio.shape[1]} samples decoded, expected {num_samples}")]
    if not np.isfinite(audio).all():
        problems.append(Problem("NaN or Inf samples", file.name))
    elif not allow_silence and audio.size and (np.max(np.abs(audio), axis=-1) < SILENCE_PEAK).any():
        problems.append(Problem("silent audio (a channel is all zero)", file.name))
    return (None if problems else audio), problems


def write_system_json(path: Path, system: SystemInfo) -> None:
    """Write ``system.json`` into a submission folder, atomically."""
    write_json(Path(path) / SYSTEM_FILE, system.to_dict())


def write_doa_likelihood(path: Path, likelihood: np.ndarray) -> None:
    """Write ``doa_likelihood.npy`` ((num_mixtures, 360), manifest order) into a submission folder, atomically."""
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object: np.save would append .npy to the temporary name
            np.save(handle, likelihood)

    atomic_write(Path(path) / DOA_LIKELIHOOD, save)


def write_doa_csv(path: Path, azimuths_deg: dict[str, float]) -> None:
    """Write ``doa.csv`` (mixture_id, azimuth_deg) into a submission folder, atomically; NaN (absent) is empty."""
    table = pd.DataFrame({"mixture_id": list(azimuths_deg), "azimuth_deg": list(azimuths_deg.values())})
    atomic_write(Path(path) / DOA_CSV, lambda tmp: table.to_csv(tmp, index=False))


def write_set_json(path: Path, dataset: Dataset) -> None:
    """Write ``set.json`` into a submission folder: the fingerprint of the set it answers, which
    ``evaluate`` compares with the set it is scored against."""
    write_json(Path(path) / SET_FILE, {"fingerprint": dataset.fingerprint, "num_items": len(dataset.mixture_ids),
                                       "path": str(dataset.path)})
