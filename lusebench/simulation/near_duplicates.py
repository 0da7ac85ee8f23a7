"""Near-duplicate clips by audio content: copies, re-encodes, trims and pitched versions of one recording.

Game data ships one recording many times: copied into every faction, re-encoded (WAV and Ogg),
cut shorter, or resampled a few semitones up or down for a bigger or smaller creature. A corpus
split by file name would put such copies in train and test alike. Two clips are near-duplicates
here when the way one's band levels move over time, shifted in pitch and stretched in time by
one common factor (a resampled copy moves every frequency by the factor and every event by its
inverse), correlates with a stretch of the other at :data:`THRESHOLD` or more, over at least
:data:`MIN_OVERLAP` of the shorter clip.

The picture is the log energy in bands an eighth of an octave wide (so a pitch shift is a shift
of whole bands) every 20 ms; its frame-to-frame changes are compared, not the levels, because
levels correlate highly between any two noisy sounds of similar colour (a cart and a ship, a
sword and footsteps on grass scored 0.9 and more), while the changes follow one recording's
events. A cheap first pass compares the clips' mean spectra at every band shift and keeps the
pairs within :data:`PREFILTER` cosine; only those are cross-correlated. On debcaps' candidate
pairs, copies and re-encodes score 0.98-1.0; most pairs at 0.8-0.98 are trimmed or pitched copies
or takes cut from one recording; two recordings of one kind (two sword clashes) mostly score
below 0.7. Level-based scores were tried first and rejected: a threshold that kept the copies
also joined a mine cart with a ship fly-by.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import irfft, next_fast_len, rfft

SAMPLE_RATE = 16000
HOP = 320  # 20 ms
N_FFT = 1024
BANDS_PER_OCTAVE = 8
LOWEST_HZ = 110.0
NUM_BANDS = 48  # 110 Hz .. 7 kHz
MAX_SHIFT = 4  # bands: half an octave up or down
THRESHOLD = 0.8
MIN_OVERLAP = 0.8
PREFILTER = 0.9
FLOOR_DB = -80.0
MOTION_FLOOR_DB = -60.0


@dataclass(frozen=True)
class Fingerprint:
    """A clip's band-energy picture: ``bands`` (frames, NUM_BANDS) in dB, the clip's peak at 0 dB."""

    bands: np.ndarray

    @property
    def motion(self) -> np.ndarray:
        """How each band's level changes from frame to frame (dB, floored at MOTION_FLOOR_DB):
        what a recording does over time, without the spectral shape that many unrelated noisy
        sounds share."""
        return np.diff(np.maximum(self.bands, MOTION_FLOOR_DB), axis=0)

    @property
    def profile(self) -> np.ndarray:
        """Mean energy per band, centred and scaled to unit length."""
        mean = self.bands.mean(axis=0)
        mean = mean - mean.mean()
        norm = np.linalg.norm(mean)
        return mean / norm if norm > 0 else mean


def _band_edges() -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last FFT bin of each eighth-octave band (at least one bin each)."""
    freqs = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
    edges = LOWEST_HZ * 2.0 ** (np.arange(NUM_BANDS + 1) / BANDS_PER_OCTAVE)
    low = np.searchsorted(freqs, edges[:-1])
    high = np.maximum(np.searchsorted(freqs, edges[1:]), low + 1)  # the lowest bands are narrower than a bin
    return low, high


_LOW, _HIGH = _band_edges()
_WINDOW = np.hanning(N_FFT)


def fingerprint(audio: np.ndarray) -> Fingerprint:
    """The band-energy picture of a mono 16 kHz clip."""
    audio = np.asarray(audio, dtype=np.float64)
    audio = np.pad(audio, (0, max(N_FFT - len(audio), 0) + (-max(len(audio) - N_FFT, 0)) % HOP))
    frames = sliding_window_view(audio, N_FFT)[::HOP] * _WINDOW  # (frames, N_FFT)
    spectrum = np.abs(rfft(frames, axis=1)) ** 2
    cumulative = np.concatenate([np.zeros((len(spectrum), 1)), np.cumsum(spectrum, axis=1)], axis=1)
    power = cumulative[:, _HIGH] - cumulative[:, _LOW]  # (frames, bands)
    db = 10 * np.log10(np.maximum(power, 1e-12))
    db = np.maximum(db - db.max(), FLOOR_DB)
    return Fingerprint(bands=np.ascontiguousarray(db, dtype=np.float32))


def _stretch(bands: np.ndarray, factor: float) -> np.ndarray:
    """Resample the frame axis by ``factor`` (linear interpolation)."""
    n = max(int(round(len(bands) * factor)), 1)
    if n == len(bands):
        return bands
    src = np.linspace(0, len(bands) - 1, n)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, len(bands) - 1)
    frac = (src - low)[:, None]
    return bands[low] * (1 - frac) + bands[high] * frac


def _shift(bands: np.ndarray, shift: int, fill: float = FLOOR_DB) -> np.ndarray:
    """Move energy ``shift`` bands up (positive) or down along the last axis, filling with ``fill``."""
    if shift == 0:
        return bands
    out = np.full_like(bands, fill)
    if shift > 0:
        out[..., shift:] = bands[..., :-shift]
    else:
        out[..., :shift] = bands[..., -shift:]
    return out


def _best_slide(short: np.ndarray, long: np.ndarray) -> float:
    """Highest Pearson correlation of ``short`` against any stretch of ``long`` it overlaps by MIN_OVERLAP.

    Every lag at once: the products summed over the overlap come from one FFT cross-correlation
    (summed over bands in the frequency domain), the overlap's sums and sums of squares from
    cumulative sums over frames.
    """
    m, n, bands = len(short), len(long), short.shape[1]
    size = next_fast_len(n + m - 1)
    cross = irfft((rfft(long, size, axis=0) * np.conj(rfft(short, size, axis=0))).sum(axis=1), size)
    need = int(np.ceil(MIN_OVERLAP * m))
    lags = np.arange(-(m - need), n - need + 1)  # start of short within long
    s0 = np.maximum(-lags, 0)
    s1 = np.minimum(n - lags, m)
    count = (s1 - s0) * bands

    def overlap_sums(x: np.ndarray, start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = np.concatenate([[0.0], np.cumsum(x.sum(axis=1))])
        squares = np.concatenate([[0.0], np.cumsum((x * x).sum(axis=1))])
        return total[stop] - total[start], squares[stop] - squares[start]

    sum_a, sq_a = overlap_sums(short, s0, s1)
    sum_b, sq_b = overlap_sums(long, s0 + lags, s1 + lags)
    prod = cross[lags % size]
    cov = prod - sum_a * sum_b / count
    var = np.maximum(sq_a - sum_a**2 / count, 0) * np.maximum(sq_b - sum_b**2 / count, 0)
    corr = np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    return float(corr.max())


def similarity(a: Fingerprint, b: Fingerprint, shifts: range | list[int] = range(-MAX_SHIFT, MAX_SHIFT + 1)) -> float:
    """Best correlation of ``b``, pitch-shifted by each of ``shifts`` bands with the matching time stretch, against ``a``."""
    best = -1.0
    fixed, motion_b = a.motion.astype(np.float64), b.motion  # once, not per shift (a property computes them)
    for shift in shifts:
        moved = _shift(_stretch(motion_b, 2.0 ** (-shift / BANDS_PER_OCTAVE)), shift, fill=0.0).astype(np.float64)
        short, long = (moved, fixed) if len(moved) <= len(fixed) else (fixed, moved)
        best = max(best, _best_slide(short, long))
    return best


def candidate_pairs(prints: list[Fingerprint], threshold: float = PREFILTER) -> list[tuple[int, int, int]]:
    """Pairs (i, j, shift) with i < j whose mean spectra agree within ``threshold`` cosine at some
    band shift of j's (the best one)."""
    profiles = np.stack([p.profile for p in prints])  # (n, bands)
    best = np.full((len(prints), len(prints)), -np.inf)
    best_shift = np.zeros((len(prints), len(prints)), dtype=int)
    for shift in range(-MAX_SHIFT, MAX_SHIFT + 1):
        moved = _shift(profiles, shift, fill=0.0)
        cos = profiles @ moved.T / np.maximum(
            np.linalg.norm(profiles, axis=1)[:, None] * np.linalg.norm(moved, axis=1)[None], 1e-12
        )
        better = cos > best
        best = np.where(better, cos, best)
        best_shift = np.where(better, shift, best_shift)
    i, j = np.nonzero(np.triu(best >= threshold, k=1))
    return [(int(x), int(y), int(best_shift[x, y])) for x, y in zip(i, j)]


def _order_key(print_: Fingerprint) -> tuple[int, bytes]:
    return len(print_.bands), hashlib.sha256(print_.bands.tobytes()).digest()


def near_duplicate_pairs(prints: list[Fingerprint]) -> list[tuple[int, int, float]]:
    """Every pair (i, j, similarity) with i < j whose similarity reaches THRESHOLD.

    The band shift tried for a pair is the one its mean spectra agreed best at, and its neighbours.
    The shorter clip (the likelier copy) is the one shifted and stretched, so that a pair scores the
    same whatever order the clips are listed in.
    """
    found = []
    for i, j, _ in candidate_pairs(prints):
        fixed, moved = prints[i], prints[j]
        if _order_key(moved) > _order_key(fixed):
            fixed, moved = moved, fixed
        (_, _, shift), = candidate_pairs([fixed, moved], threshold=-np.inf)
        shifts = [s for s in (shift - 1, shift, shift + 1) if -MAX_SHIFT <= s <= MAX_SHIFT]
        score = similarity(fixed, moved, shifts)
        if score >= THRESHOLD:
            found.append((i, j, score))
    return found
