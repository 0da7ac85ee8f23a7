"""Training losses of the paper (section 2.4): -SI-SNR, multi-resolution delta spectrum, DoA MSE;
and, for a query whose sound is not in the mixture, the output's level re the mixture.

The delta-spectrum loss follows Pan et al. (Interspeech 2022, "hybrid continuity loss"): L1
distances between STFT magnitudes, and between their first and second differences along time,
averaged over three resolutions. lusebench uses Hann windows of 512, 1024 and 2048 samples with
hop = window / 4 (32, 64, 128 ms at 16 kHz): the short window resolves onsets (where the
delta terms matter most, against over-suppression), the long one resolves tonal partials, and
the middle one sits between; no single window serves the mix of transient and tonal events in
AudioCaps.

An absent target is silence: SI-SNR against it divides by zero, and any output is equally wrong
by its measure. Such an item is trained on its output's energy relative to the mixture, in dB with
a soft floor at the benchmark's ABSENT_FLOOR_DB (-60 dB): ``10 log10(|y|^2 / |x|^2 + 1e-6)``. The
floor keeps the loss finite at an exactly silent output and stops rewarding quieter outputs where
the benchmark stops telling them apart; its DoA label is all zeros (no direction, no peak).

Everything is computed in float32 with windows made on the
input's device, so the same call runs on CPU, on GPU and under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from lusebench.benchmark.metrics import ABSENT_FLOOR_DB
from lusebench.errors import LusebenchError

DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))

# How the Gaussian DoA label is scaled. The paper writes y = N(theta; d, sigma^2): read literally
# as the normal density, its peak is 0.178 at sigma^2 = 5 and its 360 values sum to 1
# ("density"). The paper takes the loss from its reference [24] (Qian et al., ICASSP 2021), whose
# likelihood-based coding peaks at 1 ("likelihood"): the sigmoid outputs then read as the
# likelihood that a source sits in each bin, and the peak carries 31x the squared error.
DoALabel = Literal["likelihood", "density"]


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and settings; defaults are the paper's.

    Attributes:
        gamma: weight of the DoA MSE in the total (paper: 10).
        sigma2_deg2: variance of the Gaussian DoA label in degrees squared (paper: 5).
        doa_label: ``likelihood`` (peak 1, reference [24]'s coding; the default, see
            docs/small-preset.md for the measurement) or ``density`` (the normal density).
        resolutions: (n_fft, hop) pairs of the delta-spectrum loss.
    """

    gamma: float = 10.0
    sigma2_deg2: float = 5.0
    doa_label: DoALabel = "likelihood"
    resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS


def neg_si_snr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative scale-invariant SNR in dB, averaged over all leading dimensions.

    Args:
        estimate: (..., T) waveform.
        reference: (..., T) waveform, same shape.
        eps: keeps silent references finite.

    Returns:
        Scalar: mean over items and channels of ``-10 log10(|s_t|^2 / |e|^2)`` with zero-mean signals.
    """
    estimate = estimate.float() - estimate.float().mean(dim=-1, keepdim=True)
    reference = reference.float() - reference.float().mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    ratio = (target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)
    return -(10 * torch.log10(ratio)).mean()


def delta_spectrum_loss(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
) -> torch.Tensor:
    """Multi-resolution delta spectrum loss (scale-variant).

    Args:
        estimate: (..., T) waveform.
        reference: (..., T) waveform, same shape.
        resolutions: (n_fft, hop) per STFT resolution.

    Returns:
        Scalar: mean over resolutions of ``L1(|S|) + L1(d|S|/dt) + L1(d2|S|/dt2)``, each a mean
        absolute difference over items, bins and frames (differences are between adjacent frames).
    """
    est = estimate.float().reshape(-1, estimate.shape[-1])
    ref = reference.float().reshape(-1, reference.shape[-1])
    total = est.new_zeros(())
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft, device=est.device)
        mags = [
            torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True).abs() for x in (est, ref)
        ]  # (N, bins, frames) each
        diff = mags[0] - mags[1]
        first = diff.diff(dim=-1)
        second = first.diff(dim=-1)
        total = total + diff.abs().mean() + first.abs().mean() + second.abs().mean()
    return total / len(resolutions)


def circular_distance_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Smallest angle between azimuths ``a`` and ``b`` in degrees (broadcast), in [0, 180]."""
    delta = torch.remainder(a - b, 360.0)
    return torch.minimum(delta, 360.0 - delta)


def doa_label_peak(coding: DoALabel, sigma2_deg2: float) -> float:
    """The label's peak, its factor on ``exp(-delta^2 / (2 sigma^2))``: 1 (likelihood) or the normal
    density's 1 / sqrt(2 pi sigma^2)."""
    if coding == "likelihood":
        return 1.0
    if coding == "density":
        return 1.0 / math.sqrt(2 * math.pi * sigma2_deg2)
    raise LusebenchError(f"unknown DoA label coding {coding!r}; choose likelihood or density")


def gaussian_doa_label(
    azimuth_deg: torch.Tensor, num_bins: int = 360, sigma2_deg2: float = 5.0, coding: DoALabel = "likelihood"
) -> torch.Tensor:
    """Gaussian-smoothed DoA label over bins, wrapped around 0/360.

    Bin i is centred on ``i * 360 / num_bins`` degrees; the distance to the true azimuth is the
    circular one, so 359 deg and 0 deg are neighbours. ``likelihood`` gives
    ``exp(-delta^2 / (2 sigma^2))`` (peak 1); ``density`` divides it by ``sqrt(2 pi sigma^2)``, the
    normal density of the paper's equation (sums to about 1 over 1-degree bins, peak 0.178 at
    sigma^2 = 5).

    Args:
        azimuth_deg: (B,) azimuths in degrees, any real value (taken modulo 360); NaN (an absent
            target) gives an all-zero row.
        num_bins: number of azimuth bins.
        sigma2_deg2: variance in degrees squared.
        coding: ``likelihood`` or ``density``.

    Returns:
        (B, num_bins) float32 label.
    """
    scale = doa_label_peak(coding, sigma2_deg2)
    centres = torch.arange(num_bins, device=azimuth_deg.device, dtype=torch.float32) * (360.0 / num_bins)
    delta = circular_distance_deg(centres[None], azimuth_deg.float()[:, None])
    label = torch.exp(-delta.pow(2) / (2 * sigma2_deg2))
    # A NaN azimuth is an absent target: no direction, a label without a peak.
    return torch.where(torch.isnan(azimuth_deg)[:, None], 0.0, label * scale)


def doa_label_prior(num_bins: int = 360, sigma2_deg2: float = 5.0, coding: DoALabel = "likelihood") -> float:
    """Mean value per bin of the label: what a decoder that knows nothing should predict.

    Plain Python rather than :func:`gaussian_doa_label`, so that it also serves a model being
    built on the ``meta`` device.
    """
    scale = doa_label_peak(coding, sigma2_deg2)
    step = 360.0 / num_bins
    values = [math.exp(-min(i * step, 360.0 - i * step) ** 2 / (2 * sigma2_deg2)) for i in range(num_bins)]
    return scale * sum(values) / num_bins


def doa_mse(
    likelihood: torch.Tensor, azimuth_deg: torch.Tensor, sigma2_deg2: float = 5.0, coding: DoALabel = "likelihood"
) -> torch.Tensor:
    """DoA loss of the paper's equation (2): squared error summed over bins, averaged over items.

    Args:
        likelihood: (B, N) predicted likelihoods.
        azimuth_deg: (B,) true azimuths in degrees; NaN for an absent target (an all-zero label).
        sigma2_deg2: variance of the Gaussian label.
        coding: label scaling, see :func:`gaussian_doa_label`.

    Returns:
        Scalar ``mean_b sum_i (d_hat_bi - y_bi)^2``.
    """
    label = gaussian_doa_label(azimuth_deg, likelihood.shape[-1], sigma2_deg2, coding)
    return (likelihood.float() - label).pow(2).sum(-1).mean()


def output_level_db(estimate: torch.Tensor, mixture: torch.Tensor, floor_db: float = ABSENT_FLOOR_DB) -> torch.Tensor:
    """Energy of each output relative to its mixture, in dB, softly floored: the loss of an absent target.

    Args:
        estimate: (B, ..., T) waveform.
        mixture: (B, ..., T) waveform, same shape.
        floor_db: the value an all-zero output takes; the level approaches it smoothly.

    Returns:
        (B,) ``10 log10(|y|^2 / |x|^2 + 10^(floor_db / 10))`` over each item's channels and samples.
    """
    dims = tuple(range(1, estimate.dim()))
    ratio = estimate.float().pow(2).sum(dims) / mixture.float().pow(2).sum(dims).clamp_min(1e-12)
    return 10 * torch.log10(ratio + 10.0 ** (floor_db / 10.0))
