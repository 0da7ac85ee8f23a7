"""Start-up time of the ``lusebench`` command, against the code of another git ref (main by default).

Runs each command as a fresh process, the two trees alternated call by call, and prints the median
and range of the wall times:
- ``--version`` and ``--help`` (parse only: what a user waits for before reading anything);
- ``train-baseline --help`` (it shows every preset's recipe);
- ``simulate --num 1 --duration 1`` into a new folder: imports, corpus and HRTF set-up and one
  1 s mixture written, the time before work on a real set starts plus a few ms.

    python perf/cli_startup.py --repeats 5 --baseline main

The machine's load is printed beside the figures: on a shared machine every figure grows with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "train-baseline --help": ["train-baseline", "--help"],
    "simulate 1 x 1 s": ["simulate", "--num", "1", "--duration", "1", "--no-progress", "--out", "{out}"],
}


def _export(ref: str, into: Path) -> Path:
    """The package of ``ref`` as files (git archive), so both trees run from source the same way."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def _time(tree: Path, argv: list[str], scratch: Path) -> float:
    out = tempfile.mkdtemp(dir=scratch)
    argv = [a.format(out=Path(out) / "set") for a in argv]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    # cwd elsewhere: `python -m` puts the working directory first on sys.path, before PYTHONPATH.
    subprocess.run([sys.executable, "-m", "lusebench.cli", *argv], env=env, check=True, capture_output=True, cwd=scratch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="git ref to compare with (default main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trees = {"this tree": ROOT, args.baseline: _export(args.baseline, scratch)}
        for name, argv in COMMANDS.items():
            times: dict[str, list[float]] = {label: [] for label in trees}
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    times[label].append(_time(tree, argv, scratch))
            shown = "; ".join(f"{label} {statistics.median(t):.2f} s [{min(t):.2f}, {max(t):.2f}]"
                              for label, t in times.items())
            print(f"{name:>22}: {shown}  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
