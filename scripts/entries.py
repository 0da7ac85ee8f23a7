"""Make and check the committed leaderboard entries (lusebench/leaderboard/entries/).

Every entry holds what ``lusebench evaluate`` wrote (``results.json``, ``figures/``), its item
table gzipped (``items.csv.gz``, which ``lusebench figures`` reads), and ``provenance.json``: the
exact commands that made it and the lusebench commit of each; a trained entry also holds the run's
``metrics.jsonl`` and the ``provenance.json`` of its training run (train-baseline's command, commit
and whether the checkout was clean).

    # the reference entries, on the fixed sets rendered with `lusebench simulate --benchmark ...`
    python scripts/entries.py references --data data/minicaps-test-2src data/minicaps-test-3src
    python scripts/entries.py references --data data/test-2src data/test-3src --into debcaps/
    python scripts/entries.py references --data data/test-2src-unseen-head data/test-3src-unseen-head --into debcaps/

    # re-run the cheapest trained rows (MLP-GCC, ~5 min each on one core) with the command their
    # entry records, and compare the new means with the entry's 95% intervals; --write replaces
    # the entry by the new run when it lands inside them
    python scripts/entries.py check debcaps/small-mlp-gcc-2src --out runs/check [--test-data data/test-2src]

    # bring entries to the current results schema from their item tables (lusebench rescore)
    python scripts/entries.py rescore [ENTRY ...]

    # install one system of a finished one-system replicate run as an entry, with the command that made it
    python scripts/entries.py add debcaps/small-luseel-2src --out runs/debcaps-2src --system luseel \
        --command "lusebench replicate --sources 2 --preset small --jobs 2 --systems luseel --seed 0 --out OUT"

    # score that entry's checkpoint on its test set's unseen-head twin: entry debcaps/small-luseel-2src-unseen-head,
    # which the leaderboard shows beside the entry's own row
    python scripts/entries.py twin debcaps/small-luseel-2src --out runs/debcaps-2src --data data/test-2src-unseen-head

Run `check` before committing entries: a row whose re-run leaves its interval does not reproduce.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lusebench.leaderboard.build import DEFAULT_ENTRIES  # noqa: E402
from lusebench.provenance import provenance  # noqa: E402

# Means compared with the entry's interval over mixtures, per task.
CHECKED = ("si_snri_db", "sdri_db", "doa_accuracy_pct", "doa_mae_deg")


def _lusebench(*argv: str) -> str:
    """Runs a lusebench command from this checkout; returns its command line as provenance records it."""
    command = ["lusebench", *argv]
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, "-m", "lusebench.cli", *argv], check=True, cwd=ROOT)
    return shlex.join(command)


def install(results: Path, name: str, commands: list[str], run: Path | None = None, note: str = "") -> Path:
    """Copies an evaluate output folder into ``entries/name`` with its provenance (replacing the entry);
    ``name`` may hold a folder (``debcaps/reference-oracle-2src``)."""
    entry = DEFAULT_ENTRIES / name
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
    try:  # a run folder missing a file leaves no staging folder among the entries
        staging.chmod(0o755)  # mkdtemp's 0700 would ship an entry other users cannot read
        shutil.copyfile(results / "results.json", staging / "results.json")
        shutil.copytree(results / "figures", staging / "figures")
        with open(results / "items.csv", "rb") as source, gzip.GzipFile(staging / "items.csv.gz", "wb", mtime=0) as target:
            shutil.copyfileobj(source, target)  # mtime 0: the same table gives the same bytes
        record = {"commands": commands, "made_with": provenance(None), "note": note}
        record["made_with"].pop("command")
        if run is not None:
            shutil.copyfile(run / "metrics.jsonl", staging / "metrics.jsonl")
            record["training"] = json.loads((run / "provenance.json").read_text())
            record["train_config"] = json.loads((run / "train_config.json").read_text())
        (staging / "provenance.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(staging)
        raise
    if entry.exists():
        shutil.rmtree(entry)
    staging.rename(entry)
    print(f"entry written: {entry}")
    return entry


def _replicate_system(name: str, command: str) -> tuple[list[str], str]:
    """A one-system `lusebench replicate` command's words and its system; exits where it is not one."""
    argv = shlex.split(command)
    if argv[:2] != ["lusebench", "replicate"] or "--systems" not in argv[:-1]:
        sys.exit(f"{name}: its command is not a one-system `lusebench replicate`: {command}")
    return argv, argv[argv.index("--systems") + 1]


def _twin_suffix(folder: Path) -> tuple[int, str]:
    """A rendered set's source count and what its name adds to test-Nsrc (test-2src-unseen-head -> -unseen-head)."""
    sources = json.loads((folder / "config.json").read_text())["num_sources"]
    return sources, folder.name.partition(f"{sources}src")[2]


def references(data: list[Path], workers: int, into: str = "") -> None:
    for folder in data:
        # A twin of a set keeps its name's tail: test-2src-unseen-head -> reference-oracle-2src-unseen-head.
        sources, twin = _twin_suffix(folder)
        for kind in ("mixture", "oracle", "random"):
            with tempfile.TemporaryDirectory() as scratch:
                submission, results = Path(scratch) / "submission", Path(scratch) / "results"
                commands = [
                    _lusebench("reference", kind, "--data", str(folder), "--out", str(submission), "--no-progress"),
                    _lusebench("evaluate", str(submission), "--data", str(folder), "--out", str(results),
                               "--workers", str(workers), "--no-progress"),
                ]
                install(results, f"{into}reference-{kind}-{sources}src{twin}", commands)


def _means_inside(new: dict, old: dict) -> list[str]:
    """One line per checked metric: new mean, the entry's mean and interval, and whether it is inside."""
    lines = []
    for key in CHECKED:
        if key not in old:
            continue
        cell, mean = old[key], new[key]["mean"]
        inside = cell["ci95_low"] <= mean <= cell["ci95_high"]
        lines.append(f"{'PASS' if inside else 'FAIL'} {key}: {mean:.3f} against {cell['mean']:.3f} "
                     f"[{cell['ci95_low']:.3f}, {cell['ci95_high']:.3f}]")
    return lines


def check(name: str, out: Path, test_data: Path | None, write: bool, command: str | None = None) -> int:
    entry = DEFAULT_ENTRIES / name
    if command is None:  # the entry's command as this lusebench runs it ("rerun"), else the one it records
        record = json.loads((entry / "provenance.json").read_text())
        command = record.get("rerun", record["commands"][0])
    argv, system = _replicate_system(name, command)
    argv = argv[1:]
    argv[argv.index("--out") + 1] = str(out)
    if test_data is not None:  # the set the entry was scored on, already rendered (evaluate checks its fingerprint)
        if "--test-data" in argv:
            argv[argv.index("--test-data") + 1] = str(test_data)
        else:
            argv += ["--test-data", str(test_data)]
    if "--test-data" in argv and not (ROOT / argv[argv.index("--test-data") + 1]).is_dir():
        name = Path(argv[argv.index("--test-data") + 1]).name
        sys.exit(f"render the entry's test set first: lusebench simulate --benchmark {name} --out {argv[argv.index('--test-data') + 1]}"
                 " (or pass --test-data)")
    ran = _lusebench(*argv, "--no-progress")
    results = out / "results" / system
    new = json.loads((results / "results.json").read_text())
    old = json.loads((entry / "results.json").read_text())
    if new["dataset"]["fingerprint"] != old["dataset"]["fingerprint"]:
        sys.exit(f"scored on another set ({new['dataset']['fingerprint'][:12]}) than the entry ({old['dataset']['fingerprint'][:12]})")
    lines = _means_inside(new["metrics"]["overall"], old["metrics"]["overall"])
    print("\n".join(lines))
    passed = all(line.startswith("PASS") for line in lines)
    print(f"{name}: {'reproduces' if passed else 'does NOT reproduce'} (new run in {out})")
    if write and passed:
        install(results, name, [ran.replace(str(out), "OUT")], run=out / "runs" / system,
                note=f"re-made by `scripts/entries.py check` from: {command}")
    return 0 if passed else 1


def add(name: str, out: Path, system: str, command: str, note: str = "") -> None:
    """Installs ``system`` of the replicate folder ``out`` as entry ``name``; ``command`` is the
    one-system replicate that made it, with ``OUT`` for its folder, so that ``check`` can re-run it;
    ``note`` says what else made it (e.g. a submission re-made from the run's checkpoint)."""
    argv, named = _replicate_system(name, command)
    if named != system or "--out" not in argv[:-1] or argv[argv.index("--out") + 1] != "OUT":
        sys.exit(f"--command must be the one-system `lusebench replicate ... --systems {system} ... --out OUT` that made it")
    install(out / "results" / system, name, [command], run=out / "runs" / system, note=note)


def twin(name: str, out: Path, data: Path, workers: int) -> None:
    """Scores the checkpoint behind entry ``name`` (in its replicate folder ``out``) on ``data``, a twin
    of the entry's test set, and installs it as ``name`` plus the twin's suffix (``-unseen-head``).
    The record starts with the entry's replicate command, so the twin says how its checkpoint was made."""
    record = json.loads((DEFAULT_ENTRIES / name / "provenance.json").read_text())
    command = record["commands"][0]
    _, system = _replicate_system(name, command)
    run = out / "runs" / system
    if json.loads((run / "train_config.json").read_text()) != record.get("train_config"):
        sys.exit(f"{run} is not the run of entry {name}: their train_config.json differ")
    sources, suffix = _twin_suffix(data)
    if not name.endswith(f"{sources}src") or not suffix:
        sys.exit(f"{data.name} is not a twin of {name}'s {sources}-source test set (e.g. test-{sources}src-unseen-head)")
    with tempfile.TemporaryDirectory() as scratch:
        submission, results = Path(scratch) / "submission", Path(scratch) / "results"
        commands = [
            command,
            _lusebench("infer", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--out", str(submission),
                       "--no-progress").replace(str(out), "OUT"),
            _lusebench("evaluate", str(submission), "--data", str(data), "--out", str(results),
                       "--workers", str(workers), "--no-progress"),
        ]
        install(results, f"{name}{suffix}", commands, run=run, note=f"{name}'s checkpoint scored on {data.name}")


def rescore(names: list[str]) -> None:
    """``lusebench rescore`` on committed entries (their track metrics and aggregates, from the item
    table): the table is unpacked for it and packed again, and the command joins the entry's record."""
    for name in names or sorted(str(p.parent.relative_to(DEFAULT_ENTRIES)) for p in DEFAULT_ENTRIES.rglob("results.json")):
        entry = DEFAULT_ENTRIES / name
        with gzip.open(entry / "items.csv.gz", "rb") as source, open(entry / "items.csv", "wb") as target:
            shutil.copyfileobj(source, target)
        command = _lusebench("rescore", str(entry.relative_to(ROOT)))
        with open(entry / "items.csv", "rb") as source, gzip.GzipFile(entry / "items.csv.gz", "wb", mtime=0) as target:
            shutil.copyfileobj(source, target)
        (entry / "items.csv").unlink()
        record = json.loads((entry / "provenance.json").read_text())
        record["commands"].append(command)
        record.setdefault("rescored_with", []).append({k: v for k, v in provenance(None).items() if k != "command"})
        (entry / "provenance.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    refs = sub.add_parser("references", help="re-make the reference entries on rendered fixed sets")
    refs.add_argument("--data", type=Path, nargs="+", required=True, help="rendered fixed sets (test-2src, test-3src)")
    refs.add_argument("--workers", type=int, default=2, help="scoring processes (default 2)")
    refs.add_argument("--into", default="", help="folder of entries/ to write them in, e.g. debcaps/ (default: entries/)")
    checked = sub.add_parser("check", help="re-run a one-system replicate entry and compare it with its intervals")
    checked.add_argument("entry", help="entry name, e.g. debcaps/small-mlp-gcc-2src")
    checked.add_argument("--out", type=Path, required=True, help="replicate folder for the re-run (resumed if present)")
    checked.add_argument("--test-data", type=Path, help="the rendered fixed set, instead of rendering it into OUT")
    checked.add_argument("--write", action="store_true", help="replace the entry by the re-run when it reproduces")
    checked.add_argument("--command", help="the replicate command that made the entry, for an entry that does not "
                         "record it yet (default: its provenance.json's rerun, else its first command)")
    rescored = sub.add_parser("rescore", help="lusebench rescore committed entries from their item tables")
    rescored.add_argument("entries", nargs="*", help="entry names (default: every entry)")
    added = sub.add_parser("add", help="install one system of a finished one-system replicate run as an entry")
    added.add_argument("entry", help="entry name, e.g. debcaps/small-luseel-2src")
    added.add_argument("--out", type=Path, required=True, help="the replicate folder")
    added.add_argument("--system", required=True, help="the system to install")
    added.add_argument("--command", required=True, help="the replicate command that made it, --out OUT")
    added.add_argument("--note", default="", help="what else made it (e.g. its submission re-made from the checkpoint)")
    twinned = sub.add_parser("twin", help="score a one-system replicate entry's checkpoint on its test set's twin")
    twinned.add_argument("entry", help="entry name, e.g. debcaps/small-luseel-2src")
    twinned.add_argument("--out", type=Path, required=True, help="the replicate folder that made the entry")
    twinned.add_argument("--data", type=Path, required=True, help="the rendered twin, e.g. data/test-2src-unseen-head")
    twinned.add_argument("--workers", type=int, default=2, help="scoring processes (default 2)")
    args = parser.parse_args()
    if args.action == "twin":
        twin(args.entry, args.out, args.data, args.workers)
        return 0
    if args.action == "add":
        add(args.entry, args.out, args.system, args.command, args.note)
        return 0
    if args.action == "rescore":
        rescore(args.entries)
        return 0
    if args.action == "references":
        references(args.data, args.workers, args.into)
        return 0
    return check(args.entry, args.out, args.test_data, args.write, args.command)


if __name__ == "__main__":
    sys.exit(main())
