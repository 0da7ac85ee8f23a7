"""What the guarded door (lusebench/io.py, lusebench/schema.py) costs against reading without it.

Three figures, each the best of ``--repeats`` runs:

- ``decode_json`` (depth and number length bounded before decoding) against ``json.loads`` alone,
  on a results-like document of ``--json-mb`` MB (real results.json files are tens of KB);
- ``check_manifest`` (types, ranges, plain ids, every path resolved inside its folder) on a
  manifest of ``--rows`` rows, against ``pd.read_parquet`` of the same manifest;
- ``read_regular_file`` (lstat, O_NONBLOCK open, fstat) against ``Path.read_bytes`` on one small file.

    python perf/door_overhead.py
    python perf/door_overhead.py --rows 10000 --json-mb 16
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lusebench.io import read_regular_file
from lusebench.schema import check_manifest, decode_json


def best_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def manifest(rows: int) -> pd.DataFrame:
    ids = [f"test-3src-{i:06d}" for i in range(rows)]
    return pd.DataFrame({
        "mixture_id": ids, "split": "test", "index": range(rows), "num_sources": 3, "seed": 0,
        "sample_rate": 16000, "num_samples": 160000, "duration_s": 10.0, "caption": "a dog barks",
        "target_azimuth_deg": [(7.3 * i) % 360 for i in range(rows)], "angular_separation_deg": 42.0,
        "mixture_path": [f"audio/mixture/{i}.flac" for i in ids], "target_path": [f"audio/target/{i}.flac" for i in ids],
        "mixture_sha256": "0" * 64, "target_sha256": "1" * 64,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="manifest rows (default 1000, a fixed test set)")
    parser.add_argument("--json-mb", type=float, default=8.0, help="size of the JSON document (default 8 MB)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the best is shown (default 5)")
    args = parser.parse_args()

    cell = {"mean": 1.234567, "ci95": 0.5, "ci95_low": 0.7, "ci95_high": 1.7, "n": 1000, "name": 'a "quoted" [name]'}
    count = int(args.json_mb * 1e6 / len(json.dumps(cell)))
    payload = json.dumps({"cells": [cell] * count}).encode()
    plain = best_s(lambda: json.loads(payload), args.repeats)
    guarded = best_s(lambda: decode_json(payload, "doc.json"), args.repeats)
    print(f"JSON {len(payload) / 1e6:.1f} MB: json.loads {plain * 1e3:.0f} ms, decode_json {guarded * 1e3:.0f} ms "
          f"({guarded / plain:.2f}x)")

    with tempfile.TemporaryDirectory() as folder:
        table = manifest(args.rows)
        buffer = io.BytesIO()
        table.to_parquet(buffer)
        read = best_s(lambda: pd.read_parquet(io.BytesIO(buffer.getvalue())), args.repeats)
        checked = best_s(lambda: check_manifest(table, Path(folder) / "manifest.parquet", Path(folder)), args.repeats)
        print(f"manifest of {args.rows} rows: read_parquet {read * 1e3:.0f} ms, check_manifest {checked * 1e3:.0f} ms")

        small = Path(folder) / "system.json"
        small.write_text(json.dumps(cell))
        raw = best_s(small.read_bytes, args.repeats * 200) * 1e6
        door = best_s(lambda: read_regular_file(small, max_bytes=1 << 20), args.repeats * 200) * 1e6
        print(f"one small file: Path.read_bytes {raw:.0f} us, read_regular_file {door:.0f} us")


if __name__ == "__main__":
    main()
