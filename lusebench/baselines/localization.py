"""Localization parts: GCC-PHAT features, the spectral DoA encoder, and the DoA decoder (paper 2.3).

GCC-PHAT features (the paper gives only their flattened size, 376 at 16 kHz / 10 s):

* Physics: the interaural time difference (ITD) of a human head peaks for a source at the side.
  Woodworth's spherical model gives ``ITD = (a / c) (theta + sin theta)``, at most
  ``0.0875 m / 343 m/s * (pi/2 + 1) ~= 0.66 ms`` for an average head, and measured ITDs stay
  under about 0.8 ms for large heads (well under 1 ms). At 16 kHz that is at most ~13 samples.
* Lags: +-23 samples (47 lags, +-1.44 ms). That keeps every physically possible ITD plus
  margin, so the correlation peak is never at the window's edge and its flanks stay visible
  (the PHAT peak broadens with the HRTF's group delay at low frequencies and with
  reverberation); lags further out carry no direct-path information.
* Frames: GCC-PHAT per STFT frame (``nfft`` 1024 = 64 ms, hop 512), the lag vectors averaged
  over ``segments`` equal stretches of the clip (adaptive average pooling): 8 at the paper
  preset, so the features still show a source that moves or is active in part of the clip.
* 47 lags x 8 segments = 376, flattened segment-major.

Sign: lag ``+tau`` means the right ear hears the signal ``tau`` samples after the left ear, so
a source on the left (azimuth 90, counter-clockwise) peaks at a positive lag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lusebench.errors import LusebenchError


@dataclass(frozen=True)
class GccPhatConfig:
    """GCC-PHAT feature sizes; defaults give the paper's 376 features at 16 kHz.

    Attributes:
        nfft: STFT size of each correlation frame (samples).
        hop_length: STFT hop (samples).
        max_lag: lags from ``-max_lag`` to ``+max_lag`` samples are kept.
        segments: the clip's frames are averaged into this many equal stretches.
    """

    nfft: int = 1024
    hop_length: int = 512
    max_lag: int = 23
    segments: int = 8

    @property
    def num_lags(self) -> int:
        return 2 * self.max_lag + 1

    @property
    def num_features(self) -> int:
        """Flattened size (paper preset: 47 x 8 = 376)."""
        return self.num_lags * self.segments


def gcc_phat(mixture: torch.Tensor, config: GccPhatConfig) -> torch.Tensor:
    """GCC-PHAT between the two ears, per frame, pooled into segments.

    Args:
        mixture: (B, 2, T) binaural waveform, left then right.
        config: lags and pooling.

    Returns:
        (B, segments, 2 * max_lag + 1) correlation per lag from ``-max_lag`` to ``+max_lag``.

    Raises:
        LusebenchError: the mixture is not binaural or too short for ``segments`` frames.
    """
    if mixture.dim() != 3 or mixture.shape[1] != 2:
        raise LusebenchError(f"GCC-PHAT needs a (batch, 2, time) binaural mixture, got {tuple(mixture.shape)}")
    b, _, t = mixture.shape
    if 1 + t // config.hop_length < config.segments:
        raise LusebenchError(
            f"GCC-PHAT: {t} samples give fewer than {config.segments} frames of hop {config.hop_length}"
        )
    window = torch.hann_window(config.nfft, device=mixture.device)
    spec = torch.stft(
        mixture.reshape(2 * b, t).float(), config.nfft, config.hop_length, window=window, return_complex=True
    ).reshape(b, 2, config.nfft // 2 + 1, -1)  # (B, 2, bins, frames)
    cross = spec[:, 1] * spec[:, 0].conj()  # R L*: peaks at +tau when R lags L by tau
    cross = cross / (cross.abs() + 1e-8)
    corr = torch.fft.irfft(cross, n=config.nfft, dim=1)  # (B, nfft, frames), circular lags
    lags = torch.cat([corr[:, -config.max_lag :], corr[:, : config.max_lag + 1]], dim=1)  # (B, lags, frames)
    return F.adaptive_avg_pool1d(lags, config.segments).transpose(1, 2)  # (B, segments, lags)


@dataclass(frozen=True)
class DoAConfig:
    """Localization head sizes; defaults are the paper's (section 3.3).

    Attributes:
        layer_tokens_out: output channels of the per-layer 1x1 Conv1d over the spectral tokens.
        fdoa_hidden: hidden channels of the F-DoA encoder's 1x1 convs (then down to 1 channel).
        decoder_hidden: width of the DoA decoder's hidden linear layers.
        decoder_layers: number of linear layers in the DoA decoder.
        num_bins: azimuth bins of the likelihood (1 degree each at 360).
        dropout: dropout between layers.
    """

    layer_tokens_out: int = 100
    fdoa_hidden: tuple[int, ...] = (512, 256)
    decoder_hidden: int = 1024
    decoder_layers: int = 6
    num_bins: int = 360
    dropout: float = 0.1


class SpectralDoAEncoder(nn.Module):
    """Per-layer 1x1 Conv1d (tokens as channels) then the F-DoA encoder, to one vector per item.

    At the paper preset each of the 5 spectral layers is (B, 1256, 512): Conv1d 1256 -> 100
    treats the 1256 tokens as channels and the 512 features as length; concatenated that is
    (B, 500, 512), and the F-DoA encoder (500 -> 512 -> 256 -> 1, kernel 1) leaves (B, 512).

    Args:
        num_tokens: spectral tokens per layer (fixes the clip length the head accepts).
        num_layers: transformer layers whose outputs are used.
        config: head sizes.
    """

    def __init__(self, num_tokens: int, num_layers: int, config: DoAConfig) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.layer_convs = nn.ModuleList(
            nn.Conv1d(num_tokens, config.layer_tokens_out, 1) for _ in range(num_layers)
        )
        widths = [num_layers * config.layer_tokens_out, *config.fdoa_hidden]
        blocks: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            blocks += [nn.Conv1d(cin, cout, 1), nn.ReLU(), nn.Dropout(config.dropout)]
        # No bias: the DoA decoder's first layer feeds a BatchNorm, which removes any constant
        # added to all features, so that bias would never get a gradient.
        blocks.append(nn.Conv1d(widths[-1], 1, 1, bias=False))
        self.fdoa = nn.Sequential(*blocks)

    def forward(self, spectral_layers: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Each layer (B, num_tokens, dim) -> (B, dim)."""
        if spectral_layers[0].shape[1] != self.num_tokens:
            raise LusebenchError(
                f"the localization head was built for {self.num_tokens} spectral tokens, got "
                f"{spectral_layers[0].shape[1]}: the clip length must match the system's clip_samples"
            )
        stacked = torch.cat([conv(layer) for conv, layer in zip(self.layer_convs, spectral_layers)], dim=1)
        return self.fdoa(stacked).squeeze(1)  # (B, dim)


class DoADecoder(nn.Module):
    """Linear layers with BatchNorm, ReLU and dropout between them, to sigmoid azimuth likelihoods.

    Paper: 888 -> 1024 -> 1024 -> 1024 -> 1024 -> 1024 -> 360. A linear layer that feeds a
    BatchNorm has no bias (the BatchNorm's own shift replaces it). The last bias starts at the
    logit of ``label_prior``, the label's mean value per bin, so that step 0 already predicts the
    near-empty background rather than 0.5 in every bin: otherwise the first thousands of steps
    go into pushing 359 sigmoids down instead of finding the peak.

    Args:
        input_dim: width of the features.
        config: layer sizes.
        label_prior: mean value of the training label over bins, in (0, 1).
    """

    def __init__(self, input_dim: int, config: DoAConfig, label_prior: float) -> None:
        super().__init__()
        if not 0.0 < label_prior < 1.0:
            raise LusebenchError(f"DoA label prior must lie in (0, 1), got {label_prior}")
        widths = [input_dim] + [config.decoder_hidden] * (config.decoder_layers - 1) + [config.num_bins]
        blocks: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            hidden = i < len(widths) - 2
            blocks.append(nn.Linear(cin, cout, bias=not hidden))
            if hidden:
                blocks += [nn.BatchNorm1d(cout), nn.ReLU(), nn.Dropout(config.dropout)]
        self.layers = nn.Sequential(*blocks)
        with torch.no_grad():
            self.layers[-1].bias.fill_(math.log(label_prior / (1.0 - label_prior)))
        self.input_dim = input_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, num_bins) likelihoods in (0, 1)."""
        return torch.sigmoid(self.layers(features))
