"""Absent-target items in rendered sets: how many, what they ask for, and that share 0 changes nothing."""

import json

import numpy as np
import pandas as pd
import pytest

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.io import read_audio
from lusebench.simulation.config import BENCHMARK_SETS, SimulationConfig
from lusebench.simulation.corpus import open_corpus
from lusebench.simulation.recipe import absent_indices, caption_words
from lusebench.simulation.writer import load_manifest, simulate, verify


def test_absent_indices_are_exact_and_their_own_stream():
    chosen = absent_indices(1000, 0.1, seed=5, split_code=2)
    assert len(chosen) == 100 and all(0 <= i < 1000 for i in chosen)
    assert chosen == absent_indices(1000, 0.1, seed=5, split_code=2)
    assert chosen != absent_indices(1000, 0.1, seed=6, split_code=2)
    assert absent_indices(1000, 0.0, seed=5, split_code=2) == frozenset()


def test_caption_words_drop_function_words_and_endings():
    assert caption_words("A dog barks loudly in the distance") == {"dog", "bark"}
    assert caption_words("Dogs barking") == {"dog", "bark"}
    assert not caption_words("A steam train whistles") & caption_words("A gong is struck and rings out")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("absent")
    common = dict(num_sources=3, split="test", num_mixtures=12, seed=3, duration_s=0.5, corpus="minicaps")
    simulate(SimulationConfig(**common, absent_share=0.25), root / "absent", progress=False)
    simulate(SimulationConfig(**common), root / "present", progress=False)
    return root


def test_a_set_holds_its_share_of_absent_items_asking_for_unrelated_clips(rendered):
    manifest = load_manifest(rendered / "absent")
    absent = manifest[manifest["target_absent"]]
    assert len(absent) == 3
    corpus = open_corpus("minicaps")
    for row in absent.itertuples():
        assert row.query_clip_id not in row.clip_ids and row.target_clip_id == row.query_clip_id
        assert row.caption in corpus.clip(row.query_clip_id).captions
        source_words = set().union(*(caption_words(c) for c in row.captions))
        assert not caption_words(row.caption) & source_words, (row.caption, row.captions)
        # No reference: no target file, azimuth or separation.
        assert pd.isna(row.target_path) and np.isnan(row.target_azimuth_deg) and np.isnan(row.angular_separation_deg)
        assert not (rendered / "absent" / "audio" / "target" / f"{row.mixture_id}.flac").exists()
    assert (manifest.loc[~manifest["target_absent"], "query_clip_id"] == "").all()


def test_an_absent_item_holds_the_mixture_of_its_present_twin(rendered):
    absent, present = load_manifest(rendered / "absent"), load_manifest(rendered / "present")
    row = absent[absent["target_absent"]].iloc[0]
    twin = present.set_index("mixture_id").loc[row["mixture_id"]]
    assert list(row["clip_ids"]) == list(twin["clip_ids"]) and list(row["azimuths_deg"]) == list(twin["azimuths_deg"])
    mixture, _ = read_audio(rendered / "absent" / row["mixture_path"])
    twin_mixture, _ = read_audio(rendered / "present" / twin["mixture_path"])
    np.testing.assert_allclose(mixture, twin_mixture, atol=1e-6)


def test_share_zero_leaves_the_set_as_before(rendered):
    manifest = load_manifest(rendered / "present")
    assert "target_absent" not in manifest.columns and "query_clip_id" not in manifest.columns
    assert "absent_share" not in json.loads((rendered / "present" / "config.json").read_text())
    # Only the debcaps test sets hold absent items; val sets (training selects on them) and the sets
    # that predate the track keep their recipes and fingerprints.
    assert {name for name, s in BENCHMARK_SETS.items() if s.absent_share} == {
        "test-2src", "test-3src", "test-2src-reverb", "test-3src-reverb", "test-2src-unseen-head", "test-3src-unseen-head",
    }
    assert all(BENCHMARK_SETS[name].absent_share == 0.1 for name in ("test-2src", "test-3src"))


def test_an_absent_set_verifies(rendered):
    report = verify(rendered / "absent", progress=False)
    assert report.ok and report.files == 12 + 9  # every mixture, the 9 present targets


@pytest.mark.parametrize("share", [-0.1, 0.6])
def test_share_out_of_range_is_refused(share):
    with pytest.raises(LusebenchError, match=r"--absent-share must lie in \[0, 0.5\]"):
        SimulationConfig(absent_share=share)


def test_benchmark_sets_fix_the_share(tmp_path, capsys):
    code = main(["simulate", "--benchmark", "test-2src", "--absent-share", "0.1", "--out", str(tmp_path / "x")])
    assert code == 2 and "--benchmark fixes --absent-share" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_fixed_recipe_table_holds_no_absent_items():
    with pytest.raises(LusebenchError, match="fixed recipe table: it holds no absent-target items"):
        SimulationConfig(recipes="audiocaps-test-2src", corpus="audiocaps:/nowhere", absent_share=0.1)


def test_a_query_of_the_same_category_is_not_absent_even_without_a_shared_word():
    from lusebench.simulation.corpus import Clip
    from lusebench.simulation.recipe import _unrelated

    rooster = Clip("rooster", ("A rooster crows",), category="animals")
    assert not _unrelated(Clip("hen", ("A hen clucks",), category="animals"), [rooster])
    assert _unrelated(Clip("drill", ("A hen clucks",), category="tools"), [rooster])
    assert _unrelated(Clip("hen", ("A hen clucks",)), [Clip("rooster", ("A rooster crows",))])  # no categories
    assert not _unrelated(Clip("cock", ("A rooster calls",), category="tools"), [rooster])  # a shared word
