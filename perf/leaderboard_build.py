"""How long `lusebench leaderboard` takes for many entries, against just decoding their JSON.

Prints the time to check, rank and render N fake results files (with figures inlined), the time
to merely `json.load` the same files (the floor any leaderboard pays), their ratio, and page sizes.

    python perf/leaderboard_build.py [N]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from lusebench.leaderboard import build_leaderboard, find_results
from lusebench.testing.results import write_fake_results


def _best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(count: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(count):
            write_fake_results(
                root / "entries" / f"s{i}",
                system=f"system-{i}",
                si_snri_db=float(i % 17),
                num_sources=(2, 3),
                fingerprint=f"{i % 4:x}" * 64,  # four test sets
                figures=("fig2",) if i % 2 else (),
            )
        paths = find_results([root / "entries"])
        full = _best_of(3, lambda: build_leaderboard([root / "entries"], root / "site"))
        floor = _best_of(3, lambda: [json.loads(p.read_text()) for p in paths])
        board = build_leaderboard([root / "entries"], root / "site")
        print(f"entries: {count} results files -> {len(board.tables)} tables")
        print(f"build_leaderboard (check + rank + Markdown + HTML): {full * 1e3:.1f} ms")
        print(f"json.load of the same files (named alternative, the floor): {floor * 1e3:.1f} ms")
        print(f"ratio build / json.load: {full / floor:.1f}x")
        print(f"per entry: {full / count * 1e3:.3f} ms")
        sizes = {path.name: path.stat().st_size / 1024 for path in (board.html, board.markdown)}
        print(", ".join(f"{name}: {size:.1f} KiB" for name, size in sizes.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
