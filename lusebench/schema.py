"""The schemas of the files strangers hand us, checked once where they are read.

``evaluate`` checks a submission's ``system.json`` and the leaderboard checks the ``system`` block
that ``evaluate`` copied into ``results.json`` with the same rules, so a file that one accepts the
other cannot refuse. Every dataset folder's ``manifest.parquet`` is checked here too
(:func:`check_manifest`), by every command that reads one. Sizes are bounded before anything is
decoded: the file's bytes, the JSON nesting depth and the length of every number (a 100,000-deep
document or a 5,000-digit integer must not reach a RecursionError or Python's int limit), then
every text field's length.

The checks are written by hand rather than with pydantic or jsonschema (both were weighed): each
problem is reported in the benchmark's own words with the file and field named, every problem of
a file is collected into one report (``Fields``), and a manifest is checked a column at a time
with pandas, which a per-record validator would do a thousand times slower; neither library
bounds depth or number length before decoding, which is what the attacks needed.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lusebench.errors import LusebenchError
from lusebench.io import plain_name, read_regular_file, resolve_inside

Task = Literal["extraction", "localization"]
TASKS: tuple[Task, ...] = ("extraction", "localization")
# Generous for what the files hold (a results.json is a few tens of KB), small enough to read at once.
MAX_SYSTEM_JSON_BYTES = 1 << 20
MAX_RESULTS_JSON_BYTES = 16 << 20
# Longest text a leaderboard cell shows; a 200 MB description is an attack, not a description.
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 10_000
CHANNELS = (1, 2)


# No lusebench file nests deeper than 6 or writes a number longer than 25 characters.
MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 100
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: 1.4x faster than (?:[^"\\]|\\.)*
_LONG_NUMBER = re.compile(rb"[-+0-9.eE]{%d,}" % (MAX_NUMBER_CHARS + 1))


def decode_json(payload: bytes, name: str | Path) -> Any:
    """Decode JSON bytes, with the nesting depth and every number's length bounded before decoding.

    Raises:
        LusebenchError: naming ``name`` when the bytes are not UTF-8 JSON, nest deeper than
            ``MAX_JSON_DEPTH`` or hold a number longer than ``MAX_NUMBER_CHARS`` characters.
    """
    bare = _JSON_STRING.sub(b'""', payload)  # brackets and digits inside strings are text
    if _LONG_NUMBER.search(bare):
        raise LusebenchError(f"{name} holds a number longer than {MAX_NUMBER_CHARS} characters")
    codes = np.frombuffer(bare, dtype=np.uint8)
    opening = (codes == ord("[")) | (codes == ord("{"))
    marks = opening | (codes == ord("]")) | (codes == ord("}"))
    steps = np.where(opening[marks], 1, -1)  # +1 / -1 at each bracket, in order
    if steps.size and int(np.cumsum(steps).max()) > MAX_JSON_DEPTH:
        raise LusebenchError(f"{name} is nested too deeply to be a lusebench file (more than {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise LusebenchError(f"{name} is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise LusebenchError(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except (RecursionError, ValueError) as error:  # bounded above; kept as the last guard
        raise LusebenchError(f"{name} cannot be decoded: {type(error).__name__}") from None


def load_json(path: Path, max_bytes: int, *, follow_symlinks: bool = True) -> Any:
    """Decode a JSON file of at most ``max_bytes`` (a regular file; see :func:`decode_json`).

    Raises:
        LusebenchError: naming the file when it is missing, not a regular file, too large, not
            UTF-8 JSON, nested too deeply or holds too long a number.
    """
    return decode_json(read_regular_file(path, follow_symlinks=follow_symlinks, max_bytes=max_bytes), path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(max_chars: int, non_empty: bool = False) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= max_chars and (bool(v.strip()) or not non_empty)


# Each kind is named as the error message says it: "system.name should be <kind>, not ...".
KINDS: Mapping[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str) and len(v) <= MAX_TEXT_CHARS,
    "a non-empty string": _text(MAX_TEXT_CHARS, non_empty=True),
    f"a non-empty string of at most {MAX_NAME_CHARS} characters": _text(MAX_NAME_CHARS, non_empty=True),
    f"a string of at most {MAX_TEXT_CHARS} characters": _text(MAX_TEXT_CHARS),
    "an integer": _is_int,
    "a positive integer": lambda v: _is_int(v) and v > 0,
    "a non-negative integer": lambda v: _is_int(v) and v >= 0,
    "1 or 2": lambda v: _is_int(v) and v in CHANNELS,
    "a finite number": _is_number,
    "a boolean": lambda v: isinstance(v, bool),
    "an object": lambda v: isinstance(v, dict),
    "a non-empty list of positive integers": lambda v: isinstance(v, list)
    and 0 < len(v) <= 16
    and all(_is_int(x) and x > 0 for x in v),
    "a non-empty list of tasks (extraction, localization, each once)": lambda v: isinstance(v, list)
    and bool(v)
    and all(isinstance(x, str) and x in TASKS for x in v)
    and len(set(v)) == len(v),
}


def _shown(value: Any) -> str:
    # Values are decoded JSON; allow_nan shows 1e400 (decoded as inf) as Infinity.
    return json.dumps(value)[:40] if not isinstance(value, (dict, list)) else type(value).__name__


class Fields:
    """Reads typed fields from decoded JSON objects and collects every problem it meets."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def take(
        self,
        block: Mapping[str, Any] | None,
        where: str,
        key: str,
        kind: str,
        *,
        nullable: bool = False,
        default: Any = ...,
    ) -> Any:
        """``block[key]`` if it is of ``kind``; else ``None`` and a problem. A missing key gives ``default`` when one is given."""
        if block is None:  # the enclosing object was already reported
            return None
        if key not in block:
            if default is not ...:
                return default
            self.problems.append(f"{where}.{key} is missing")
            return None
        value = block[key]
        if value is None and nullable:
            return None
        if not KINDS[kind](value):
            self.problems.append(f"{where}.{key} should be {kind}, not {_shown(value)}")
            return None
        return value


@dataclass(frozen=True)
class SystemInfo:
    """A system as its ``system.json`` describes it (and as results.json repeats it).

    Attributes:
        name: shown on the leaderboard, at most 200 characters.
        tasks: in the order of ``TASKS``.
        parameters: trainable parameters, or None when not given.
        description, link: free text (at most 10,000 characters); "" when not given.
        channels: input channels the system uses (1 or 2).
        gcc_phat: whether it uses GCC-PHAT features; None when not stated.
        absent_threshold: a ``doa_likelihood.npy`` row whose peak is below it says "target absent";
            None (the default) never reads a likelihood as absent.
    """

    name: str
    tasks: tuple[Task, ...]
    parameters: int | None = None
    description: str = ""
    link: str = ""
    channels: int = 2
    gcc_phat: bool | None = None
    absent_threshold: float | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        if self.absent_threshold is None:  # unstated: system.json and results.json stay as before the field
            del data["absent_threshold"]
        return data


def parse_system(block: Mapping[str, Any] | None, where: str, fields: Fields) -> SystemInfo | None:
    """The system described by a decoded ``system.json`` (or results.json's ``system``), checked.

    Returns:
        The system, or ``None`` when a field is wrong (each problem is added to ``fields``).
    """
    before = len(fields.problems)
    name_kind = f"a non-empty string of at most {MAX_NAME_CHARS} characters"
    text_kind = f"a string of at most {MAX_TEXT_CHARS} characters"
    name = fields.take(block, where, "name", name_kind)
    tasks = fields.take(block, where, "tasks", "a non-empty list of tasks (extraction, localization, each once)")
    values = {
        "parameters": fields.take(block, where, "parameters", "a non-negative integer", nullable=True, default=None),
        "description": fields.take(block, where, "description", text_kind, nullable=True, default="") or "",
        "link": fields.take(block, where, "link", text_kind, nullable=True, default="") or "",
        "channels": fields.take(block, where, "channels", "1 or 2", default=2),
        "gcc_phat": fields.take(block, where, "gcc_phat", "a boolean", nullable=True, default=None),
        "absent_threshold": fields.take(block, where, "absent_threshold", "a finite number", nullable=True, default=None),
    }
    if block is None or len(fields.problems) > before:
        return None
    return SystemInfo(name=name, tasks=tuple(t for t in TASKS if t in tasks), **values)


# manifest.parquet (docs/dataset-format.md): what every command that reads a dataset folder needs.
MANIFEST_COLUMNS = (
    "mixture_id",
    "split",
    "num_sources",
    "sample_rate",
    "num_samples",
    "target_azimuth_deg",
    "angular_separation_deg",
    "mixture_path",
    "target_path",
    "mixture_sha256",
    "target_sha256",
)
MAX_MANIFEST_BYTES = 1 << 30
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192_000
# A foreign set may be longer than simulate's 60 s, but not longer than an hour a mixture.
MAX_MIXTURE_SECONDS = 3600
MAX_SOURCES = 16
# Azimuths are [0, 360) in lusebench's sets; [-180, 180] is the other common convention, and the
# metrics compare azimuths on the circle, so a foreign set may use either.
AZIMUTH_RANGE_DEG = (-180.0, 360.0)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # a file checksum or a set fingerprint
_INT_RANGES = {
    "num_sources": (2, MAX_SOURCES),
    "sample_rate": (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
    "num_samples": (1, MAX_MIXTURE_SECONDS * MAX_SAMPLE_RATE),
    "index": (0, 2**63 - 1),
    "seed": (0, 2**63 - 1),
}
# Columns an absent-target row (target_absent true) leaves null: there is no target to place or write.
_TARGET_COLUMNS = ("target_azimuth_deg", "angular_separation_deg", "target_path", "target_sha256")
_FLOAT_RANGES = {
    "target_azimuth_deg": AZIMUTH_RANGE_DEG,
    "angular_separation_deg": (0.0, 180.0),
    "duration_s": (1e-9, float(MAX_MIXTURE_SECONDS)),
}


def read_manifest(path: Path, folder: Path) -> pd.DataFrame:
    """Read and check a dataset folder's ``manifest.parquet`` (a regular file, at most 1 GiB).

    Raises:
        LusebenchError: one line naming the file and the first problem (see :func:`check_manifest`).
    """
    payload = read_regular_file(path, max_bytes=MAX_MANIFEST_BYTES)
    try:
        manifest = pd.read_parquet(io.BytesIO(payload))
    except Exception as error:  # pyarrow raises many types for a damaged file
        raise LusebenchError(f"cannot read {path}: {(str(error).splitlines() or [type(error).__name__])[0]}") from None
    return check_manifest(manifest, path, folder)


def check_manifest(manifest: pd.DataFrame, path: Path, folder: Path) -> pd.DataFrame:
    """Check a manifest's columns, types and ranges, and that its ids and paths stay in ``folder``.

    Mixture ids must be plain file names (they name submission files); every ``*_path`` must lie
    inside ``folder``; every ``*_sha256`` must be 64 hex digits; counts and rates must be integers
    in range (one sample rate for the set), azimuths and separations finite numbers in range, except
    the target columns of an absent-target row (``target_absent`` true), which may be null.

    Returns:
        ``manifest``, unchanged.

    Raises:
        LusebenchError: one line naming ``path``, the column, and the first offending row.
    """
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise LusebenchError(f"{path} lacks column(s): {', '.join(missing)}")
    if manifest.empty:
        raise LusebenchError(f"{path} has no rows")
    ids = manifest["mixture_id"]
    for position, value in enumerate(ids):
        plain_name(value, f"{path}: mixture_id of row {position}")
    duplicated = ids[ids.duplicated()].tolist()
    if duplicated:
        raise LusebenchError(f"{path} repeats mixture id(s): {', '.join(duplicated[:5])}")

    def first_bad(column: str, bad: np.ndarray, what: str) -> None:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            shown = json.dumps(manifest[column].iloc[row], default=str)[:60]
            raise LusebenchError(f"{path}: {column} of {ids.iloc[row]} is {shown}; it must be {what}")

    absent = np.zeros(len(manifest), dtype=bool)
    if "target_absent" in manifest.columns:
        if not pd.api.types.is_bool_dtype(manifest["target_absent"]):
            raise LusebenchError(f"{path}: column target_absent holds {manifest['target_absent'].dtype}, not booleans")
        absent = manifest["target_absent"].to_numpy(dtype=bool)
    for column, (low, high) in _INT_RANGES.items():
        if column not in manifest.columns:
            continue
        values = manifest[column]
        if not pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise LusebenchError(f"{path}: column {column} holds {values.dtype}, not integers")
        first_bad(column, ((values < low) | (values > high)).to_numpy(), f"an integer in [{low}, {high}]")
    for column, (low, high) in _FLOAT_RANGES.items():
        if column not in manifest.columns:
            continue
        values = manifest[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise LusebenchError(f"{path}: column {column} holds {values.dtype}, not numbers")
        numbers = values.to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(numbers) & (numbers >= low) & (numbers <= high))
        if column in _TARGET_COLUMNS:
            bad &= ~(absent & np.isnan(numbers))
        first_bad(column, bad, f"a finite number in [{low:g}, {high:g}]")
    if manifest["sample_rate"].nunique() != 1:
        raise LusebenchError(f"{path} mixes sample rates: {sorted(manifest['sample_rate'].unique())}")
    for column in ("split", "caption"):
        if column in manifest.columns:
            first_bad(column, ~manifest[column].map(lambda v: isinstance(v, str)).to_numpy(dtype=bool), "a string")
    # File columns: <prefix>_path and <prefix>_sha256; a source that only some rows save may be null.
    for column in [c for c in manifest.columns if c.endswith("_path")]:
        prefix, required = column[: -len("_path")], column in MANIFEST_COLUMNS
        sha_column = f"{prefix}_sha256"
        digests = manifest[sha_column].tolist() if sha_column in manifest.columns else [None] * len(manifest)
        for mixture_id, value, digest, no_target in zip(ids.tolist(), manifest[column].tolist(), digests, absent):
            if (value is None or isinstance(value, float) and math.isnan(value)) and (
                not required or no_target and column in _TARGET_COLUMNS
            ):
                continue
            resolve_inside(folder, value, f"{path}: {column} of {mixture_id}")
            if not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
                shown = json.dumps(digest, default=str)[:70]
                raise LusebenchError(f"{path}: {sha_column} of {mixture_id} is {shown}; it must be 64 lowercase hex digits")
    return manifest
