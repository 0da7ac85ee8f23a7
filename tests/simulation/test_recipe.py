import numpy as np
import pytest
from scipy import stats

from lusebench.errors import LusebenchError
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.corpus import open_corpus
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.recipe import angular_separation_deg, circular_distance_deg, draw_recipe, place, render_recipe
from lusebench.simulation.render import Renderer


@pytest.fixture(scope="module")
def renderer():
    return Renderer(load_hrtf("kemar", 16000))


def _dry_sources(recipe, corpus):
    out = []
    for clip_id, offset, onset, gain in zip(recipe.clip_ids, recipe.clip_offsets_s, recipe.onsets_s, recipe.gains):
        audio = corpus.audio(corpus.clip(clip_id), recipe.sample_rate)
        segment = place(audio, round(offset * recipe.sample_rate), round(onset * recipe.sample_rate), recipe.num_samples)
        out.append(segment.astype(np.float64) * gain * recipe.mixture_gain)
    return out


def test_dry_snr_matches_the_recipe(corpus_spec, renderer):
    corpus = open_corpus(corpus_spec)
    config = SimulationConfig(num_sources=3, duration_s=1.0, corpus=corpus_spec)
    for index in range(10):
        recipe, rendered = draw_recipe(corpus, corpus.split("test"), config, [3, 2, index], renderer, index)
        dry = _dry_sources(recipe, corpus)
        np.testing.assert_allclose(rendered.dry_target, dry[0], atol=1e-6)
        for k in (1, 2):
            snr = 10 * np.log10(np.sum(dry[0] ** 2) / np.sum(dry[k] ** 2))
            assert abs(snr - recipe.snr_db[k]) < 0.01
            assert -5.0 <= recipe.snr_db[k] <= 5.0
        assert len(set(recipe.captions)) == 3 and len(set(recipe.clip_ids)) == 3


def test_recipe_rerenders_bit_exactly(corpus_spec, renderer):
    corpus = open_corpus(corpus_spec)
    config = SimulationConfig(num_sources=2, duration_s=1.0, corpus=corpus_spec)
    recipe, rendered = draw_recipe(corpus, corpus.split("val"), config, [1, 1, 4], renderer, 4)
    again = render_recipe(recipe, corpus, renderer)
    np.testing.assert_array_equal(again.mixture, rendered.mixture)
    np.testing.assert_array_equal(again.target, rendered.target)


def test_loud_mixture_is_rescaled_not_clipped(corpus_spec, renderer):
    corpus = open_corpus(corpus_spec)
    config = SimulationConfig(num_sources=3, duration_s=1.0, corpus=corpus_spec, target_rms_dbfs=0.0)
    recipe, rendered = draw_recipe(corpus, corpus.split("test"), config, [0, 2, 0], renderer, 0)
    assert recipe.mixture_gain < 1.0
    assert np.max(np.abs(rendered.mixture)) <= 0.99 + 1e-6
    again = render_recipe(recipe, corpus, renderer)
    np.testing.assert_array_equal(again.target, rendered.target)


def test_azimuths_are_uniform_on_the_circle(corpus_spec, renderer):
    corpus = open_corpus(corpus_spec)
    config = SimulationConfig(num_sources=2, duration_s=0.1, corpus=corpus_spec)
    azimuths = []
    for index in range(400):
        recipe, _ = draw_recipe(corpus, corpus.split("train"), config, [11, 0, index], renderer, index)
        azimuths.extend(recipe.azimuths_deg)
    assert min(azimuths) >= 0.0 and max(azimuths) < 360.0
    assert stats.kstest(np.asarray(azimuths) / 360.0, "uniform").pvalue > 0.01


def test_angular_separation_is_the_smallest_circular_distance():
    assert circular_distance_deg(359.0, 1.0) == pytest.approx(2.0)
    assert circular_distance_deg(0.0, 180.0) == pytest.approx(180.0)
    assert angular_separation_deg(10.0, [200.0, 350.0]) == pytest.approx(20.0)


def test_too_few_captions_is_rejected(tmp_path, renderer):
    from lusebench.testing.corpus import make_corpus

    corpus = open_corpus(f"audiocaps:{make_corpus(tmp_path, clips_per_split=2)}")
    config = SimulationConfig(num_sources=3, duration_s=0.5, corpus="x")
    with pytest.raises(LusebenchError, match="too few distinct captions"):
        draw_recipe(corpus, corpus.split("test"), config, [0, 2, 0], renderer, 0)
