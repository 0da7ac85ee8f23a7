import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lusebench.benchmark.metrics import (
    MAX_DB,
    METRICS,
    azimuth_from_likelihood,
    bss_sdr_db,
    circular_error_deg,
    folded_error_deg,
    gcc_phat_itd_s,
    ild_db,
    sdr_db,
    si_snr_db,
    wrap_azimuth_deg,
)
from lusebench.testing.datasets import binaural_image, spherical_head_cues

RATE = 16000
angles = st.floats(-720.0, 720.0, allow_nan=False)


def _noise(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


def test_circular_error_known_answers():
    assert circular_error_deg(359.0, 1.0) == pytest.approx(2.0)
    assert circular_error_deg(10.0, 10.0) == 0.0
    assert circular_error_deg(0.0, 180.0) == pytest.approx(180.0)
    assert circular_error_deg(-90.0, 270.0) == pytest.approx(0.0)


@given(angles, angles)
def test_circular_and_folded_errors_are_symmetric_and_bounded(a, b):
    assert circular_error_deg(a, b) == pytest.approx(circular_error_deg(b, a), abs=1e-9)
    assert folded_error_deg(a, b) == pytest.approx(folded_error_deg(b, a), abs=1e-9)
    assert 0.0 <= circular_error_deg(a, b) <= 180.0
    assert 0.0 <= folded_error_deg(a, b) <= circular_error_deg(a, b) + 1e-9


def test_folded_error_forgives_front_back_confusion():
    assert circular_error_deg(150.0, 30.0) == pytest.approx(120.0)
    assert folded_error_deg(150.0, 30.0) == pytest.approx(0.0)
    assert folded_error_deg(0.0, 180.0) == pytest.approx(0.0)
    assert folded_error_deg(90.0, 270.0) == pytest.approx(180.0)  # left for right is no front-back confusion


@given(angles)
def test_wrap_lands_in_range_and_keeps_direction(a):
    wrapped = wrap_azimuth_deg(a)
    assert 0.0 <= wrapped < 360.0
    assert circular_error_deg(wrapped, a) == pytest.approx(0.0, abs=1e-9)


def test_azimuth_from_likelihood_is_the_argmax_bin():
    likelihood = np.zeros((2, 360))
    likelihood[0, 17] = 1.0
    likelihood[1, 359] = 0.5
    np.testing.assert_array_equal(azimuth_from_likelihood(likelihood), [17.0, 359.0])


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 1e3), st.integers(0, 10_000))
def test_si_snr_ignores_the_estimate_scale(scale, seed):
    reference = _noise(seed, (2, 800))
    estimate = reference + 0.5 * _noise(seed + 1, (2, 800))
    np.testing.assert_allclose(si_snr_db(scale * estimate, reference), si_snr_db(estimate, reference), atol=1e-6)


def test_identical_signals_hit_the_cap_and_opposite_ones_the_floor():
    reference = _noise(0, (2, 1000))
    np.testing.assert_allclose(si_snr_db(reference, reference), MAX_DB)
    np.testing.assert_allclose(sdr_db(reference, reference), MAX_DB)
    assert np.all(bss_sdr_db(reference, reference) > 99.0)
    assert np.all(np.isfinite(si_snr_db(np.zeros_like(reference), reference)))


def test_sdr_known_answer():
    reference = np.ones((1, 100))
    estimate = reference * 1.1  # error energy is 1% of the signal's: 20 dB
    np.testing.assert_allclose(sdr_db(estimate, reference), [20.0])


def test_bss_sdr_does_not_permute_the_ears():
    """Pins the trap of a permuting API: a left-right swapped estimate must score badly."""
    left, right = _noise(1, 4000), _noise(2, 4000)
    reference = np.stack([left, right])
    swapped = reference[::-1]
    assert np.all(bss_sdr_db(reference, reference) > 90.0)
    assert np.all(bss_sdr_db(swapped, reference) < 0.0)


def _realistic_item(seed, seconds=0.5):
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    target = binaural_image(np.convolve(rng.standard_normal(n), [1.0, 0.6, 0.2], "same"), 40.0, RATE)
    interferer = binaural_image(rng.standard_normal(n), 250.0, RATE)
    estimate = target + 0.3 * interferer + 0.05 * np.roll(target, 7, axis=-1) + 0.02 * rng.standard_normal((2, n))
    return estimate, target


@pytest.mark.parametrize("seed", [0, 1])
def test_bss_sdr_agrees_with_mir_eval_per_ear(seed):
    mir_eval = pytest.importorskip("mir_eval")
    estimate, target = _realistic_item(seed)
    ours = bss_sdr_db(estimate, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is deprecated in mir_eval 0.8
        theirs = [
            mir_eval.separation.bss_eval_sources(target[e : e + 1], estimate[e : e + 1], compute_permutation=False)[0][0]
            for e in range(2)
        ]
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_bss_sdr_scores_a_stack_against_one_reference():
    estimate, target = _realistic_item(3)
    stacked = bss_sdr_db(np.stack([estimate, target + estimate]), target)
    np.testing.assert_allclose(stacked[0], bss_sdr_db(estimate, target))
    np.testing.assert_allclose(stacked[1], bss_sdr_db(target + estimate, target))


@pytest.mark.parametrize("azimuth", [0.0, 30.0, 90.0, 200.0, 300.0])
def test_gcc_phat_recovers_the_itd_and_ild_of_an_image(azimuth):
    image = binaural_image(_noise(4, RATE // 2), azimuth, RATE)
    itd_s, ild = spherical_head_cues(azimuth)
    assert gcc_phat_itd_s(image, RATE) == pytest.approx(itd_s, abs=20e-6)
    assert ild_db(image) == pytest.approx(ild, abs=0.5)


def test_a_source_on_the_left_reaches_the_left_ear_first():
    image = binaural_image(_noise(5, RATE // 2), 90.0, RATE)
    assert gcc_phat_itd_s(image, RATE) > 0
    assert ild_db(image) > 0


def test_registry_says_which_way_is_better():
    assert METRICS["si_snri_db"].higher_is_better
    assert not METRICS["doa_mae_deg"].higher_is_better
    assert {m.task for m in METRICS.values()} == {"extraction", "localization", "both"}
    assert not METRICS["doa_front_back_pct"].higher_is_better and METRICS["joint_success_pct"].proportion
