"""The submission format, and the checks that collect every problem of a submission into one report.

A submission is a folder (see docs/submission-format.md)::

    system.json            name, tasks, parameters, description, link (+ channels, gcc_phat)
    audio/<mixture_id>.flac|.wav   extraction: the target's binaural image, 2 channels, data rate and length
    doa.csv                localization: mixture_id, azimuth_deg (wrapped into [0, 360))
    doa_likelihood.npy     localization, instead of doa.csv: (num_mixtures, 360) in manifest order
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lusebench.benchmark.dataset import Dataset
from lusebench.benchmark.metrics import DOA_BINS, TASKS, Task, azimuth_from_likelihood, wrap_azimuth_deg
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, read_audio, write_json

SYSTEM_FILE = "system.json"
AUDIO_DIR = "audio"
DOA_CSV = "doa.csv"
DOA_LIKELIHOOD = "doa_likelihood.npy"
AUDIO_SUFFIXES = (".flac", ".wav")
NUM_CHANNELS = 2
# Below one step of 24-bit audio a channel carries nothing, and every ratio on it is undefined.
SILENCE_PEAK = 1e-7
_SHOWN_PER_PROBLEM = 5


@dataclass(frozen=True)
class SystemInfo:
    """The ``system.json`` of a submission."""

    name: str
    tasks: tuple[Task, ...]
    parameters: int | None = None
    description: str = ""
    link: str = ""
    channels: int = NUM_CHANNELS
    gcc_phat: bool | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        return data


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
        azimuths_deg: predicted azimuth per mixture id, wrapped into [0, 360) (localization).
        problems: structural problems found; content problems of audio files come later.
    """

    path: Path
    system: SystemInfo | None
    tasks: tuple[Task, ...]
    audio: dict[str, Path] = field(default_factory=dict)
    azimuths_deg: dict[str, float] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def _read_system(path: Path, problems: list[Problem]) -> SystemInfo | None:
    file = path / SYSTEM_FILE
    if not file.is_file():
        problems.append(Problem(f"{SYSTEM_FILE} is missing"))
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(Problem(f"{SYSTEM_FILE} is not valid JSON", str(error)))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(f"{SYSTEM_FILE} must hold a JSON object"))
        return None
    before = len(problems)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(f"{SYSTEM_FILE}: 'name' must be a non-empty string"))
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
        problems.append(Problem(f"{SYSTEM_FILE}: 'tasks' must be a non-empty list drawn from {list(TASKS)}", repr(tasks)))
    parameters = data.get("parameters")
    if parameters is not None and (isinstance(parameters, bool) or not isinstance(parameters, int) or parameters < 0):
        problems.append(Problem(f"{SYSTEM_FILE}: 'parameters' must be a non-negative integer or null", repr(parameters)))
    for key in ("description", "link"):
        if not isinstance(data.get(key, ""), str):
            problems.append(Problem(f"{SYSTEM_FILE}: '{key}' must be a string"))
    channels = data.get("channels", NUM_CHANNELS)
    if channels not in (1, 2):
        problems.append(Problem(f"{SYSTEM_FILE}: 'channels' (input channels the system uses) must be 1 or 2", repr(channels)))
    gcc_phat = data.get("gcc_phat")
    if gcc_phat is not None and not isinstance(gcc_phat, bool):
        problems.append(Problem(f"{SYSTEM_FILE}: 'gcc_phat' must be true, false or null", repr(gcc_phat)))
    if len(problems) > before:
        return None
    return SystemInfo(
        name=name,
        tasks=tuple(t for t in TASKS if t in tasks),
        parameters=parameters,
        description=data.get("description", ""),
        link=data.get("link", ""),
        channels=channels,
        gcc_phat=gcc_phat,
    )


def _find_audio(path: Path, dataset: Dataset, problems: list[Problem]) -> dict[str, Path]:
    folder = path / AUDIO_DIR
    if not folder.is_dir():
        problems.append(Problem(f"{AUDIO_DIR}/ is missing although the tasks include extraction"))
        return {}
    known = set(dataset.mixture_ids)
    found: dict[str, list[Path]] = defaultdict(list)
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() not in AUDIO_SUFFIXES or not file.is_file():
            problems.append(Problem(f"unexpected entry in {AUDIO_DIR}/ (only .flac or .wav files)", file.name))
        elif file.stem not in known:
            problems.append(Problem("audio file for an unknown mixture id", file.name))
        else:
            found[file.stem].append(file)
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


def _read_doa_csv(file: Path, dataset: Dataset, problems: list[Problem]) -> dict[str, float]:
    try:
        table = pd.read_csv(file, dtype={"mixture_id": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        problems.append(Problem(f"{DOA_CSV} cannot be read", str(error).splitlines()[0]))
        return {}
    if sorted(table.columns) != ["azimuth_deg", "mixture_id"]:
        problems.append(Problem(f"{DOA_CSV} must have exactly the columns mixture_id, azimuth_deg", ", ".join(map(str, table.columns))))
        return {}
    ids = table["mixture_id"].astype(str)
    azimuths = pd.to_numeric(table["azimuth_deg"], errors="coerce").to_numpy(dtype=np.float64)
    known = set(dataset.mixture_ids)
    for mixture_id in sorted(set(ids[ids.duplicated()])):
        problems.append(Problem(f"{DOA_CSV}: mixture id appears more than once", mixture_id))
    for mixture_id, azimuth in zip(ids, azimuths):
        if mixture_id not in known:
            problems.append(Problem(f"{DOA_CSV}: unknown mixture id", mixture_id))
        elif not math.isfinite(azimuth):
            problems.append(Problem(f"{DOA_CSV}: azimuth_deg is not a finite number", mixture_id))
    present = set(ids)
    for mixture_id in dataset.mixture_ids:
        if mixture_id not in present:
            problems.append(Problem(f"{DOA_CSV}: azimuth missing for mixture id", mixture_id))
    return dict(zip(ids, wrap_azimuth_deg(azimuths).tolist()))


def _read_likelihood(file: Path, dataset: Dataset, problems: list[Problem]) -> dict[str, float]:
    try:
        likelihood = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        problems.append(Problem(f"{DOA_LIKELIHOOD} cannot be read", str(error).splitlines()[0]))
        return {}
    expected = (len(dataset.mixture_ids), DOA_BINS)
    if likelihood.shape != expected or not np.issubdtype(likelihood.dtype, np.number):
        problems.append(
            Problem(f"{DOA_LIKELIHOOD} must be a numeric array of shape {expected} in manifest order",
                    f"got {likelihood.dtype} {likelihood.shape}")
        )
        return {}
    bad_rows = np.flatnonzero(~np.isfinite(likelihood).all(axis=-1))
    for row in bad_rows:
        problems.append(Problem(f"{DOA_LIKELIHOOD}: NaN or Inf in the row of mixture id", dataset.mixture_ids[row]))
    return dict(zip(dataset.mixture_ids, azimuth_from_likelihood(likelihood).tolist()))


def load_submission(path: Path, dataset: Dataset) -> Submission:
    """Read a submission folder and check its structure against a dataset.

    Audio content (readability, channels, rate, length, NaN/Inf, silence) is checked per item
    by :func:`check_audio` while scoring, so that every file is decoded once.

    Returns:
        The submission, with every structural problem found in ``problems``.

    Raises:
        LusebenchError: when ``path`` is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise LusebenchError(f"submission folder not found: {path}")
    problems: list[Problem] = []
    system = _read_system(path, problems)
    has_audio = (path / AUDIO_DIR).exists()
    has_doa = (path / DOA_CSV).exists() or (path / DOA_LIKELIHOOD).exists()
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
        if (path / DOA_LIKELIHOOD).exists():
            azimuths = _read_likelihood(path / DOA_LIKELIHOOD, dataset, problems)
        if (path / DOA_CSV).exists():
            azimuths = _read_doa_csv(path / DOA_CSV, dataset, problems)
    return Submission(path, system, tasks, audio, azimuths, tuple(problems))


def check_audio(file: Path, num_samples: int, sample_rate: int) -> tuple[np.ndarray | None, list[Problem]]:
    """Decode one extracted-target file and check it.

    Args:
        file: the audio file.
        num_samples: expected samples per channel.
        sample_rate: expected rate in Hz.

    Returns:
        ``(audio, problems)``: audio (2, time) float32 when there is no problem, else ``None``.
    """
    try:
        audio, rate = read_audio(file)
    except LusebenchError as error:
        return None, [Problem("unreadable audio file", f"{file.name} ({error})")]
    problems = []
    if audio.shape[0] != NUM_CHANNELS:
        problems.append(Problem(f"wrong channel count (expected {NUM_CHANNELS})", f"{file.name}: {audio.shape[0]}"))
    if rate != sample_rate:
        problems.append(Problem(f"wrong sample rate (expected {sample_rate} Hz)", f"{file.name}: {rate}"))
    if audio.shape[1] != num_samples:
        problems.append(Problem("wrong length", f"{file.name}: {audio.shape[1]} samples, expected {num_samples}"))
    if not np.isfinite(audio).all():
        problems.append(Problem("NaN or Inf samples", file.name))
    elif audio.size and (np.max(np.abs(audio), axis=-1) < SILENCE_PEAK).any():
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
    """Write ``doa.csv`` (mixture_id, azimuth_deg) into a submission folder, atomically."""
    table = pd.DataFrame({"mixture_id": list(azimuths_deg), "azimuth_deg": list(azimuths_deg.values())})
    atomic_write(Path(path) / DOA_CSV, lambda tmp: table.to_csv(tmp, index=False))
