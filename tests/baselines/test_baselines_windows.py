"""Windowed inference: a model built for short clips over mixtures of any length."""

from __future__ import annotations

import pytest
import torch

from lusebench.baselines.systems import SystemOutput
from lusebench.baselines.windows import crossfade_weight, run_windowed, window_starts
from lusebench.errors import LusebenchError


def _si_snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    scale = (estimate * reference).sum() / reference.pow(2).sum()
    noise = estimate - scale * reference
    return float(10 * torch.log10((scale * reference).pow(2).sum() / noise.pow(2).sum()))


def test_windows_cover_the_signal_and_end_at_its_end():
    assert window_starts(100, 40) == [0, 30, 60]
    assert window_starts(40, 40) == [0]
    assert window_starts(101, 40) == [0, 30, 60, 61]
    with pytest.raises(LusebenchError, match="shorter"):
        window_starts(39, 40)
    weight = crossfade_weight(8)
    assert weight.min() > 0 and weight.max() == 1 and torch.equal(weight, weight.flip(0))


@pytest.mark.parametrize("length", [16000, 16001, 160000, 9000])
def test_an_identity_model_leaves_no_seam(length):
    def identity(windows, captions):
        assert windows.shape[-1] == 16000 and len(captions) == windows.shape[0]
        return SystemOutput(windows.clone(), None, ())

    mixture = torch.randn(3, 2, length, generator=torch.Generator().manual_seed(0))
    out = run_windowed(identity, mixture, ["a", "b", "c"], 16000, max_windows=5)
    assert out.waveform.shape == mixture.shape and out.doa_likelihood is None
    assert _si_snr_db(out.waveform, mixture) > 40


def test_a_model_that_varies_per_window_is_cross_faded_not_stepped():
    # Each window returns its input times a gain that differs per window: the stitched gain
    # moves between neighbours' gains within the overlap, never outside them.
    gains = iter(torch.linspace(0.5, 1.5, 50))

    def drifting(windows, captions):
        return SystemOutput(torch.stack([w * next(gains) for w in windows]), None, ())

    ones = torch.ones(1, 2, 40000)
    out = run_windowed(drifting, ones, ["x"], 16000).waveform[0, 0]
    assert out.min() >= 0.5 - 1e-6 and out.max() <= 1.5 + 1e-6
    assert out.diff().abs().max() < 0.01  # no jump between windows


def test_likelihoods_are_weighted_by_the_energy_of_the_extracted_target():
    # Two windows of 16000 in 24000 samples (starts 0 and 8000); the target is loud only in the
    # first, whose likelihood must win.
    def model(windows, captions):
        loud = windows.abs().amax(dim=(1, 2)) > 0.5
        likelihood = torch.zeros(windows.shape[0], 360)
        likelihood[loud, 90] = 1.0
        likelihood[~loud, 270] = 1.0
        return SystemOutput(windows, likelihood, ())

    mixture = torch.zeros(1, 2, 24000)
    mixture[..., :4000] = 1.0  # only in the first window
    mixture[..., 4000:] = 0.01
    out = run_windowed(model, mixture, ["x"], 16000)
    assert out.doa_likelihood.shape == (1, 360)
    assert out.doa_likelihood[0].argmax().item() == 90
