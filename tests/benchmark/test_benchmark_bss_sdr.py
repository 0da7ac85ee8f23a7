"""bss_sdr_db against the two implementations it replaces, on rendered binaural items and short signals."""

import warnings

import fast_bss_eval
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lusebench.benchmark.metrics import BSS_FILTER_LENGTH, MAX_DB, bss_sdr_db
from lusebench.io import read_audio
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import simulate

mir_eval = pytest.importorskip("mir_eval")


def _fast_bss_eval_db(estimate, reference):
    """fast_bss_eval per ear: each ear its own one-source problem, so nothing is permuted."""
    estimate, reference = np.broadcast_arrays(estimate, reference)
    return fast_bss_eval.sdr(reference[..., None, :], estimate[..., None, :], clamp_db=MAX_DB)[..., 0]


def _mir_eval_db(estimate, reference):
    estimate, reference = np.broadcast_arrays(estimate, reference)
    out = np.empty(estimate.shape[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is deprecated in mir_eval 0.8
        for index in np.ndindex(out.shape):
            out[index] = mir_eval.separation.bss_eval_sources(
                reference[index][None], estimate[index][None], compute_permutation=False
            )[0][0]
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Three 2 s three-source anechoic mixtures (embedded corpus, KEMAR), each as
    ``(signals, target)``: signals (2 = estimate|mixture, ears, time), target (ears, time)."""
    out = tmp_path_factory.mktemp("sim") / "set"
    simulate(SimulationConfig(num_mixtures=3, duration_s=2.0, seed=7, corpus="minicaps"), out, progress=False)
    rng = np.random.default_rng(0)
    items = []
    for row in pd.read_parquet(out / "manifest.parquet").itertuples(index=False):
        mixture, _ = read_audio(out / row.mixture_path)
        target, _ = read_audio(out / row.target_path)
        mixture, target = mixture.astype(np.float64), target.astype(np.float64)
        # A plausible system output: leakage of the interferers, an echo of the target inside the
        # filter's reach, a short-lag ear swap and white noise.
        estimate = (
            target
            + 0.2 * (mixture - target)
            + 0.1 * np.roll(target, 40, axis=-1)
            + 0.05 * target[::-1]
            + 0.01 * rng.standard_normal(target.shape)
        )
        items.append((np.stack([estimate, mixture]), target))
    return items


def test_rendered_items_agree_with_fast_bss_eval(rendered):
    for signals, target in rendered:
        ours = bss_sdr_db(signals, target)
        assert ours.shape == (2, 2)
        np.testing.assert_allclose(ours, _fast_bss_eval_db(signals, target), atol=1e-3)


def test_rendered_items_agree_with_mir_eval(rendered):
    for signals, target in rendered:
        np.testing.assert_allclose(bss_sdr_db(signals, target), _mir_eval_db(signals, target), atol=1e-3)


def test_rendered_items_span_a_real_range(rendered):
    """Guards the agreement tests against trivially equal values (both capped, both floored)."""
    scores = np.stack([bss_sdr_db(signals, target) for signals, target in rendered])  # (item, est|mix, ear)
    assert np.all(np.abs(scores) < 60.0)
    assert np.ptp(scores) > 5.0


def test_sharing_the_reference_changes_nothing(rendered):
    signals, target = rendered[0]
    np.testing.assert_array_equal(bss_sdr_db(signals, target)[1], bss_sdr_db(signals[1], target))


@pytest.mark.parametrize("num_samples", [50, 300, 511, 600])
def test_short_signals_agree_with_mir_eval(num_samples):
    """Down to fewer samples than filter taps, where only an FFT of N + L - 1 points or more is exact."""
    rng = np.random.default_rng(num_samples)
    reference = np.stack([np.convolve(rng.standard_normal(num_samples), [1.0, 0.6, 0.2], "same")] * 2)
    reference[1] = 0.5 * np.roll(reference[1], 3)
    estimate = reference + 0.5 * rng.standard_normal(reference.shape)
    ours = bss_sdr_db(estimate, reference)
    np.testing.assert_allclose(ours, _mir_eval_db(estimate, reference), atol=1e-3)
    # fast_bss_eval pads to the power of two above 2N - 1, which is short of N + L - 1 under ~180
    # samples: its correlations wrap around there, so it is only a reference above that.
    if num_samples >= 300:
        np.testing.assert_allclose(ours, _fast_bss_eval_db(estimate, reference), atol=1e-3)


def test_one_tap_is_the_squared_cosine():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((2, 1000))
    estimate = reference + rng.standard_normal((2, 1000))
    cosine = np.sum(estimate * reference, -1) / np.linalg.norm(estimate, axis=-1) / np.linalg.norm(reference, axis=-1)
    expected = 10.0 * np.log10(cosine**2 / (1.0 - cosine**2))
    np.testing.assert_allclose(bss_sdr_db(estimate, reference, filter_length=1), expected, atol=1e-9)


def test_a_delay_within_the_filter_is_forgiven_and_one_beyond_it_is_not():
    reference = np.zeros((1, 4000))
    reference[:, :3000] = np.random.default_rng(2).standard_normal(3000)  # a sound that ends before the file
    within = np.roll(reference, BSS_FILTER_LENGTH - 1, axis=-1)  # the filter's last tap
    beyond = np.roll(reference, BSS_FILTER_LENGTH, axis=-1)
    assert bss_sdr_db(within, reference)[0] > 90.0
    assert bss_sdr_db(beyond, reference)[0] < 0.0  # 512 free taps on 3000 white samples: about -7 dB


@settings(max_examples=15, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.booleans(), st.integers(0, 1000))
def test_scale_and_sign_invariant(estimate_scale, reference_scale, flip, seed):
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((2, 700))
    estimate = reference + rng.standard_normal((2, 700))
    sign = -1.0 if flip else 1.0
    np.testing.assert_allclose(
        bss_sdr_db(sign * estimate_scale * estimate, reference_scale * reference),
        bss_sdr_db(estimate, reference),
        atol=1e-6,
    )


def test_silent_channels_score_the_floor():
    reference = np.random.default_rng(3).standard_normal((2, 800))
    reference[1] = 0.0
    scores = bss_sdr_db(reference + 0.1, reference)
    assert scores[0] > 0.0
    assert scores[1] == -MAX_DB
    assert np.all(bss_sdr_db(np.zeros_like(reference), reference) == -MAX_DB)


def test_bad_input_is_rejected():
    reference = np.ones((2, 100))
    with pytest.raises(ValueError, match="lengths differ"):
        bss_sdr_db(np.ones((2, 99)), reference)
    with pytest.raises(ValueError, match="filter_length"):
        bss_sdr_db(reference, reference, filter_length=0)
    with pytest.raises(ValueError, match="NaN"):
        bss_sdr_db(np.full((2, 100), np.nan), reference)
