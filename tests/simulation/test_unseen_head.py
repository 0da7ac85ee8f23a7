"""The unseen-listener track: test-Nsrc's recipes rendered on the two SONICOM subjects, one per mixture."""

import json
from dataclasses import replace

import numpy as np
import pytest

from lusebench.benchmark.metrics import gcc_phat_itd_s, ild_db
from lusebench.cli import main
from lusebench.fingerprint import file_columns
from lusebench.io import read_audio
from lusebench.simulation.config import BENCHMARK_SETS, UNSEEN_HEADS
from lusebench.simulation.heads import HEADS
from lusebench.simulation.writer import load_manifest, mixture_head, simulate, verify

TWINS = {"test-2src": "test-2src-unseen-head", "test-3src": "test-3src-unseen-head"}
# What only the head decides: its name and file, and the headroom gain that the rendered peak sets.
HEAD_COLUMNS = {"hrtf", "hrtf_sha256", "mixture_gain"}
SIZE = {"num_mixtures": 40, "duration_s": 1.0}  # 4 absent-target items, both heads drawn


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The first 40 mixtures (1 s) of test-2src and of its unseen-head twin."""
    root = tmp_path_factory.mktemp("twins")
    for name in ("test-2src", "test-2src-unseen-head"):
        simulate(BENCHMARK_SETS[name].config(**SIZE), root / name, progress=False)
    return root


@pytest.mark.parametrize("seen", sorted(TWINS))
def test_a_twin_is_its_test_set_on_the_sonicom_heads(seen):
    assert BENCHMARK_SETS[TWINS[seen]] == replace(BENCHMARK_SETS[seen], hrtf="sonicom-1,sonicom-2")
    assert UNSEEN_HEADS == "sonicom-1,sonicom-2"


def test_default_training_never_hears_the_unseen_heads():
    from lusebench.baselines.train import TrainConfig

    for preset in ("paper", "small"):
        assert TrainConfig.for_preset(preset, system="mlp-gcc", num_sources=2).hrtf == "kemar"


def test_the_twin_holds_the_recipes_of_its_test_set(rendered):
    seen, twin = load_manifest(rendered / "test-2src"), load_manifest(rendered / "test-2src-unseen-head")
    assert list(seen.columns) == list(twin.columns)
    same = [c for c in seen.columns if c not in HEAD_COLUMNS | file_columns(list(seen.columns))]
    assert {"clip_ids", "caption", "azimuths_deg", "snr_db", "gains", "target_absent", "query_clip_id"} <= set(same)
    for column in same:
        assert seen[column].astype(str).tolist() == twin[column].astype(str).tolist(), column
    assert twin["target_absent"].sum() == 4
    # Each mixture on the head its index draws, both heads used, never KEMAR.
    files = {f"{HEADS[name].file}#{HEADS[name].sha256[:12]}": name for name in ("sonicom-1", "sonicom-2")}
    config = BENCHMARK_SETS["test-2src-unseen-head"].config(**SIZE)
    drawn = [mixture_head(config, ("sonicom-1", "sonicom-2"), i) for i in range(40)]
    assert [files[identity] for identity in twin["hrtf"]] == drawn
    assert set(drawn) == {"sonicom-1", "sonicom-2"}
    assert [HEADS[name].sha256 for name in drawn] == twin["hrtf_sha256"].tolist()
    # The headroom gain follows the head's rendered peak, never above 1.
    assert (twin["mixture_gain"] <= 1.0).all() and (seen["mixture_gain"] <= 1.0).all()
    assert "Attribution-ShareAlike 3.0" in (rendered / "test-2src-unseen-head" / "LICENSES.md").read_text()


def test_a_left_target_is_louder_and_earlier_in_the_left_ear_of_either_head(rendered):
    twin = load_manifest(rendered / "test-2src-unseen-head")
    checked = set()
    for row in twin.itertuples():
        azimuth = row.target_azimuth_deg
        side = 1.0 if 60.0 <= azimuth <= 120.0 else -1.0 if 240.0 <= azimuth <= 300.0 else 0.0
        if row.target_absent or not side:
            continue
        image, rate = read_audio(rendered / "test-2src-unseen-head" / row.target_path)
        assert side * ild_db(image) > 3.0, (row.mixture_id, azimuth, ild_db(image))
        assert side * gcc_phat_itd_s(image, rate) > 400e-6, (row.mixture_id, azimuth, gcc_phat_itd_s(image, rate))
        checked.add((row.hrtf, side))
    assert len(checked) == 4  # both sides of both heads


def test_verify_passes_a_twin_and_fails_one_whose_heads_are_swapped(rendered, tmp_path):
    import shutil

    assert verify(rendered / "test-2src-unseen-head", progress=False).ok
    copy = tmp_path / "swapped"
    shutil.copytree(rendered / "test-2src-unseen-head", copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "hrtf": "sonicom-2,sonicom-1"}))
    report = verify(copy, progress=False)
    assert not report.ok and report.recipes_differ  # the other order draws other heads for the same indices


def test_simulate_renders_a_twin_by_name_on_its_own_heads(tmp_path, monkeypatch):
    import lusebench.simulation.writer as writer

    asked = []
    monkeypatch.setattr(writer, "simulate", lambda config, out, **kwargs: asked.append(config))
    assert main(["simulate", "--benchmark", "test-3src-unseen-head", "--out", str(tmp_path / "o")]) == 0
    assert asked == [BENCHMARK_SETS["test-3src-unseen-head"].config()]
    assert asked[0].hrtf == "sonicom-1,sonicom-2" and asked[0].num_mixtures == 1000


def test_an_unknown_set_name_is_one_line(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["simulate", "--benchmark", "test-2src-unseen", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--benchmark 'test-2src-unseen': no such set" in err
    assert "test-2src-unseen-head" in err and not out.exists()


def test_the_heads_of_a_set_do_not_change_its_mixtures_draws():
    # A one-head set draws no head: its recipes and fingerprint stay what they were.
    config = BENCHMARK_SETS["test-2src"].config()
    assert {mixture_head(config, ("kemar",), i) for i in range(50)} == {"kemar"}
    rates = np.mean([mixture_head(config, ("a", "b"), i) == "a" for i in range(1000)])
    assert 0.45 < rates < 0.55
