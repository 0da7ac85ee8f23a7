import numpy as np
import pytest

from lusebench.errors import LusebenchError
from lusebench.simulation.hrtf import itd_ild, load_hrtf
from lusebench.simulation.render import Renderer

SR = 16000


@pytest.fixture(scope="module")
def kemar():
    return load_hrtf("kemar", SR)


def _itd_s(left: np.ndarray, right: np.ndarray, max_lag: int = 32) -> float:
    """Lag (s) by which the right ear trails the left, from the cross-correlation peak."""
    full = np.correlate(right, left, mode="full")
    centre = len(left) - 1
    window = full[centre - max_lag : centre + max_lag + 1]
    return (int(np.argmax(window)) - max_lag) / SR


def test_kemar_ring_has_72_directions_at_16k(kemar):
    assert len(kemar.azimuths_deg) == 72
    assert kemar.num_directions_total == 710
    assert kemar.source_sample_rate == 44100
    np.testing.assert_allclose(np.diff(kemar.azimuths_deg), 5.0)
    assert 180 <= kemar.num_taps <= 190  # 512 taps at 44.1 kHz -> ~186 at 16 kHz


@pytest.mark.parametrize("azimuth, sign", [(90.0, 1), (270.0, -1)])
def test_side_source_reaches_near_ear_first_and_louder(kemar, azimuth, sign):
    noise = np.random.default_rng(0).standard_normal((1, SR)).astype(np.float32) * 0.05
    image = Renderer(kemar).render(noise, np.array([azimuth])).target
    itd = _itd_s(image[0], image[1])
    assert sign * itd > 0, "the ear facing the source must lead"
    assert 0.6e-3 <= abs(itd) <= 0.85e-3
    ild_db = 10 * np.log10(np.sum(image[0] ** 2) / np.sum(image[1] ** 2))
    assert sign * ild_db > 6.0


def test_front_source_is_symmetric(kemar):
    itd, ild = itd_ild(kemar)
    front = kemar.nearest(0.0)
    assert abs(itd[front]) < 50e-6 and abs(ild[front]) < 1.0


def test_interpolation_reproduces_measured_directions(kemar):
    renderer = Renderer(kemar, "linear-aligned")
    index = kemar.nearest(35.0)
    hrir = renderer.hrirs(np.array([35.0]))[0, :, : kemar.num_taps]
    np.testing.assert_allclose(hrir, kemar.hrirs[index], atol=1e-5)


def test_interpolated_onset_lies_between_neighbours(kemar):
    renderer = Renderer(kemar, "linear-aligned")
    between = renderer.hrirs(np.array([32.5]))[0]
    lo, hi = kemar.nearest(30.0), kemar.nearest(35.0)
    left_peak = np.argmax(np.abs(between[0]))
    assert min(np.argmax(np.abs(kemar.hrirs[lo, 0])), np.argmax(np.abs(kemar.hrirs[hi, 0]))) - 1 <= left_peak
    assert left_peak <= max(np.argmax(np.abs(kemar.hrirs[lo, 0])), np.argmax(np.abs(kemar.hrirs[hi, 0]))) + 1
    # Aligned interpolation keeps the high band that averaging two offset impulses would notch.
    spectrum = np.abs(np.fft.rfft(between[1], 512))
    ends = np.abs(np.fft.rfft(kemar.hrirs[[lo, hi], 1], 512))
    band = slice(200, 250)  # 6.25-7.8 kHz
    assert spectrum[band].mean() > 0.7 * ends[:, band].mean()


def test_nearest_mode_snaps_to_measured(kemar):
    renderer = Renderer(kemar, "nearest")
    hrir = renderer.hrirs(np.array([33.0]))[0, :, : kemar.num_taps]
    np.testing.assert_allclose(hrir, kemar.hrirs[kemar.nearest(35.0)], atol=1e-6)


def test_unreadable_sofa_is_rejected(tmp_path):
    bad = tmp_path / "broken.sofa"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(LusebenchError, match="broken.sofa"):
        load_hrtf(str(bad), SR)
    with pytest.raises(LusebenchError, match="not found"):
        load_hrtf(str(tmp_path / "absent.sofa"), SR)
