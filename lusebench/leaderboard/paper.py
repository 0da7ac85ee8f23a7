"""The paper's Table 1 as data, kept apart from anything lusebench measures.

The numbers live in ``paper_table1.json`` inside this package (so an installed lusebench has them)
and were trained and scored by the paper's authors on AudioCaps with 4x A800 GPUs; they are
shown in their own tables and never ranked against measured rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lusebench.errors import LusebenchError
from lusebench.leaderboard.results import Stat
from lusebench.leaderboard.tables import COLUMNS, Row

PAPER_TABLE_PATH = Path(__file__).with_name("paper_table1.json")
PAPER_PROVENANCE = "reported in the paper (AudioCaps, 4x A800)"


@dataclass(frozen=True)
class PaperTable:
    """Table 1 of the paper: rows by source count, in the paper's order, with their provenance label."""

    test_set: str
    provenance: str
    rows_by_num_sources: Mapping[int, tuple[Row, ...]]


def load_paper_table(path: Path = PAPER_TABLE_PATH) -> PaperTable:
    """Read the paper's Table 1 from JSON; ``null`` stands for the paper's "-" (task not done).

    Raises:
        LusebenchError: the file is unreadable, or not labelled as reported in the paper.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        provenance = data["provenance"]
        if provenance != PAPER_PROVENANCE:
            # Paper numbers must never pass for measured ones: refuse an unlabelled table.
            raise LusebenchError(f"{path}: provenance should be {PAPER_PROVENANCE!r}, not {provenance!r}")
        rows: dict[int, list[Row]] = {}
        for entry in sorted(data["rows"], key=lambda e: e["system_number"]):
            values = {c.key: Stat(mean=float(entry[c.key])) for c in COLUMNS if entry[c.key] is not None}
            rows.setdefault(int(entry["num_sources"]), []).append(
                Row(
                    system=entry["model"],
                    tasks=tuple(entry["tasks"]),
                    gcc_phat=bool(entry["gcc_phat"]),
                    channels=int(entry["channels"]),
                    values=values,
                    system_number=int(entry["system_number"]),
                )
            )
        return PaperTable(
            test_set=data["test_set"],
            provenance=provenance,
            rows_by_num_sources={count: tuple(group) for count, group in sorted(rows.items())},
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LusebenchError(f"cannot read the paper's Table 1 from {path}: {error!r}") from None
