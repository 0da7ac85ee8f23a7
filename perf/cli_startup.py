"""Start-up time of the ``lusebench`` command, against the code of another git ref (main by default).

Runs each command as a fresh process, the two trees alternated call by call, and prints the median
and range of the wall times and the median CPU time (user + system, of the process and its children)
beside them, with ``python -c pass`` (the interpreter alone) as the floor:
- ``--version`` and ``--help`` (parse only: what a user waits for before reading anything);
- ``train-baseline --help`` (it shows every preset's recipe);
- ``simulate --num 1 --duration 1`` into a new folder: imports, corpus and HRTF set-up and one
  1 s mixture written, the time before work on a real set starts plus a few ms.

    python perf/cli_startup.py --repeats 5 --baseline main

The machine's load is printed beside the figures: on a shared machine every wall time grows with it,
while the CPU times barely do, so compare CPU times when the machine is busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python -c pass": [],
    "--version": ["--version"],
    "--help": ["--help"],
    "train-baseline --help": ["train-baseline", "--help"],
    # minicaps, named: the README's figures were measured on it, and a baseline ref may default to another corpus.
    "simulate 1 x 1 s": ["simulate", "--num", "1", "--duration", "1", "--corpus", "minicaps", "--no-progress", "--out", "{out}"],
}


def _export(ref: str, into: Path) -> Path:
    """The package of ``ref`` as files (git archive), so both trees run from source the same way."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(tree: Path, argv: list[str], scratch: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one fresh ``python -m lusebench.cli *argv`` (``python -c pass`` for no argv)."""
    out = tempfile.mkdtemp(dir=scratch)
    argv = [a.format(out=Path(out) / "set") for a in argv]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "lusebench.cli", *argv] if argv else [sys.executable, "-c", "pass"]
    cpu, started = _children_cpu_s(), time.perf_counter()
    # cwd elsewhere: `python -m` puts the working directory first on sys.path, before PYTHONPATH.
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=scratch)
    return time.perf_counter() - started, _children_cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="git ref to compare with (default main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trees = {"this tree": ROOT, args.baseline: _export(args.baseline, scratch)}
        for name, argv in COMMANDS.items():
            walls: dict[str, list[float]] = {label: [] for label in trees}
            cpus: dict[str, list[float]] = {label: [] for label in trees}
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    wall, cpu = _time(tree, argv, scratch)
                    walls[label].append(wall)
                    cpus[label].append(cpu)
            shown = "; ".join(f"{label} {statistics.median(w):.2f} s [{min(w):.2f}, {max(w):.2f}], "
                              f"CPU {statistics.median(cpus[label]):.2f} s" for label, w in walls.items())
            print(f"{name:>22}: {shown}  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
