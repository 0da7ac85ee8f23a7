"""lusebench's resample_poly against scipy.signal.resample_poly, which it replaces to keep scipy.signal
out of simulate's start-up: same length, same samples up to float rounding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from lusebench.simulation.resample import resample_poly


@settings(max_examples=60, deadline=None)
@given(up=st.integers(1, 50), down=st.integers(1, 50), length=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_equals_scipy_resample_poly(up, down, length, seed):
    x = np.random.default_rng(seed).standard_normal((2, length))
    expected = signal.resample_poly(x, up, down, axis=-1)
    got = resample_poly(x, up, down)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("up", "down", "axis"), [(160, 441, -1), (1, 3, 0), (8, 1, 1), (147, 160, -1)])
def test_equals_scipy_at_the_rates_simulation_uses_along_any_axis(up, down, axis):
    # 44.1 kHz and 48 kHz clips and HRIRs to 16 kHz, the HRIR onsets' 8x upsampling, 16 kHz to 14.7 kHz.
    x = np.random.default_rng(0).standard_normal((4, 700, 3))
    expected = signal.resample_poly(x, up, down, axis=axis)
    got = resample_poly(x, up, down, axis=axis)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_an_equal_rate_is_a_copy():
    x = np.arange(5.0)
    got = resample_poly(x, 3, 3)
    np.testing.assert_array_equal(got, x)
    assert got is not x
