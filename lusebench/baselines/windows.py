"""Inference on mixtures of any length with a model built for clips of one length.

A system is trained on clips of ``clip_samples`` (1 s at the small preset) but the benchmark sets
hold 10 s mixtures. The mixture is cut into windows of the clip length that overlap by a quarter
(demucs' ``apply_model`` default), every window goes through the model, and:

* extraction: the windows' outputs are overlap-added with triangular cross-fade weights and
  divided by the summed weights, so a model that returns its input returns the mixture exactly
  (no seam) and a model's window-to-window differences fade into each other instead of jumping;
* localization: the windows' likelihoods are averaged, each weighted by the energy of what the
  window says about the target: the extracted target's energy for a joint system (a window where
  the target is silent has no direction to give), the mixture's energy for a localization-only
  system (silence says nothing either).

A mixture shorter than a clip is zero-padded to one clip and the output cut back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from lusebench.errors import LusebenchError

OVERLAP = 0.25


@dataclass(frozen=True)
class WindowedOutput:
    """What :func:`run_windowed` returns for a batch of mixtures.

    Attributes:
        waveform: (B, 2, N) stitched extraction, or None.
        doa_likelihood: (B, bins) combined likelihood, or None.
    """

    waveform: torch.Tensor | None
    doa_likelihood: torch.Tensor | None


def window_starts(length: int, window: int, overlap: float = OVERLAP) -> list[int]:
    """Start samples of windows that cover ``length`` samples; the last one ends at the end.

    Raises:
        LusebenchError: ``length`` shorter than ``window`` (pad first) or an overlap outside [0, 1).
    """
    if length < window:
        raise LusebenchError(f"{length} samples are shorter than one {window}-sample window")
    if not 0.0 <= overlap < 1.0:
        raise LusebenchError(f"window overlap must lie in [0, 1), got {overlap}")
    hop = max(1, int(round(window * (1.0 - overlap))))
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def crossfade_weight(window: int) -> torch.Tensor:
    """(window,) triangular weight, positive everywhere, peak 1 in the middle (as demucs)."""
    half = window // 2
    ramp = torch.cat([torch.arange(1, half + 1), torch.arange(window - half, 0, -1)]).float()
    return ramp / ramp.max()


def run_windowed(
    model: Callable[[torch.Tensor, list[str]], object],
    mixture: torch.Tensor,
    captions: Sequence[str],
    window: int,
    max_windows: int = 16,
    overlap: float = OVERLAP,
) -> WindowedOutput:
    """Runs ``model`` over overlapping windows of ``mixture`` and stitches the results.

    Args:
        model: takes (M, 2, window) windows and M captions, returns an object with ``waveform``
            (M, 2, window) or None and ``doa_likelihood`` (M, bins) or None (a SystemOutput).
        mixture: (B, 2, N) binaural mixtures, any N >= 1.
        captions: B captions.
        window: the clip length the model was built for, in samples.
        max_windows: windows per model call (bounds memory).
        overlap: fraction of a window shared with the next.

    Returns:
        The stitched :class:`WindowedOutput`.
    """
    batch, channels, length = mixture.shape
    padded = max(length, window)
    if padded > length:
        mixture = torch.nn.functional.pad(mixture, (0, padded - length))
    starts = window_starts(padded, window, overlap)
    k = len(starts)
    pieces = torch.stack([mixture[..., s : s + window] for s in starts], dim=1)  # (B, K, 2, window)
    flat = pieces.flatten(0, 1)  # (B*K, 2, window), item-major like ``repeated``
    repeated = [caption for caption in captions for _ in range(k)]
    waves, likelihoods = [], []
    for i in range(0, batch * k, max_windows):
        out = model(flat[i : i + max_windows], repeated[i : i + max_windows])
        if out.waveform is not None:
            waves.append(out.waveform.float())
        if out.doa_likelihood is not None:
            likelihoods.append(out.doa_likelihood.float())
    wave = torch.cat(waves).reshape(batch, k, channels, window) if waves else None

    stitched = None
    if wave is not None:
        weight = crossfade_weight(window).to(wave.device)
        total = torch.zeros(batch, channels, padded, device=wave.device)
        norm = torch.zeros(padded, device=wave.device)
        for j, s in enumerate(starts):
            total[..., s : s + window] += wave[:, j] * weight
            norm[s : s + window] += weight
        stitched = (total / norm)[..., :length]

    combined = None
    if likelihoods:
        likelihood = torch.cat(likelihoods).reshape(batch, k, -1)  # (B, K, bins)
        evidence = wave if wave is not None else pieces.to(likelihood.device)
        energy = evidence.pow(2).mean(dim=(2, 3))  # (B, K)
        # All-silent windows (energy 0 everywhere) fall back to a plain mean.
        weights = torch.where(energy.sum(1, keepdim=True) > 0, energy, torch.ones_like(energy))
        combined = (likelihood * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
    return WindowedOutput(stitched, combined)
