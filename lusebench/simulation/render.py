"""Binaural rendering: every source through its HRIR pair, both ears, one batched FFT pass.

The convolution is uniformly partitioned overlap-add: the signals are cut into blocks of
``block`` samples, each block and the HRIRs are transformed with an FFT of ``nfft`` =
``next_fast_len`` >= 4096 points, multiplied, and the blocks overlap-added. Against one FFT
of the whole signal this keeps the HRIR spectra small (2,049 bins instead of ~81,000 for 10 s),
so the spectra of every measured direction stay cached and interpolating a new direction costs
microseconds, and it is faster here (9.5 ms vs 12.8 ms for three 10 s sources).

The FFTs are scipy.fft's, not torch's: simulation does not need torch, whose import alone cost
~2 s of every ``simulate`` start (perf/cli_startup.py), at about the same CPU per mixture
(perf/render_cost.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from lusebench.simulation.hrtf import HrtfSet

# Room left after the HRIR for the fractional re-delay of interpolated directions (samples).
_DELAY_MARGIN = 8


def _fft_size(filter_length: int) -> int:
    """The overlap-add FFT size for filters of ``filter_length`` taps: at least 4,096 points and
    four filter lengths, so that each block holds at least three filter lengths of signal."""
    return scipy.fft.next_fast_len(max(4096, 4 * filter_length), real=True)


def _long_filter_fft_size(filter_length: int, num_samples: int) -> int:
    """The overlap-add FFT size with the fewest operations for sources through filters of
    ``filter_length`` taps (BRIRs: 5,000-20,000 taps).

    Per source it counts 2 filter transforms, one transform of each signal block and 2 inverse
    transforms of each block, each ~n log n, over sizes 2^k and 3 * 2^k (the fastest of the
    FFT library) from two filter lengths to one block for the whole signal. For a 16,000-tap BRIR
    and 10 s at 16 kHz it picks 49,152 points (5 blocks) over :func:`_fft_size`'s 65,536 (4).
    """
    def cost(nfft: int) -> float:
        blocks = -(-num_samples // (nfft - filter_length + 1))
        return (2 + 3 * blocks) * nfft * math.log2(nfft)

    top = num_samples + filter_length - 1
    candidates = [size for k in range(12, 1 + math.ceil(math.log2(top)))
                  for size in (1 << k, 3 << (k - 1)) if 2 * filter_length <= size < 2 * top]
    return min(candidates or [_fft_size(filter_length)], key=cost)


@dataclass(frozen=True)
class RenderedMixture:
    """The signals of one mixture, all of shape (..., time) float32.

    Attributes:
        mixture: (2, N) sum of every source's binaural image.
        target: (2, N) the target's binaural image, the extraction reference.
        dry_target: (N,) the target before the HRTF, after its gain.
        interferers: (S-1, 2, N) each interferer's binaural image.
    """

    mixture: np.ndarray
    target: np.ndarray
    dry_target: np.ndarray
    interferers: np.ndarray


class Renderer:
    """Renders dry sources at given azimuths into binaural images.

    Args:
        hrtf: the HRTF set, already at the rendering sample rate.
        interpolation: ``linear-aligned`` (onset-aligned linear interpolation between the two
            measured neighbours) or ``nearest`` (the closest measured direction).
    """

    def __init__(self, hrtf: HrtfSet, interpolation: str = "linear-aligned") -> None:
        if interpolation not in ("linear-aligned", "nearest"):
            raise ValueError(f"unknown interpolation {interpolation!r}")
        self.hrtf = hrtf
        self.interpolation = interpolation
        self.filter_length = hrtf.num_taps + _DELAY_MARGIN
        self.nfft = _fft_size(self.filter_length)
        self.block = self.nfft - self.filter_length + 1
        num_bins = self.nfft // 2 + 1
        # Cycles per sample of each bin, for delays expressed in samples.
        self._frequencies = np.arange(num_bins, dtype=np.float64) / self.nfft
        measured = scipy.fft.rfft(hrtf.hrirs, n=self.nfft)  # (M, 2, F) complex128
        self._measured = measured.astype(np.complex64)
        # Remove each HRIR's own onset beyond the earliest one, so neighbours line up in time.
        delays = np.asarray(hrtf.onsets - hrtf.onsets.min(), dtype=np.float64)  # (M, 2) samples
        self._delays = delays
        self._aligned = measured * np.exp(2j * np.pi * self._frequencies * delays[..., None])

    def spectra(self, azimuths_deg: np.ndarray) -> np.ndarray:
        """HRIR spectra (S, 2, F) complex64 for each azimuth, FIR of ``filter_length`` taps."""
        if self.interpolation == "nearest":
            index = [self.hrtf.nearest(float(az)) for az in azimuths_deg]
            return self._measured[index]
        rows = [self.hrtf.neighbours(float(az)) for az in azimuths_deg]
        lower = np.array([r[0] for r in rows], dtype=np.int64)
        upper = np.array([r[1] for r in rows], dtype=np.int64)
        weight = np.array([r[2] for r in rows], dtype=np.float64)[:, None, None]  # (S, 1, 1)
        aligned = (1 - weight) * self._aligned[lower] + weight * self._aligned[upper]  # (S, 2, F)
        delay = (1 - weight[..., 0]) * self._delays[lower] + weight[..., 0] * self._delays[upper]  # (S, 2)
        spectra = aligned * np.exp(-2j * np.pi * self._frequencies * delay[..., None])
        # Back to a causal FIR of filter_length taps, so the block convolution is exact.
        impulse = scipy.fft.irfft(spectra, n=self.nfft)[..., : self.filter_length]
        return scipy.fft.rfft(impulse, n=self.nfft).astype(np.complex64)

    def hrirs(self, azimuths_deg: np.ndarray) -> np.ndarray:
        """Time-domain HRIRs (S, 2, filter_length) float64 that :meth:`render` applies."""
        spectra = self.spectra(azimuths_deg).astype(np.complex128)
        return scipy.fft.irfft(spectra, n=self.nfft)[..., : self.filter_length]

    def render(self, dry: np.ndarray, azimuths_deg: np.ndarray) -> RenderedMixture:
        """Render dry sources through the HRIRs of their azimuths, target first.

        Args:
            dry: (S, N) float32 dry sources with their gains applied, target first.
            azimuths_deg: (S,) azimuth of each source.

        Returns:
            The mixture, the target's image, the dry target and the interferers' images,
            each cut to N samples.
        """
        return _overlap_add(dry, self.spectra(np.asarray(azimuths_deg)), self.block, self.nfft)

    def render_filters(self, dry: np.ndarray, filters: np.ndarray) -> RenderedMixture:
        """Render dry sources through given FIR pairs (e.g. BRIRs of ~15,000 taps), target first.

        The same overlap-add as :meth:`render`, with the FFT size chosen for the filters' length
        the same way.

        Args:
            dry: (S, N) float32 dry sources with their gains applied, target first.
            filters: (S, 2, L) impulse responses (left, right) of each source.

        Returns:
            As :meth:`render`.
        """
        if filters.ndim != 3 or filters.shape[:2] != (dry.shape[0], 2):
            raise ValueError(f"filters must have shape ({dry.shape[0]}, 2, L), got {filters.shape}")
        length = filters.shape[-1]
        nfft = _long_filter_fft_size(length, dry.shape[-1])
        # float32 like the rest of the path: the filters are float32 already (bank BRIRs), and a
        # float64 transform cost ~2x for a difference of ~1e-7 of the peak.
        spectra = scipy.fft.rfft(np.asarray(filters, dtype=np.float32), n=nfft)
        return _overlap_add(dry, spectra, nfft - length + 1, nfft)


def _overlap_add(dry: np.ndarray, spectra: np.ndarray, block: int, nfft: int) -> RenderedMixture:
    """Uniformly partitioned overlap-add of (S, N) sources with (S, 2, F) complex64 filter spectra.

    The filters must be at most ``nfft - block + 1`` taps long, so each block's tail spills
    into the next block only.
    """
    num_sources, num_samples = dry.shape
    num_blocks = -(-num_samples // block)
    whole = num_samples // block
    signals = np.asarray(dry, dtype=np.float32)
    # The blocks zero-padded to nfft in one copy, instead of padding the signal and then each block.
    padded = np.zeros((num_sources, num_blocks, nfft), dtype=np.float32)
    padded[:, :whole, :block] = signals[:, : whole * block].reshape(num_sources, whole, block)
    rest = num_samples - whole * block
    padded[:, whole:, :rest] = signals[:, whole * block :].reshape(num_sources, num_blocks - whole, rest)
    blocks = scipy.fft.rfft(padded, overwrite_x=True)  # (S, B, F) complex64
    products = blocks[:, None] * spectra[:, :, None]  # (S, 2, B, F)
    pieces = scipy.fft.irfft(products, n=nfft, overwrite_x=True)  # (S, 2, B, nfft) float32
    out = np.empty((num_sources, 2, num_blocks * block), dtype=np.float32)
    heads = out.reshape(num_sources, 2, num_blocks, block)
    heads[...] = pieces[..., :block]
    tail = nfft - block  # = filter_length - 1 <= block, spills into the next block only
    heads[:, :, 1:, :tail] += pieces[:, :, :-1, block:]
    images = out[..., :num_samples]  # (S, 2, N)
    return RenderedMixture(
        mixture=images.sum(axis=0),
        target=images[0],
        dry_target=np.asarray(dry[0], dtype=np.float32),
        interferers=images[1:],
    )
