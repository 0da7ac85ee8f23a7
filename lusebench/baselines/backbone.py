"""Hybrid time/spectral extraction backbone in the style of HTDemucs (Rouard et al., ICASSP 2023).

Written from the paper, compactly, for text-queried extraction:

* Spectral branch: STFT (Hann, ``nfft``/``hop``, centred), the Nyquist bin dropped so the
  ``nfft/2`` bins divide by ``stride**depth``; real and imaginary parts of each ear become
  channels ("complex as channels"), so 2 ears give 4 input channels. ``depth`` Conv2d layers
  with kernel ``k`` and stride ``s`` along frequency only (GELU, then 1x1 conv + GLU).
* Time branch: ``depth`` Conv1d layers, kernel ``k`` stride ``s`` (GELU, 1x1 conv + GLU) on the
  waveform padded to a multiple of ``s**depth``.
* Channels ``channels * growth**i`` (paper: 48, 96, 192, 384), then a Linear to the transformer
  width (512). Both token sequences get fixed sinusoidal positions (2-D for the spectral one).
* Cross-domain transformer: ``transformer_layers`` pre-norm layers per branch alternating self
  and cross attention (paper: self, cross, self, cross, self). FiLM from the pooled text vector
  modulates each branch before every self-attention layer, as the paper's section 2.2 says
  (cross-attention layers mix the two already-modulated streams). The spectral stream after
  every layer is returned for the localization head.
* Decoders mirror the encoders (1x1 conv + GLU, ConvTranspose, GELU but on the last) with the
  encoder outputs added as skips; the spectral decoder's output goes through the inverse STFT
  and the two waveforms are summed.

Direct prediction, not masking: like HTDemucs' complex-as-channels mode, the spectral branch
predicts the target's complex STFT. A real mask would keep the mixture's phase in every bin,
and the binaural target's inter-aural phase differs from the mixture's where an interferer
dominates; a direct estimate can correct it, and the time branch must predict directly anyway.

The mixture is standardised per item (mean and std over ears and time) and the output scaled
back by the std, so the network sees unit-scale input whatever the recording level.

Not included from HTDemucs: the residual DConv branches inside each layer, the frequency
embedding, LayerScale and the time-shift augmentation (training recipe, not architecture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lusebench.errors import LusebenchError


@dataclass(frozen=True)
class BackboneConfig:
    """Hybrid backbone sizes; defaults are the paper preset (16 kHz, HTDemucs settings).

    Attributes:
        audio_channels: input and output channels (2 binaural, 1 for T-HTDemucs).
        channels: channels of the first encoder layer.
        growth: channel multiplier per layer.
        depth: encoder (and decoder) layers per branch.
        kernel_size: convolution kernel (time samples, or frequency bins in the spectral branch).
        stride: convolution stride; ``nfft/2`` must divide by ``stride**depth``.
        nfft: STFT size of the spectral branch.
        hop_length: STFT hop in samples.
        transformer_dim: width of the cross-domain transformer.
        transformer_layers: layers per branch; even indices self-attention, odd cross-attention.
        transformer_heads: attention heads.
        transformer_ffn: feed-forward hidden size.
        dropout: dropout in the transformer.
        spectral_output: ``direct`` (HTDemucs' complex-as-channels: the spectral decoder predicts
            the target's STFT; paper preset) or ``mask`` (it predicts a complex ratio mask that
            multiplies the mixture's STFT, which can still correct the phase per bin; the small
            preset, see docs/small-preset.md).
    """

    audio_channels: int = 2
    channels: int = 48
    growth: int = 2
    depth: int = 4
    kernel_size: int = 8
    stride: int = 4
    nfft: int = 4096
    hop_length: int = 1024
    transformer_dim: int = 512
    transformer_layers: int = 5
    transformer_heads: int = 8
    transformer_ffn: int = 2048
    dropout: float = 0.0
    spectral_output: Literal["direct", "mask"] = "direct"

    def spectral_rows(self) -> int:
        """Frequency rows left after the spectral encoder (paper: 2048 / 4**4 = 8)."""
        return self.nfft // 2 // self.stride**self.depth

    def spectral_frames(self, num_samples: int) -> int:
        """STFT frames of a centred STFT (paper: 1 + 160000 // 1024 = 157)."""
        return 1 + num_samples // self.hop_length

    def spectral_tokens(self, num_samples: int) -> int:
        """Length of the spectral token sequence (paper: 8 x 157 = 1256)."""
        return self.spectral_rows() * self.spectral_frames(num_samples)


def _sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sinusoidal embedding (N,) -> (N, dim) of integer positions."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angles = positions[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _complex_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bin-wise complex product of two complex-as-channels tensors (B, 2C, F, T), (real, imag) per channel."""
    batch, ch2, bins, frames = a.shape
    ar, ai = a.reshape(batch, ch2 // 2, 2, bins, frames).unbind(2)
    br, bi = b.reshape(batch, ch2 // 2, 2, bins, frames).unbind(2)
    return torch.stack([ar * br - ai * bi, ar * bi + ai * br], dim=2).reshape(batch, ch2, bins, frames)


class FiLM(nn.Module):
    """Feature-wise linear modulation ``x * (1 + gamma) + beta`` from a conditioning vector."""

    def __init__(self, cond_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, N, dim), cond (B, cond_dim) -> (B, N, dim)."""
        gamma, beta = self.proj(cond)[:, None].chunk(2, dim=-1)
        return x * (1 + gamma) + beta


class AttentionLayer(nn.Module):
    """Pre-norm attention + feed-forward; self-attention, or cross-attention when given a memory."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (B, heads, N, d_head)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, dim), memory (B, M, dim) or None -> (B, N, dim)."""
        q_in = self.norm_q(x)
        kv_in = q_in if self.norm_kv is None or memory is None else self.norm_kv(memory)
        k, v = self.kv(kv_in).chunk(2, dim=-1)
        # scaled_dot_product_attention picks the flash/memory-efficient kernel on GPU.
        attended = F.scaled_dot_product_attention(
            self._split(self.q(q_in)),
            self._split(k),
            self._split(v),
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.out(attended.transpose(1, 2).flatten(2))
        return x + self.ff(self.norm_ff(x))


class _EncoderLayer(nn.Module):
    """Strided conv (GELU) then 1x1 conv + GLU; 2-D convs stride along frequency only."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, spectral: bool) -> None:
        super().__init__()
        pad = (kernel - stride) // 2
        if spectral:
            self.conv = nn.Conv2d(cin, cout, (kernel, 1), (stride, 1), (pad, 0))
            self.rewrite = nn.Conv2d(cout, 2 * cout, 1)
        else:
            self.conv = nn.Conv1d(cin, cout, kernel, stride, pad)
            self.rewrite = nn.Conv1d(cout, 2 * cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.rewrite(F.gelu(self.conv(x))), dim=1)


class _DecoderLayer(nn.Module):
    """1x1 conv + GLU then transposed conv; GELU on all but the outermost layer."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, spectral: bool, last: bool) -> None:
        super().__init__()
        pad = (kernel - stride) // 2
        if spectral:
            self.rewrite = nn.Conv2d(cin, 2 * cin, 1)
            self.conv = nn.ConvTranspose2d(cin, cout, (kernel, 1), (stride, 1), (pad, 0))
        else:
            self.rewrite = nn.Conv1d(cin, 2 * cin, 1)
            self.conv = nn.ConvTranspose1d(cin, cout, kernel, stride, pad)
        self.last = last

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.glu(self.rewrite(x + skip), dim=1))
        return x if self.last else F.gelu(x)


@dataclass(frozen=True)
class BackboneOutput:
    """What the backbone returns.

    Attributes:
        waveform: (B, C, T) extracted target, C = ``audio_channels``; None when not decoded.
        spectral_layers: the spectral stream (B, N_spec, transformer_dim) after each transformer layer.
    """

    waveform: torch.Tensor | None
    spectral_layers: tuple[torch.Tensor, ...]


class HybridBackbone(nn.Module):
    """Text-conditioned hybrid time/spectral extractor (HTDemucs style), see the module docstring.

    Args:
        config: layer sizes.
        film_dim: width of the pooled text vector that drives FiLM.
    """

    def __init__(self, config: BackboneConfig, film_dim: int) -> None:
        super().__init__()
        c = config
        if (c.nfft // 2) % c.stride**c.depth:
            raise LusebenchError(
                f"backbone nfft/2 = {c.nfft // 2} must divide by stride**depth = {c.stride**c.depth}"
            )
        if c.transformer_dim % c.transformer_heads:
            raise LusebenchError(
                f"transformer_dim {c.transformer_dim} must divide by transformer_heads {c.transformer_heads}"
            )
        self.config = config
        widths = [c.channels * c.growth**i for i in range(c.depth)]
        spec_in, time_in = 2 * c.audio_channels, c.audio_channels
        self.spec_encoder = nn.ModuleList(
            _EncoderLayer(cin, cout, c.kernel_size, c.stride, True)
            for cin, cout in zip([spec_in, *widths[:-1]], widths)
        )
        self.time_encoder = nn.ModuleList(
            _EncoderLayer(cin, cout, c.kernel_size, c.stride, False)
            for cin, cout in zip([time_in, *widths[:-1]], widths)
        )
        outs = [spec_in, *widths[:-1]][::-1]
        self.spec_decoder = nn.ModuleList(
            _DecoderLayer(cin, cout, c.kernel_size, c.stride, True, i == c.depth - 1)
            for i, (cin, cout) in enumerate(zip(widths[::-1], outs))
        )
        time_outs = [time_in, *widths[:-1]][::-1]
        self.time_decoder = nn.ModuleList(
            _DecoderLayer(cin, cout, c.kernel_size, c.stride, False, i == c.depth - 1)
            for i, (cin, cout) in enumerate(zip(widths[::-1], time_outs))
        )
        d = c.transformer_dim
        self.spec_in, self.spec_out = nn.Linear(widths[-1], d), nn.Linear(d, widths[-1])
        self.time_in, self.time_out = nn.Linear(widths[-1], d), nn.Linear(d, widths[-1])
        self_layers = (c.transformer_layers + 1) // 2  # even indices are self-attention
        self.spec_film = nn.ModuleList(FiLM(film_dim, d) for _ in range(self_layers))
        self.time_film = nn.ModuleList(FiLM(film_dim, d) for _ in range(self_layers))
        self.spec_layers = nn.ModuleList(
            AttentionLayer(d, c.transformer_heads, c.transformer_ffn, c.dropout, cross=i % 2 == 1)
            for i in range(c.transformer_layers)
        )
        self.time_layers = nn.ModuleList(
            AttentionLayer(d, c.transformer_heads, c.transformer_ffn, c.dropout, cross=i % 2 == 1)
            for i in range(c.transformer_layers)
        )
        self.register_buffer("window", torch.hann_window(c.nfft), persistent=False)

    def _stft(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, 2C, nfft/2, frames): complex as channels, Nyquist bin dropped."""
        b, ch, t = x.shape
        spec = torch.stft(
            x.reshape(b * ch, t).float(),
            self.config.nfft,
            self.config.hop_length,
            window=self.window.float(),
            center=True,
            normalized=True,
            return_complex=True,
        )[:, :-1]  # (B*C, nfft/2, frames)
        spec = torch.view_as_real(spec).reshape(b, ch, *spec.shape[1:], 2)
        return spec.permute(0, 1, 4, 2, 3).reshape(b, 2 * ch, *spec.shape[2:4])

    def _istft(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 2C, nfft/2, frames) -> (B, C, length), the Nyquist bin restored as zero."""
        b, ch2, bins, frames = z.shape
        # istft has no bf16 kernel: go back to float32 under autocast.
        z = z.float().reshape(b, ch2 // 2, 2, bins, frames).permute(0, 1, 3, 4, 2).contiguous()
        spec = F.pad(torch.view_as_complex(z), (0, 0, 0, 1)).reshape(b * ch2 // 2, bins + 1, frames)
        wave = torch.istft(
            spec,
            self.config.nfft,
            self.config.hop_length,
            window=self.window.float(),
            center=True,
            normalized=True,
            length=length,
        )
        return wave.reshape(b, ch2 // 2, length)

    def forward(self, mixture: torch.Tensor, film: torch.Tensor, decode: bool = True) -> BackboneOutput:
        """Extracts the text-described source.

        Args:
            mixture: (B, C, T) waveform, C = ``audio_channels``.
            film: (B, film_dim) pooled text vector.
            decode: run the decoders; False returns only the spectral layers (localization only).

        Returns:
            The waveform (B, C, T) in the mixture's scale and the spectral stream after each layer.
        """
        c = self.config
        b, _, length = mixture.shape
        mean = mixture.mean(dim=(1, 2), keepdim=True)
        std = mixture.std(dim=(1, 2), keepdim=True) + 1e-5
        x = (mixture - mean) / std

        spec = mixture_spec = self._stft(x)  # (B, 2C, nfft/2, frames)
        unit = c.stride**c.depth
        padded = math.ceil(length / unit) * unit
        wave = F.pad(x, (0, padded - length))  # (B, C, padded)

        spec_skips, time_skips = [], []
        for spec_layer, time_layer in zip(self.spec_encoder, self.time_encoder):
            spec = spec_layer(spec)
            wave = time_layer(wave)
            spec_skips.append(spec)
            time_skips.append(wave)
        _, width, rows, frames = spec.shape  # (B, width, rows, frames)
        spec_tokens = self.spec_in(spec.flatten(2).transpose(1, 2))  # (B, rows*frames, dim)
        time_tokens = self.time_in(wave.transpose(1, 2))  # (B, T', dim)

        d = c.transformer_dim
        row_pos = _sinusoid(torch.arange(rows, device=x.device), d // 2)
        frame_pos = _sinusoid(torch.arange(frames, device=x.device), d - d // 2)
        spec_pos = torch.cat(
            [row_pos[:, None].expand(rows, frames, -1), frame_pos[None].expand(rows, frames, -1)], dim=-1
        ).reshape(rows * frames, d)
        spec_tokens = spec_tokens + spec_pos.to(spec_tokens.dtype)
        time_tokens = time_tokens + _sinusoid(torch.arange(time_tokens.shape[1], device=x.device), d).to(
            time_tokens.dtype
        )

        spectral_layers = []
        for i, (spec_layer, time_layer) in enumerate(zip(self.spec_layers, self.time_layers)):
            if spec_layer.norm_kv is None:
                spec_tokens = spec_layer(self.spec_film[i // 2](spec_tokens, film))
                time_tokens = time_layer(self.time_film[i // 2](time_tokens, film))
            else:
                # Both branches read the other's input to this layer, so neither waits on the other.
                spec_tokens, time_tokens = spec_layer(spec_tokens, time_tokens), time_layer(time_tokens, spec_tokens)
            spectral_layers.append(spec_tokens)
        if not decode:
            return BackboneOutput(None, tuple(spectral_layers))

        spec = self.spec_out(spec_tokens).transpose(1, 2).reshape(b, width, rows, frames)
        wave = self.time_out(time_tokens).transpose(1, 2)  # (B, width, T')
        for spec_layer, time_layer, spec_skip, time_skip in zip(
            self.spec_decoder, self.time_decoder, spec_skips[::-1], time_skips[::-1]
        ):
            spec = spec_layer(spec, spec_skip)
            wave = time_layer(wave, time_skip)
        if c.spectral_output == "mask":
            spec = _complex_product(spec.float(), mixture_spec)
        out = self._istft(spec, length) + wave[..., :length].float()
        # The mixture's DC offset belongs to no source: rescale only.
        return BackboneOutput(out * std, tuple(spectral_layers))
