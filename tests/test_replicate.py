"""lusebench replicate: train -> infer -> evaluate -> leaderboard for a subset, resumable."""

from __future__ import annotations

import json
import re

import pytest

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.replicate import ReplicateConfig, replicate
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate


def test_replicate_scores_a_system_on_longer_mixtures_and_resumes_without_redoing(tmp_path):
    # 2 s test mixtures for a system built for 1 s clips: inference runs in windows.
    test = tmp_path / "test"
    simulate(SimulationConfig(num_sources=2, num_mixtures=3, seed=5, duration_s=2.0, corpus="minicaps"), test, progress=False)
    out = tmp_path / "table"
    config = ReplicateConfig(num_sources=2, preset="tiny", systems=("mlp-gcc",), test_data=test, corpus="minicaps")
    page = replicate(config, out, progress=False)
    results = json.loads((out / "results" / "mlp-gcc" / "results.json").read_text())
    assert results["metrics"]["overall"]["doa_mae_deg"]["n"] == 3
    name = results["system"]["name"]
    assert re.fullmatch(r"mlp-gcc \(tiny preset, minicaps, (8|16) steps, CPU, cfg [0-9a-f]{7}\)", name)  # best of 2 epochs of 8
    assert name in page.read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs" / "mlp-gcc" / "last.pt", out / "results" / "mlp-gcc" / "results.json")}
    replicate(config, out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sources", "2", "--systems", "luseel", "nope"], "unknown system"),
        (["--jobs", "0"], "--jobs"),
        (["--gm-clips", "-1"], "--gm-clips"),
    ],
)
def test_replicate_bad_arguments_give_one_line(tmp_path, capsys, args, message):
    assert main(["replicate", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_replicate_config_rejects_other_source_counts():
    with pytest.raises(LusebenchError, match="2 or 3"):
        ReplicateConfig(num_sources=4)


def test_gm_clips_without_the_synthesizer_fails_before_anything_is_written(tmp_path, capsys, monkeypatch):
    """Regression (issue 22): --gm-clips failed after the README's install only once it reached gmcaps."""
    import sys

    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import raises ImportError
    assert main(["replicate", "--preset", "tiny", "--gm-clips", "3", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install --no-deps tinysoundfont" in err
    assert not (tmp_path / "x").exists()
