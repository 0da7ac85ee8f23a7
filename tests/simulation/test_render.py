import numpy as np
import pytest
from scipy.signal import fftconvolve

from lusebench.allocator import retain_freed_memory
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer


@pytest.fixture(scope="module")
def renderer():
    return Renderer(load_hrtf("kemar", 16000))


@pytest.mark.parametrize("num_samples", [100, 4096, 20011, "two whole blocks"])
def test_block_convolution_equals_direct_convolution(renderer, num_samples):
    if num_samples == "two whole blocks":  # no partial last block to pad
        num_samples = 2 * renderer.block
    rng = np.random.default_rng(num_samples)
    dry = (0.1 * rng.standard_normal((3, num_samples))).astype(np.float32)
    azimuths = np.array([12.3, 181.0, 300.0])
    rendered = renderer.render(dry, azimuths)
    hrirs = renderer.hrirs(azimuths)
    for s in range(3):
        for ear in range(2):
            expected = fftconvolve(dry[s].astype(np.float64), hrirs[s, ear])[:num_samples]
            image = rendered.target[ear] if s == 0 else rendered.interferers[s - 1, ear]
            np.testing.assert_allclose(image, expected, atol=2e-6)


def test_mixture_is_the_sum_of_the_images(renderer):
    dry = (0.1 * np.random.default_rng(1).standard_normal((2, 3000))).astype(np.float32)
    rendered = renderer.render(dry, np.array([0.0, 90.0]))
    np.testing.assert_allclose(rendered.mixture, rendered.target + rendered.interferers[0], atol=1e-7)
    np.testing.assert_array_equal(rendered.dry_target, dry[0])


def test_retaining_freed_memory_changes_no_sample(renderer):
    dry = (0.1 * np.random.default_rng(2).standard_normal((3, 16000))).astype(np.float32)
    azimuths = np.array([30.0, 200.0, 310.0])
    before = renderer.render(dry, azimuths)
    retain_freed_memory()
    after = renderer.render(dry, azimuths)
    assert before.mixture.tobytes() == after.mixture.tobytes()
    assert before.interferers.tobytes() == after.interferers.tobytes()
