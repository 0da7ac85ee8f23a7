"""Issue 24: files from strangers, tried as an attacker and a careless user would, on every command.

Each case corrupts a copy of a small valid input (a data folder, a submission, a results folder,
a checkpoint, a SOFA file, an output location), runs the command in-process and asserts: exit
code 2, one line on stderr naming the file (a submission's report: a few lines, every problem),
no traceback, nothing written inside or outside ``--out`` (the whole sandbox is compared before
and after), and an answer within seconds (an alarm fails a case that hangs, as a FIFO used to).
docs/bad-inputs.md lists the classes; lusebench/io.py and lusebench/schema.py are the door.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.io import PLAIN_NAME_RULE, load_npy, plain_name, resolve_inside
from lusebench.schema import MAX_JSON_DEPTH, decode_json
from lusebench.simulation.hrtf import kemar_path
from lusebench.testing.corpus import make_corpus

# A case that takes longer than this hangs (a FIFO opened blocking waits forever).
HANG_S = 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), clips_per_split=4, seconds=1.0)


@pytest.fixture(scope="module")
def data(corpus, tmp_path_factory) -> Path:
    """Two 1 s two-source mixtures (the tiny systems' clip length)."""
    out = tmp_path_factory.mktemp("data") / "set"
    assert main(["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--num", "2", "--duration", "1",
                 "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def oracle(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oracle") / "oracle"
    assert main(["reference", "oracle", "--data", str(data), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def results(oracle, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "results"
    assert main(["evaluate", str(oracle), "--data", str(data), "--out", str(out), "--workers", "1", "--no-figures",
                 "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    """One step of the tiny mlp-gcc (the fastest system)."""
    run = tmp_path_factory.mktemp("run") / "run"
    assert main(["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--batch-size", "2",
                 "--epoch-size", "2", "--max-steps", "1", "--val-data", str(data), "--out", str(run), "--corpus",
                 "minicaps", "--no-progress"]) == 0
    return run / "last.pt"


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` (links and FIFOs not followed): its mode, size and modification time."""
    found = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = Path(folder) / name
            status = path.lstat()
            found[str(path.relative_to(root))] = (status.st_mode, status.st_size, status.st_mtime_ns)
    return found


@contextmanager
def _no_hang() -> Iterator[None]:
    def stop(signum, frame):
        raise TimeoutError(f"the command hung for {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(argv: list[str], capsys, sandbox: Path, *, names: str, lines: int = 1) -> str:
    """Run ``lusebench ARGV``; assert exit 2, at most ``lines`` lines naming ``names``, nothing written in ``sandbox``."""
    before = _tree(sandbox)
    capsys.readouterr()
    with _no_hang():
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.startswith(f"lusebench {argv[0]}: error: "), err
    assert 1 <= err.count("\n") <= lines, err
    assert names in err, err
    assert _tree(sandbox) == before, "the command wrote or removed files"
    return err


# --- data folders: ids, paths, values and special files taken from a stranger's manifest ----------

def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to, symlinks=True)
    return to


def _edit_manifest(folder: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = folder / "manifest.parquet"
    edit(pd.read_parquet(path)).to_parquet(path)


def _set(column: str, value, row: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if isinstance(value, (list, tuple)):
            frame[column] = value
        else:
            if isinstance(value, str):
                frame[column] = frame[column].astype(object)
            frame.loc[row, column] = value
        return frame
    return edit


def _fifo_in_place(folder: Path, column: str) -> str:
    relative = pd.read_parquet(folder / "manifest.parquet")[column].iloc[-1]
    (folder / relative).unlink()
    os.mkfifo(folder / relative)
    return Path(relative).name


def _link_out(folder: Path, column: str) -> str:
    relative = pd.read_parquet(folder / "manifest.parquet")[column].iloc[0]
    (folder / relative).unlink()
    (folder / relative).symlink_to("/etc/passwd")
    return "leads out of its folder"


# Each corruption edits a copy of the data folder and returns what the message must name.
DATA_CORRUPTIONS: dict[str, Callable[[Path, Path], str]] = {
    "id escapes --out": lambda d, s: (_edit_manifest(d, _set("mixture_id", "../../escape")), "mixture_id")[1],
    "id absolute": lambda d, s: (_edit_manifest(d, _set("mixture_id", str(s / "abs"))), "not a plain file name")[1],
    "id with a separator": lambda d, s: (_edit_manifest(d, _set("mixture_id", "a/b")), "not a plain file name")[1],
    "id an integer": lambda d, s: (_edit_manifest(d, _set("mixture_id", [7, 8])), "not a plain file name")[1],
    "no mixture_id column": lambda d, s: (_edit_manifest(d, lambda f: f.drop(columns="mixture_id")), "lacks column")[1],
    "mixture_path ../": lambda d, s: (_edit_manifest(d, _set("mixture_path", "../../../../etc/passwd")), "mixture_path")[1],
    "mixture_path absolute": lambda d, s: (_edit_manifest(d, _set("mixture_path", "/etc/passwd")), "leads out")[1],
    "target_path absolute": lambda d, s: (_edit_manifest(d, _set("target_path", "/etc/passwd")), "target_path")[1],
    "target linked out": lambda d, s: _link_out(d, "target_path"),
    "mixture linked out": lambda d, s: _link_out(d, "mixture_path"),
    "NaN azimuth": lambda d, s: (_edit_manifest(d, _set("target_azimuth_deg", float("nan"))), "target_azimuth_deg")[1],
    "inf azimuth": lambda d, s: (_edit_manifest(d, _set("target_azimuth_deg", float("inf"))), "target_azimuth_deg")[1],
    "azimuth 720": lambda d, s: (_edit_manifest(d, _set("target_azimuth_deg", 720.0)), "target_azimuth_deg")[1],
    "negative duration": lambda d, s: (_edit_manifest(d, _set("duration_s", -1.0)), "duration_s")[1],
    "text sample rate": lambda d, s: (_edit_manifest(d, _set("sample_rate", ["16000", "16000"])), "sample_rate")[1],
    "1 Hz sample rate": lambda d, s: (_edit_manifest(d, _set("sample_rate", [1, 1])), "sample_rate")[1],
    "timestamp samples": lambda d, s: (_edit_manifest(
        d, _set("num_samples", [pd.Timestamp("2026-01-01")] * 2)), "num_samples")[1],
    "bad checksum column": lambda d, s: (_edit_manifest(d, _set("target_sha256", "x")), "target_sha256")[1],
    "manifest a FIFO": lambda d, s: ((d / "manifest.parquet").unlink(), os.mkfifo(d / "manifest.parquet"),
                                     "manifest.parquet")[2],
}
# Only the commands that open that file: a FIFO mixture hangs only who reads mixtures.
FIFO_CASES = {
    "target a FIFO": ("target_path", ("evaluate", "reference oracle")),
    "mixture a FIFO": ("mixture_path", ("evaluate", "reference mixture", "infer")),
}
DATA_COMMANDS = ("evaluate", "reference mixture", "reference oracle", "infer", "simulate --verify")


def _argv(command: str, folder: Path, out: Path, oracle: Path, checkpoint: Path) -> list[str]:
    if command == "evaluate":
        return ["evaluate", str(oracle), "--data", str(folder), "--out", str(out), "--workers", "1", "--no-progress"]
    if command.startswith("reference"):
        return ["reference", command.split()[1], "--data", str(folder), "--out", str(out), "--no-progress"]
    if command == "infer":
        return ["infer", "--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(out), "--no-progress"]
    if command == "simulate --verify":
        return ["simulate", "--verify", str(folder), "--no-progress"]
    raise AssertionError(command)


@pytest.mark.parametrize("command", DATA_COMMANDS)
@pytest.mark.parametrize("corruption", sorted(DATA_CORRUPTIONS))
def test_corrupt_data_folder(command, corruption, data, oracle, checkpoint, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    submission = _copy(oracle, tmp_path / "submission")
    names = DATA_CORRUPTIONS[corruption](folder, tmp_path)
    out = tmp_path / "a" / "b" / "out"
    refused(_argv(command, folder, out, submission, checkpoint), capsys, tmp_path, names=names)


@pytest.mark.parametrize(
    "case, command", [(case, command) for case, (_, commands) in sorted(FIFO_CASES.items()) for command in commands]
)
def test_special_file_in_a_data_folder_fails_at_once(case, command, data, oracle, checkpoint, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    submission = _copy(oracle, tmp_path / "submission")
    name = _fifo_in_place(folder, FIFO_CASES[case][0])
    err = refused(_argv(command, folder, tmp_path / "out", submission, checkpoint), capsys, tmp_path, names=name)
    assert "not a regular file" in err


def test_verify_reports_a_fifo_in_place_of_a_file_without_hanging(data, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    name = _fifo_in_place(folder, "target_path")
    with _no_hang():
        assert main(["simulate", "--verify", str(folder), "--no-progress"]) == 1
    assert f"damaged: audio/target/{name}: not a regular file" in capsys.readouterr().out


def test_reference_altered_on_the_last_row_leaves_no_partial_submission(data, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    last = folder / pd.read_parquet(folder / "manifest.parquet")["target_path"].iloc[-1]
    last.write_bytes(last.read_bytes()[:-1] + b"\0")
    refused(["reference", "oracle", "--data", str(folder), "--out", str(tmp_path / "out"), "--no-progress"], capsys,
            tmp_path, names="does not match its recorded sha256")


def test_infer_with_a_corrupt_mixture_halfway_leaves_no_partial_submission(data, checkpoint, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    last = folder / pd.read_parquet(folder / "manifest.parquet")["mixture_path"].iloc[-1]
    last.write_bytes(b"not audio")
    refused(["infer", "--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(tmp_path / "out"),
             "--batch-size", "1", "--no-progress"], capsys, tmp_path, names=last.name)


# --- simulate --verify re-derives what can be derived ---------------------------------------------

@pytest.mark.parametrize(
    "column, value, shown",
    [
        ("target_azimuth_deg", 12.0, "target_azimuth_deg is 12.0"),
        ("angular_separation_deg", 1.0, "angular_separation_deg is 1.0"),
        ("duration_s", 0.5, "duration_s is 0.5"),
        ("target_clip_id", "someone-else", "target_clip_id"),
        ("num_sources", 3, "num_sources is 3"),
    ],
)
def test_verify_reports_an_edited_derived_column(column, value, shown, data, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    _edit_manifest(folder, _set(column, value))
    assert main(["simulate", "--verify", str(folder), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and f"column differs from the recipe's: " in out and shown in out, out


def test_verify_reports_an_edited_mixture_path(data, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    manifest = pd.read_parquet(folder / "manifest.parquet")
    # Both rows' mixtures swapped: each file is intact and inside the folder, but not its row's.
    _edit_manifest(folder, _set("mixture_path", manifest["mixture_path"].tolist()[::-1]))
    assert main(["simulate", "--verify", str(folder), "--no-progress"]) == 1
    assert "mixture_path is" in capsys.readouterr().out


def test_verify_fails_a_wav_set_with_a_nan_sample_and_its_checksum_updated(corpus, tmp_path, capsys):
    import hashlib

    import soundfile as sf

    folder = tmp_path / "wav"
    assert main(["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--num", "1", "--duration", "0.5",
                 "--format", "wav", "--out", str(folder), "--no-progress"]) == 0
    manifest = pd.read_parquet(folder / "manifest.parquet")
    target = folder / manifest["target_path"].iloc[0]
    audio, rate = sf.read(target, dtype="float32")
    audio[10, 0] = np.nan
    sf.write(target, audio, rate, subtype="FLOAT")
    _edit_manifest(folder, _set("target_sha256", hashlib.sha256(target.read_bytes()).hexdigest()))
    assert main(["simulate", "--verify", str(folder), "--no-progress"]) == 1
    assert "NaN or Inf samples" in capsys.readouterr().out


# --- JSON from strangers: config.json, markers, system.json, results.json --------------------------

JSON_CORRUPTIONS: dict[str, Callable[[dict], bytes]] = {
    "nested 100,000 deep": lambda doc: b"[" * 100_000 + b"]" * 100_000,
    "5,000-digit integer": lambda doc: json.dumps({**doc, "schema_version": 10**10}).replace(
        str(10**10), "9" * 5000).encode(),
    "list at the top": lambda doc: json.dumps([doc]).encode(),
    "truncated": lambda doc: json.dumps(doc).encode()[:40],
    "not UTF-8": lambda doc: b"\xff\xfe" + json.dumps(doc).encode(),
}


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("corruption", [*sorted(JSON_CORRUPTIONS), "a FIFO"])
@pytest.mark.parametrize("mode", ["--out", "--verify"])
def test_corrupt_config_json(mode, corruption, data, corpus, tmp_path, capsys):
    folder = _copy(data, tmp_path / "data")
    config = folder / "config.json"
    if corruption == "a FIFO":
        _fifo(config)
    else:
        config.write_bytes(JSON_CORRUPTIONS[corruption](json.loads(config.read_text())))
    argv = (["simulate", "--verify", str(folder), "--no-progress"] if mode == "--verify" else
            ["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--num", "2", "--duration", "1",
             "--out", str(folder), "--no-progress"])
    refused(argv, capsys, tmp_path, names="config.json")


@pytest.mark.parametrize(
    "corruption", [*sorted(JSON_CORRUPTIONS), "a FIFO", "paths out of the folder", "a text index", "another id"]
)
def test_corrupt_marker_is_rendered_again(corruption, data, corpus, tmp_path):
    folder = _copy(data, tmp_path / "data")
    marker = sorted((folder / ".rows").glob("*.json"))[0]
    row = json.loads(marker.read_text())
    if corruption == "a FIFO":
        _fifo(marker)
    elif corruption == "paths out of the folder":
        marker.write_text(json.dumps({**row, "mixture_path": "../../../../etc/hostname"}))
    elif corruption == "a text index":
        marker.write_text(json.dumps({**row, "index": "zero"}))
    elif corruption == "another id":
        marker.write_text(json.dumps({**row, "mixture_id": "test-2src-000001"}))
    else:
        marker.write_bytes(JSON_CORRUPTIONS[corruption](row))
    (folder / "manifest.parquet").unlink()
    with _no_hang():
        assert main(["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--num", "2", "--duration", "1",
                     "--out", str(folder), "--no-progress"]) == 0
    assert stat.S_ISREG(marker.lstat().st_mode) and json.loads(marker.read_text()) == row
    assert pd.read_parquet(folder / "manifest.parquet").equals(pd.read_parquet(data / "manifest.parquet"))


@pytest.mark.parametrize("corruption", [*sorted(JSON_CORRUPTIONS), "a FIFO"])
def test_corrupt_system_json(corruption, oracle, data, tmp_path, capsys):
    submission = _copy(oracle, tmp_path / "submission")
    system = submission / "system.json"
    if corruption == "a FIFO":
        _fifo(system)
    else:
        system.write_bytes(JSON_CORRUPTIONS[corruption](json.loads(system.read_text())))
    refused(["evaluate", str(submission), "--data", str(data), "--out", str(tmp_path / "out"), "--workers", "1",
             "--no-progress"], capsys, tmp_path, names="system.json", lines=4)


RESULTS_CORRUPTIONS: dict[str, Callable[[Path], str]] = {
    **{name: (lambda make: lambda folder: (
        (folder / "results.json").write_bytes(make(json.loads((folder / "results.json").read_text()))),
        "results.json")[1])(make) for name, make in JSON_CORRUPTIONS.items()},
    "no system": lambda folder: _rewrite(folder, lambda doc: {k: v for k, v in doc.items() if k != "system"}, "system"),
    "text schema_version": lambda folder: _rewrite(folder, lambda doc: {**doc, "schema_version": "1"}, "schema_version"),
    "results.json a FIFO": lambda folder: (_fifo(folder / "results.json"), "results.json")[1],
}
# figures reads the item table too; the leaderboard does not.
ITEMS_CORRUPTIONS: dict[str, Callable[[Path], str]] = {
    "items out of the folder": lambda folder: _rewrite(folder, lambda doc: {**doc, "items": "../../../../etc/passwd"},
                                                       "leads out of its folder"),
    "items absolute": lambda folder: _rewrite(folder, lambda doc: {**doc, "items": "/etc/passwd"}, "leads out"),
    "items.csv a FIFO": lambda folder: (_fifo(folder / "items.csv"), "items.csv")[1],
    "text in a metric column": lambda folder: ((folder / "items.csv").write_text(
        "mixture_id,si_snri_db\na,x\n"), "si_snri_db")[1],
}


def _rewrite(folder: Path, edit: Callable[[dict], dict], names: str) -> str:
    path = folder / "results.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return names


@pytest.mark.parametrize(
    "command, corruption",
    [("figures", c) for c in sorted(RESULTS_CORRUPTIONS) + sorted(ITEMS_CORRUPTIONS)]
    + [("leaderboard", c) for c in sorted(RESULTS_CORRUPTIONS)],  # the leaderboard reads results.json only
)
def test_corrupt_results_folder(command, corruption, results, tmp_path, capsys):
    folder = _copy(results, tmp_path / "results")
    names = {**RESULTS_CORRUPTIONS, **ITEMS_CORRUPTIONS}[corruption](folder)
    target = folder / "results.json" if command == "leaderboard" else folder
    argv = [command, str(target), "--out", str(tmp_path / "out")]
    refused(argv, capsys, tmp_path, names=names)


# --- arrays and checkpoints -----------------------------------------------------------------------

def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "payload, message",
    [
        (lambda: _npy_header((360_000_000_000,)) + b"\0" * 64, "doa_likelihood.npy declares shape (360000000000,)"),
        (lambda: b"PK\x03\x04" + b"\0" * 60, "zip archive (.npz)"),
        (lambda: _npy_header((2, 360), "|O") + b"\0" * 64, "real-valued"),
        (lambda: b"\x80\x04K\x01.", "not a .npy array"),
    ],
    ids=["header claims 2.6 TiB", "npz", "object dtype", "pickle"],
)
def test_hostile_likelihood_is_refused_from_its_header(payload, message, oracle, data, tmp_path, capsys):
    submission = _copy(oracle, tmp_path / "submission")
    (submission / "doa.csv").unlink()
    (submission / "doa_likelihood.npy").write_bytes(payload())
    refused(["evaluate", str(submission), "--data", str(data), "--out", str(tmp_path / "out"), "--workers", "1",
             "--no-progress"], capsys, tmp_path, names=message, lines=4)


def _edit_checkpoint(checkpoint: Path, to: Path, edit: Callable[[dict], None]) -> Path:
    payload = torch.load(checkpoint, weights_only=True)
    edit(payload)
    torch.save(payload, to)
    return to


CHECKPOINT_CORRUPTIONS: dict[str, tuple[Callable[[dict], None], str]] = {
    "state dict a list": (lambda p: p["model"].update(state_dict=list(p["model"]["state_dict"].values())),
                          "not a mapping of names to tensors"),
    "config field of the wrong type": (lambda p: p["model"]["config"].update(sample_rate="16000"), "sample_rate"),
    "dimensions of 192 TB": (lambda p: p["model"]["config"]["gcc"].update(nfft=2**40), "no system is that large"),
    "wrong shapes": (lambda p: p["model"]["state_dict"].update(
        {k: torch.zeros(3) for k in list(p["model"]["state_dict"])[:1]}), "do not fit"),
}


@pytest.mark.parametrize("corruption", sorted(CHECKPOINT_CORRUPTIONS))
def test_crafted_checkpoint_in_infer(corruption, checkpoint, data, tmp_path, capsys):
    edit, message = CHECKPOINT_CORRUPTIONS[corruption]
    crafted = _edit_checkpoint(checkpoint, tmp_path / "crafted.pt", edit)
    refused(["infer", "--checkpoint", str(crafted), "--data", str(data), "--out", str(tmp_path / "out"),
             "--no-progress"], capsys, tmp_path, names=message)


def test_checkpoint_a_fifo(data, tmp_path, capsys):
    os.mkfifo(tmp_path / "last.pt")
    refused(["infer", "--checkpoint", str(tmp_path / "last.pt"), "--data", str(data), "--out", str(tmp_path / "out"),
             "--no-progress"], capsys, tmp_path, names="last.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo never run",))


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda path, good: torch.save({"model": _RunsCode()}, path), "must not run code"),
        (lambda path, good: path.write_bytes(good.read_bytes()[:200]), "truncated, or not a torch checkpoint"),
    ],
    ids=["pickle that runs code", "cut short"],
)
def test_foreign_checkpoint_in_infer(write, message, checkpoint, data, tmp_path, capsys):
    write(tmp_path / "foreign.pt", checkpoint)
    refused(["infer", "--checkpoint", str(tmp_path / "foreign.pt"), "--data", str(data), "--out", str(tmp_path / "out"),
             "--no-progress"], capsys, tmp_path, names=message)


def test_resume_with_wrong_shapes(checkpoint, data, tmp_path, capsys):
    run = _copy(checkpoint.parent, tmp_path / "run")
    _edit_checkpoint(checkpoint, run / "last.pt", CHECKPOINT_CORRUPTIONS["wrong shapes"][0])
    refused(["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--batch-size", "2",
             "--epoch-size", "2", "--max-steps", "2", "--val-data", str(data), "--out", str(run), "--resume",
             "--no-progress"], capsys, tmp_path, names="last.pt")


# --- SOFA files -----------------------------------------------------------------------------------

def _sofa(tmp_path: Path, name: str, edit: Callable) -> Path:
    import sofar

    sofa = sofar.read_sofa(str(kemar_path()), verify=False, verbose=False)
    edit(sofa)
    path = tmp_path / f"{name}.sofa"
    sofar.write_sofa(str(path), sofa, compression=0)
    return path


def _positions(value: float | None):
    def edit(sofa) -> None:
        positions = np.array(sofa.SourcePosition, dtype=float)
        positions[:] = (30.0, 0.0, 1.4) if value is None else value
        sofa.SourcePosition = positions
    return edit


SOFA_CORRUPTIONS = {
    "NaN positions": (_positions(np.nan), "finite"),
    "inf positions": (_positions(np.inf), "finite"),
    "every direction at one point": (_positions(None), "distinct directions"),
    "1 Hz": (lambda sofa: setattr(sofa, "Data_SamplingRate", 1.0), "sample rate 1 Hz"),
    "1e11 Hz": (lambda sofa: setattr(sofa, "Data_SamplingRate", 1e11), "sample rate 100000000000 Hz"),
}


@pytest.mark.parametrize("command", ["hrtf", "simulate", "train-baseline"])
@pytest.mark.parametrize("corruption", [*sorted(SOFA_CORRUPTIONS), "a FIFO", "not a SOFA file"])
def test_hostile_sofa(command, corruption, corpus, tmp_path, capsys):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    if corruption == "a FIFO":
        sofa, message = tmp_path / "fifo.sofa", "not a regular file"
        os.mkfifo(sofa)
    elif corruption == "not a SOFA file":
        sofa, message = tmp_path / "garbage.sofa", "garbage.sofa"
        sofa.write_text("garbage")
    else:
        edit, message = SOFA_CORRUPTIONS[corruption]
        sofa = _sofa(tmp_path, "bad", edit)
    out = sandbox / "out"
    argv = {
        "hrtf": ["hrtf", str(sofa)],
        "simulate": ["simulate", "--corpus", f"audiocaps:{corpus}", "--hrtf", str(sofa), "--num", "1", "--duration",
                     "0.5", "--sources", "2", "--out", str(out), "--no-progress"],
        "train-baseline": ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--hrtf",
                           str(sofa), "--out", str(out), "--no-progress"],
    }[command]
    refused(argv, capsys, sandbox, names=message)


# --- output locations -----------------------------------------------------------------------------

OUT_PROBLEMS = {
    "an existing file": (lambda tmp: (tmp / "file").write_text("mine") and tmp / "file", "is not a folder"),
    "under /proc": (lambda tmp: Path("/proc/lusebench-nowhere/out"), "cannot write beside"),
    "a folder of other files": (lambda tmp: ((tmp / "mine").mkdir(), (tmp / "mine" / "thesis.tex").write_text("x"),
                                              tmp / "mine")[2], "holds files lusebench did not write"),
}


@pytest.mark.parametrize("command", ["reference", "infer", "figures", "leaderboard", "evaluate"])
@pytest.mark.parametrize("problem", sorted(OUT_PROBLEMS))
def test_unusable_out(command, problem, data, oracle, results, checkpoint, tmp_path, capsys):
    make, message = OUT_PROBLEMS[problem]
    out = make(tmp_path)
    argv = {
        "reference": ["reference", "mixture", "--data", str(data), "--out", str(out), "--no-progress"],
        "infer": ["infer", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--no-progress"],
        "figures": ["figures", str(results), "--out", str(out)],
        "leaderboard": ["leaderboard", str(results), "--out", str(out)],
        "evaluate": ["evaluate", str(oracle), "--data", str(data), "--out", str(out), "--workers", "1", "--no-progress"],
    }[command]
    refused(argv, capsys, tmp_path, names=message)


# --- train-baseline and reference: argument checks leave nothing ----------------------------------

@pytest.mark.parametrize(
    "extra, message",
    [
        (["--corpus", "nope"], "nope"),
        (["--hrtf", "/nowhere/missing.sofa"], "missing.sofa"),
        (["--sources", "500"], "500-source"),
        (["--seed", "-1"], "--seed must lie in [0, 2**32 - 1]"),
    ],
)
def test_failed_train_set_up_leaves_no_run_folder(extra, message, tmp_path, capsys):
    refused(["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--out",
             str(tmp_path / "run"), "--no-progress", *extra], capsys, tmp_path, names=message)


@pytest.mark.parametrize("extra, message", [(["--corpus", "audiocaps:/nowhere"], "/nowhere"),
                                             (["--hrtf", "/nowhere/missing.sofa"], "missing.sofa")])
def test_failed_train_set_up_with_a_val_set_leaves_no_run_folder(extra, message, data, tmp_path, capsys):
    refused(["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--sources", "2", "--val-data", str(data),
             "--out", str(tmp_path / "run"), "--no-progress", *extra], capsys, tmp_path, names=message)


def test_reference_random_refuses_a_negative_seed(data, tmp_path, capsys):
    refused(["reference", "random", "--data", str(data), "--out", str(tmp_path / "out"), "--seed", "-1"], capsys,
            tmp_path, names="--seed must be 0 or more")


# --- the door itself, on generated inputs ----------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_a_name_is_plain_or_refused(name):
    try:
        plain_name(name, "id")
    except LusebenchError as error:
        assert PLAIN_NAME_RULE in str(error)
        return
    assert "/" not in name and "\\" not in name and not name.startswith(".") and Path(name).name == name


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["..", ".", "a", "b.flac", "", "/", "~", "c d"]), min_size=1, max_size=6))
def test_a_resolved_path_stays_inside_its_folder(tmp_path, parts):
    relative = "/".join(parts)
    try:
        resolved = resolve_inside(tmp_path, relative, "path")
    except LusebenchError:
        return
    assert os.path.realpath(resolved).startswith(os.path.realpath(tmp_path) + os.sep)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _numbers(value) -> list:
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@settings(max_examples=200, deadline=None)
@given(_JSON, st.integers(0, 2 * MAX_JSON_DEPTH))
def test_json_decodes_or_is_refused_in_one_line(document, depth):
    """Decoded exactly when within the bounds, else refused in one line (never a RecursionError)."""
    payload = ("[" * depth + json.dumps(document) + "]" * depth).encode()
    within = depth + _depth(document) <= MAX_JSON_DEPTH and all(len(json.dumps(n)) <= 100 for n in _numbers(document))
    try:
        decoded = decode_json(payload, "f.json")
    except LusebenchError as error:
        assert not within and "\n" not in str(error), error
        return
    assert within and decoded == json.loads(payload)


def test_npy_round_trip_through_the_door():
    import io

    buffer = io.BytesIO()
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(buffer, array)
    assert np.array_equal(load_npy(buffer.getvalue(), "a.npy", max_elements=12), array)
    with pytest.raises(LusebenchError, match="more than the 11"):
        load_npy(buffer.getvalue(), "a.npy", max_elements=11)
    with pytest.raises(LusebenchError, match="truncated"):
        load_npy(buffer.getvalue()[:-4], "a.npy", max_elements=12)
