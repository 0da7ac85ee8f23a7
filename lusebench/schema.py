"""One schema for the JSON files strangers hand us: ``system.json`` and ``results.json``.

``evaluate`` checks a submission's ``system.json`` and the leaderboard checks the ``system`` block
that ``evaluate`` copied into ``results.json`` with the same rules, so a file that one accepts the
other cannot refuse. Sizes are bounded before anything is decoded: the file's bytes, every text
field's length, and the nesting depth (a 100,000-deep document must not reach a RecursionError).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from lusebench.errors import LusebenchError
from lusebench.io import read_regular_file

Task = Literal["extraction", "localization"]
TASKS: tuple[Task, ...] = ("extraction", "localization")
# Generous for what the files hold (a results.json is a few tens of KB), small enough to read at once.
MAX_SYSTEM_JSON_BYTES = 1 << 20
MAX_RESULTS_JSON_BYTES = 16 << 20
# Longest text a leaderboard cell shows; a 200 MB description is an attack, not a description.
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 10_000
CHANNELS = (1, 2)


def load_json(path: Path, max_bytes: int, *, follow_symlinks: bool = True) -> Any:
    """Decode a JSON file of at most ``max_bytes``.

    Raises:
        LusebenchError: naming the file when it is missing, too large, not UTF-8 JSON, or nested
            deeper than the decoder's recursion limit.
    """
    payload = read_regular_file(path, follow_symlinks=follow_symlinks, max_bytes=max_bytes)
    try:
        return json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise LusebenchError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise LusebenchError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise LusebenchError(f"{path} is nested too deeply to be a lusebench file") from None


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
