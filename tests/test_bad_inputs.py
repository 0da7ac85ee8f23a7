"""Issue 12's tracebacks, pinned: each bad input is one line on stderr, exit code 2, nothing written.

docs/bad-inputs.md lists these cases with the message each gives; keep the two in step.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lusebench.cli import main
from lusebench.simulation.hrtf import kemar_path
from lusebench.testing.corpus import make_corpus
from lusebench.testing.results import fake_results

SMALL = ["--num", "2", "--duration", "0.5", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), clips_per_split=4, seconds=1.0)


@pytest.fixture(scope="module")
def rendered(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sets") / "set"
    assert main(["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--out", str(out), *SMALL]) == 0
    return out


def _fails_in_one_line(argv: list[str], capsys, *, expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lusebench {argv[0]}: error: "), err
    assert expected in err, err
    return err


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--seed", "-1"], "--seed must lie in [0, 2**63 - 1]"),
        (["--seed", str(2**63)], "--seed must lie in [0, 2**63 - 1]"),
        (["--sample-rate", "100000000000"], "--sample-rate must lie in [8000, 192000] Hz"),
    ],
)
def test_bad_simulate_numbers(corpus, tmp_path, capsys, flags, expected):
    out = tmp_path / "out"
    _fails_in_one_line(["simulate", "--corpus", f"audiocaps:{corpus}", "--out", str(out), *flags, *SMALL], capsys,
                       expected=expected)
    assert not out.exists()


def _damage(folder: Path, damage: str) -> None:
    if damage == "truncated config.json":
        (folder / "config.json").write_text((folder / "config.json").read_text()[:50])
    elif damage == "corrupt manifest":
        (folder / "manifest.parquet").write_bytes((folder / "manifest.parquet").read_bytes()[:100])
    elif damage == "num_sources two":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "num_sources": "two"}))
    else:
        raise AssertionError(damage)


@pytest.mark.parametrize(
    "damage, mode, expected",
    [
        ("truncated config.json", "--out", "cannot read"),
        ("truncated config.json", "--verify", "cannot read"),
        ("corrupt manifest", "--verify", "cannot read"),
        ("num_sources two", "--verify", "field 'num_sources' must be an integer, got \"two\""),
    ],
)
def test_a_damaged_set_is_one_line(rendered, corpus, tmp_path, capsys, damage, mode, expected):
    folder = shutil.copytree(rendered, tmp_path / "set")
    _damage(folder, damage)
    before = _files(folder)
    if mode == "--out":
        argv = ["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--out", str(folder), *SMALL]
    else:
        argv = ["simulate", "--verify", str(folder), "--no-progress"]
    _fails_in_one_line(argv, capsys, expected=expected)
    assert _files(folder) == before


def test_a_marker_holding_a_list_is_rendered_again(rendered, corpus, tmp_path):
    folder = shutil.copytree(rendered, tmp_path / "set")
    marker = sorted((folder / ".rows").iterdir())[0]
    marker.write_text("[1, 2]")
    argv = ["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--out", str(folder), *SMALL]
    assert main(argv) == 0
    assert isinstance(json.loads(marker.read_text()), dict)


def test_stale_temporaries_of_a_killed_run_are_removed(rendered, corpus, tmp_path):
    folder = shutil.copytree(rendered, tmp_path / "set")
    stale = folder / "audio" / "mixture" / ".test-2src-000000.flac.k3j_x9.tmp"
    live = folder / "audio" / "mixture" / ".test-2src-000001.flac.p0q_z1.tmp"  # another shard's, being written
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    day_ago = stale.stat().st_mtime - 86400
    os.utime(stale, (day_ago, day_ago))
    argv = ["simulate", "--corpus", f"audiocaps:{corpus}", "--sources", "2", "--out", str(folder), *SMALL]
    assert main(argv) == 0
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize("start_time, expected", [("", "is not a number: nan"), ("abc", "is not a number: 'abc'")])
def test_bad_audiocaps_start_time(corpus, tmp_path, capsys, start_time, expected):
    root = shutil.copytree(corpus, tmp_path / "corpus")
    table = pd.read_csv(root / "test.csv", dtype=str)
    table.loc[0, "start_time"] = start_time
    table.to_csv(root / "test.csv", index=False)
    out = tmp_path / "out"
    _fails_in_one_line(["simulate", "--corpus", f"audiocaps:{root}", "--out", str(out), *SMALL], capsys,
                       expected=expected)
    assert not out.exists()


def test_truncated_flacs_fail_before_any_mixture_is_written(corpus, tmp_path, capsys):
    # The header of a truncated FLAC is intact; it used to fail after mixture 0 was written.
    root = shutil.copytree(corpus, tmp_path / "corpus")
    ids = pd.read_csv(root / "test.csv", dtype=str)["youtube_id"]
    clip = root / "audio" / f"{ids.iloc[-1]}.wav"
    audio, rate = sf.read(clip)
    clip.unlink()
    flac = clip.with_suffix(".flac")
    sf.write(flac, audio, rate, subtype="PCM_24")
    flac.write_bytes(flac.read_bytes()[: int(flac.stat().st_size * 0.8)])
    out = tmp_path / "out"
    _fails_in_one_line(["simulate", "--corpus", f"audiocaps:{root}", "--out", str(out), *SMALL], capsys,
                       expected="truncated or corrupt")
    assert not out.exists()


def test_an_hf_dataset_of_paths_instead_of_audio(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    captions = [f"sound number {i}" for i in range(4)]
    datasets.Dataset.from_dict({"audio": ["a.wav"] * 4, "caption": captions}).save_to_disk(str(tmp_path / "hf"))
    capsys.readouterr()  # datasets' own progress bar
    out = tmp_path / "out"
    _fails_in_one_line(["simulate", "--corpus", f"hf:{tmp_path / 'hf'}", "--sources", "2", "--out", str(out), *SMALL],
                       capsys, expected="is not decoded audio")
    assert not out.exists()


def _sofa(tmp_path: Path, rate: float, zero: bool = False) -> Path:
    import sofar

    sofa = sofar.read_sofa(str(kemar_path()), verify=False, verbose=False)
    sofa.Data_SamplingRate = rate
    if zero:
        sofa.Data_IR = np.zeros_like(sofa.Data_IR)
    path = tmp_path / f"bad-{rate}-{zero}.sofa"
    sofar.write_sofa(str(path), sofa, compression=0)
    return path


@pytest.mark.parametrize(
    "rate, zero, expected",
    [(0, False, "sample rate 0 Hz"), (-44100, False, "sample rate -44100 Hz"), (44100, True, "only all-zero")],
)
def test_bad_sofa_files(corpus, tmp_path, capsys, rate, zero, expected):
    sofa = _sofa(tmp_path, rate, zero)
    _fails_in_one_line(["hrtf", str(sofa)], capsys, expected=expected)
    out = tmp_path / "out"
    _fails_in_one_line(["simulate", "--corpus", f"audiocaps:{corpus}", "--hrtf", str(sofa), "--out", str(out), *SMALL],
                       capsys, expected=expected)
    assert not out.exists()


@pytest.mark.parametrize("argv", [["hrtf", "--sample-rate", "1"], ["hrtf", "kemar", "--sample-rate", "7999"],
                                  ["hrtf", "--sample-rate", "192001"]])
def test_hrtf_refuses_a_sample_rate_outside_what_a_sofa_file_may_hold(argv, capsys):
    # --sample-rate 1 was accepted: every head resampled to a one-tap HRIR.
    _fails_in_one_line(argv, capsys, expected="sample rate must lie in [8000, 192000] Hz")


@pytest.mark.parametrize("plot, expected", [("/proc/lusebench.png", "cannot write --plot"), ("itd.xyz", "unknown file type")])
def test_bad_hrtf_plot(tmp_path, capsys, plot, expected):
    plot = plot if plot.startswith("/") else str(tmp_path / plot)
    assert main(["hrtf", "--plot", plot]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_with_a_mean_of_1e400(tmp_path, capsys):
    text = json.dumps(fake_results()).replace('"mean": 10.0', '"mean": 1e400')
    (tmp_path / "results.json").write_text(text)
    _fails_in_one_line(["leaderboard", str(tmp_path / "results.json"), "--out", str(tmp_path / "site")], capsys,
                       expected="should be a finite number, not Infinity")
    assert not (tmp_path / "site").exists()


def test_the_cli_prints_no_traceback_for_a_bad_seed(tmp_path):
    # In-process tests see main()'s return; this one sees what a user's shell sees.
    result = subprocess.run(
        [sys.executable, "-m", "lusebench.cli", "simulate", "--seed", "-1", "--out", str(tmp_path / "o"), *SMALL],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{missing}", "--data", "{rendered}"],
        ["evaluate", "{missing}", "--data", "{rendered}", "--check-only"],
        ["evaluate", "{rendered}", "--data", "{missing}"],
        ["reference", "mixture", "--data", "{missing}", "--out", "{missing}/sub"],
        ["infer", "--checkpoint", "{missing}/best.pt", "--data", "{rendered}", "--out", "{missing}/sub"],
        ["simulate", "--verify", "{missing}"],
        ["figures", "{missing}", "--out", "{missing}/figs"],
        ["leaderboard", "{missing}", "--out", "{missing}/site"],
        ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--val-data", "{missing}", "--out", "{missing}/run"],
        ["train-baseline", "--system", "mlp-gcc", "--preset", "tiny", "--resume", "--out", "{missing}"],
    ],
)
def test_no_command_creates_a_folder_it_was_asked_to_read(argv, rendered, tmp_path, capsys):
    """Regression (issue 22): `evaluate` on a missing submission folder created it (for its
    results/), then reported that system.json was missing."""
    missing = tmp_path / "missing"
    argv = [a.format(missing=missing, rendered=rendered) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err
    assert not missing.exists()
