#!/usr/bin/env python
"""Draw the fixed AudioCaps sets' recipe tables from the original AudioCaps v1 caption tables.

Input: ``test.csv`` and ``val.csv`` of AudioCaps v1 (``cdjkim/audiocaps``, ``dataset/`` at commit
d004db3; columns ``audiocap_id, youtube_id, start_time, caption``). Output: one
``<set>.csv`` per fixed AudioCaps set of ``BENCHMARK_SETS`` (ids, caption digests, azimuths,
SNRs; no caption text) and ``SHA256SUMS`` in ``lusebench/assets/audiocaps_sets``. The draw is
:func:`lusebench.simulation.audiocaps_sets.draw_table`; the output is byte-identical from run to run.

Usage::

    python scripts/build_audiocaps_sets.py --captions /path/to/audiocaps/dataset [--check]

``--check`` compares a fresh draw with the committed tables instead of writing them.
``--excerpt DIR`` writes, instead, the caption rows of the clips that the first recipes of each
set use (``EXCERPT_RECIPES``) into ``DIR/test.csv`` and ``DIR/val.csv``: the tests' stand-in for a
user's caption tables (tests/simulation/data/audiocaps-excerpt).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from lusebench.simulation.audiocaps_sets import draw_table, load_table, table_path
from lusebench.simulation.config import BENCHMARK_SETS, SPLIT_CODES
from lusebench.simulation.corpus import read_audiocaps_csv


def tables(captions: Path) -> dict[str, str]:
    """Set name -> the CSV text of its drawn table."""
    drawn = {}
    for name, fixed in sorted(BENCHMARK_SETS.items()):
        if fixed.recipes != name:  # not an AudioCaps set, or a reverberant twin of one
            continue
        table = read_audiocaps_csv(captions / f"{fixed.split}.csv")
        recipes = draw_table(name, table, fixed.split, fixed.num_sources, fixed.num_mixtures, fixed.seed,
                             SPLIT_CODES[fixed.split])
        drawn[name] = recipes.to_csv(index=False, lineterminator="\n")
    return drawn


# Recipes per set whose clips the test excerpt holds.
EXCERPT_RECIPES = {"audiocaps-test-2src": 12, "audiocaps-val-2src": 6}


def write_excerpt(captions: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in ("test", "val"):
        youtube_ids: set[str] = set()
        for name, count in EXCERPT_RECIPES.items():
            fixed = BENCHMARK_SETS[name]
            if fixed.split == split:
                recipes = load_table(name, fixed.num_sources)[0].iloc[:count]
                youtube_ids |= {y for k in range(fixed.num_sources) for y in recipes[f"youtube_id_{k}"]}
        table = read_audiocaps_csv(captions / f"{split}.csv")
        table[table["youtube_id"].isin(youtube_ids)].to_csv(out / f"{split}.csv", index=False, lineterminator="\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=Path, required=True, help="folder of AudioCaps v1's test.csv and val.csv")
    parser.add_argument("--check", action="store_true", help="compare with the committed tables; write nothing")
    parser.add_argument("--excerpt", type=Path, metavar="DIR", help="write the tests' caption excerpt into DIR instead")
    args = parser.parse_args()
    if args.excerpt is not None:
        write_excerpt(args.captions, args.excerpt)
        print(f"wrote the caption rows of {EXCERPT_RECIPES} to {args.excerpt}")
        return 0
    drawn = tables(args.captions)
    if args.check:
        differing = [name for name, text in drawn.items() if table_path(name).read_text() != text]
        print("tables match a fresh draw" if not differing else f"tables differ from a fresh draw: {', '.join(differing)}")
        return 1 if differing else 0
    sums = []
    for name, text in drawn.items():
        table_path(name).write_text(text)
        sums.append(f"{hashlib.sha256(text.encode()).hexdigest()}  {name}.csv\n")
    (table_path("x").parent / "SHA256SUMS").write_text("".join(sums))
    print(f"wrote {len(drawn)} tables to {table_path('x').parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
