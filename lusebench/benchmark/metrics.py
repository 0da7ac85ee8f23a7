"""Per-item metrics: pure functions over numpy arrays, and a registry of what each result key means.

Signals are ``(..., channels, time)`` float arrays; ratios are computed per channel (per ear) in
float64 and returned as ``(..., channels)``. The evaluator averages the two ears of an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import fft, linalg

from lusebench.schema import Task

# A perfect estimate would score +inf dB and make every mean infinite; capping at 100 dB keeps the
# oracle finite while no real system comes near it.
MAX_DB = 100.0
DOA_TOLERANCE_DEG = 5.0
# An error past 20 deg whose mirror image is within 20 deg is a front-back confusion: the tolerance
# of DCASE's location-aware SELD scores, wide enough that a localizer's own spread (the MAE of a good
# binaural model is 5-15 deg) is not taken for a confusion.
FRONT_BACK_TOLERANCE_DEG = 20.0
DOA_BINS = 360
BSS_FILTER_LENGTH = 512
# The ITD of a human head stays under ~0.7 ms; searching +-1 ms keeps GCC-PHAT off spurious peaks.
MAX_ITD_S = 1e-3
_TINY = 1e-20
# The output level on an absent-target item is floored at -60 dB re the mixture: far below that an
# output is inaudible beside the mixture, and an unfloored log would let the mean reward the
# difference between -80 and -300 dB (a dither's worth of noise against exact zeros).
ABSENT_FLOOR_DB = -60.0
_NORM_FLOOR = 1e-6


@dataclass(frozen=True)
class MetricInfo:
    """What an aggregated result key means (read by the leaderboard and the figures).

    ``low`` and ``high`` bound every value the metric can take (None: unbounded), so its confidence
    interval is kept inside them; a ``proportion`` is a share of items in percent, whose interval
    is Wilson's.
    """

    key: str
    label: str
    unit: str
    higher_is_better: bool
    task: Task | Literal["both"]
    low: float | None = None
    high: float | None = None
    proportion: bool = False


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo("si_snr_db", "SI-SNR", "dB", True, "extraction"),
        MetricInfo("si_snri_db", "SI-SNRi", "dB", True, "extraction"),
        MetricInfo("sdr_db", "SDR", "dB", True, "extraction"),
        MetricInfo("sdri_db", "SDRi", "dB", True, "extraction"),
        MetricInfo("bss_sdr_db", "BSS-eval SDR", "dB", True, "extraction"),
        MetricInfo("bss_sdri_db", "BSS-eval SDRi", "dB", True, "extraction"),
        MetricInfo("itd_error_us", "ITD error", "us", False, "extraction", low=0.0),
        MetricInfo("ild_error_db", "ILD error", "dB", False, "extraction", low=0.0),
        MetricInfo("level_error_db", "Level error", "dB", False, "extraction", low=0.0),
        MetricInfo("doa_accuracy_pct", "DoA accuracy (+-5 deg)", "%", True, "localization", 0.0, 100.0, True),
        MetricInfo("doa_mae_deg", "DoA MAE", "deg", False, "localization", low=0.0, high=180.0),
        MetricInfo("doa_mae_folded_deg", "DoA MAE, front-back folded", "deg", False, "localization", 0.0, 90.0),
        MetricInfo("doa_front_back_pct", "Front-back confusions", "%", False, "localization", 0.0, 100.0, True),
        MetricInfo("doa_mae_resolved_deg", "DoA MAE, confusions resolved", "deg", False, "localization", 0.0, 180.0),
        MetricInfo("joint_success_pct", "Joint success", "%", True, "both", 0.0, 100.0, True),
        MetricInfo("si_snri_located_db", "SI-SNRi, located items", "dB", True, "both"),
        MetricInfo("si_snri_mislocated_db", "SI-SNRi, mislocated items", "dB", True, "both"),
        MetricInfo("absent_level_db", "Output level on absent items", "dB", False, "extraction", ABSENT_FLOOR_DB, MAX_DB),
        MetricInfo("absent_detected_pct", "Absent targets detected", "%", True, "localization", 0.0, 100.0, True),
        MetricInfo("false_absent_pct", "False absent", "%", False, "localization", 0.0, 100.0, True),
    )
}


def _ratio_db(signal_energy: np.ndarray, error_energy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10.0 * np.log10(signal_energy / error_energy)
    return np.clip(np.nan_to_num(ratio, nan=-MAX_DB, posinf=MAX_DB, neginf=-MAX_DB), -MAX_DB, MAX_DB)


def si_snr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale-invariant SNR (Le Roux et al., 2019), both signals made zero-mean.

    Args:
        estimate: (..., time).
        reference: (..., time), broadcastable with ``estimate``.

    Returns:
        (...) in dB, capped to [-MAX_DB, MAX_DB].
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    estimate = estimate - estimate.mean(axis=-1, keepdims=True)
    reference = reference - reference.mean(axis=-1, keepdims=True)
    scale = np.sum(estimate * reference, axis=-1, keepdims=True) / (
        np.sum(reference**2, axis=-1, keepdims=True) + _TINY
    )
    target = scale * reference
    return _ratio_db(np.sum(target**2, axis=-1), np.sum((estimate - target) ** 2, axis=-1))


def sdr_db(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Plain SDR, ``10 log10(|s|^2 / |s - s_hat|^2)`` (the SDR of AudioSep and DCASE LASS).

    Args:
        estimate: (..., time).
        reference: (..., time), broadcastable with ``estimate``.

    Returns:
        (...) in dB, capped to [-MAX_DB, MAX_DB].
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return _ratio_db(np.sum(reference**2, axis=-1), np.sum((reference - estimate) ** 2, axis=-1))


def bss_sdr_db(estimate: np.ndarray, reference: np.ndarray, filter_length: int = BSS_FILTER_LENGTH) -> np.ndarray:
    """BSS-eval SDR per channel: bss_eval_sources' SDR with one reference, never permuting channels.

    The estimate is projected on the span of ``filter_length`` delayed copies of its reference (the
    allowed distortion filter); the SDR is the energy ratio of that projection to the residual. It
    equals ``fast_bss_eval.sdr`` (same normalisation, no zero-mean, no diagonal loading) and
    ``mir_eval.separation.bss_eval_sources(compute_permutation=False)`` on each channel alone.
    Each channel is scored as its own one-source problem: a permuting call over both ears would
    silently swap a left-right mirrored estimate back and hide the spatial error.

    Args:
        estimate: (..., channels, time).
        reference: (..., channels, time), broadcastable with ``estimate`` and of the same length.
            Its spectrum and autocorrelation are computed once for every estimate broadcast
            against it (an item's estimate and mixture share their target's).
        filter_length: taps of the allowed distortion filter (512, as BSS-eval v3).

    Returns:
        (..., channels) in dB, capped to [-MAX_DB, MAX_DB]; a silent reference channel scores -MAX_DB.

    Raises:
        ValueError: lengths differ, ``filter_length < 1``, or a signal is not finite.
    """
    if filter_length < 1:
        raise ValueError(f"filter_length must be at least 1, got {filter_length}")
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    num_samples = reference.shape[-1]
    if estimate.shape[-1] != num_samples:
        raise ValueError(f"estimate and reference lengths differ: {estimate.shape} vs {reference.shape}")
    # Lags 0..L-1 of the linear (not circular) correlations need an FFT of at least N + L - 1 points.
    # fast_bss_eval rounds 2N - 1 up to a power of two: for 10 s at 16 kHz that is 262,144 points
    # against 162,000 here, and a 2,3,5-smooth length is as fast per point, so each FFT costs half.
    n_fft = fft.next_fast_len(num_samples + filter_length - 1, real=True)
    reference_spectrum = fft.rfft(reference, n=n_fft, axis=-1)  # (..., channels, freq), once per reference
    power = reference_spectrum.real**2 + reference_spectrum.imag**2
    autocorrelation = fft.irfft(power, n=n_fft, axis=-1)[..., :filter_length]  # lag 0: the reference's energy
    cross_spectrum = np.conj(reference_spectrum) * fft.rfft(estimate, n=n_fft, axis=-1)
    correlation = fft.irfft(cross_spectrum, n=n_fft, axis=-1)[..., :filter_length]  # (..., channels, taps)
    # Normalising here rather than the signals saves a pass over them: the projection does not depend
    # on the reference's scale, and a unit diagonal keeps the solve well-scaled. A silent reference has
    # zero correlations: the unit diagonal alone makes its system regular, with a zero projection.
    reference_energy = autocorrelation[..., :1]
    reference_energy = np.where(reference_energy > 0.0, reference_energy, 1.0)
    autocorrelation = autocorrelation / reference_energy
    autocorrelation[..., 0] = 1.0
    autocorrelation = np.broadcast_to(autocorrelation, correlation.shape)
    correlation = correlation / np.sqrt(reference_energy)
    # fast_bss_eval's floor on the estimate's norm: a near-silent estimate scores exactly as there.
    estimate_energy = np.maximum(np.einsum("...t,...t->...", estimate, estimate), _NORM_FLOOR**2)
    coherence = np.empty(correlation.shape[:-1])  # (..., channels): projected energy / estimate energy
    for index in np.ndindex(coherence.shape):
        # The normal equations' matrix is the Gram matrix of the reference's shifts, a symmetric
        # Toeplitz matrix: Levinson-Durbin solves it in O(L^2) instead of the O(L^3) of a dense solve.
        distortion_filter = linalg.solve_toeplitz(autocorrelation[index], correlation[index])
        coherence[index] = correlation[index] @ distortion_filter
    coherence /= np.broadcast_to(estimate_energy, coherence.shape)
    coherence = np.clip(coherence, 0.0, 1.0)  # rounding can step outside; the log needs [0, 1]
    return _ratio_db(coherence, 1.0 - coherence)


def circular_error_deg(predicted_deg: np.ndarray, true_deg: np.ndarray) -> np.ndarray:
    """Smallest angle between two azimuths, in [0, 180] degrees (359 vs 1 is 2)."""
    difference = np.asarray(predicted_deg, dtype=np.float64) - np.asarray(true_deg, dtype=np.float64)
    return np.abs((difference + 180.0) % 360.0 - 180.0)


def folded_error_deg(predicted_deg: np.ndarray, true_deg: np.ndarray) -> np.ndarray:
    """Circular error after forgiving a front-back confusion, in [0, 180] degrees.

    A binaural listener confuses azimuth ``a`` with its mirror ``180 - a`` across the interaural
    axis (both give the same ITD); the error is the smaller of the two.
    """
    predicted_deg = np.asarray(predicted_deg, dtype=np.float64)
    return np.minimum(circular_error_deg(predicted_deg, true_deg), circular_error_deg(180.0 - predicted_deg, true_deg))


def wrap_azimuth_deg(azimuth_deg: np.ndarray) -> np.ndarray:
    """Wrap azimuths into [0, 360) degrees."""
    wrapped = np.mod(np.asarray(azimuth_deg, dtype=np.float64), 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)  # mod of a tiny negative rounds up to 360


def azimuth_from_likelihood(likelihood: np.ndarray) -> np.ndarray:
    """Azimuth of the most likely bin; bin ``i`` is centred on ``i * 360 / bins`` degrees.

    Args:
        likelihood: (..., bins).

    Returns:
        (...) azimuths in [0, 360) degrees.
    """
    likelihood = np.asarray(likelihood)
    return np.argmax(likelihood, axis=-1) * (360.0 / likelihood.shape[-1])


def gcc_phat_itd_s(signal: np.ndarray, sample_rate: int, max_itd_s: float = MAX_ITD_S) -> np.ndarray:
    """Interaural time difference by GCC-PHAT with parabolic peak interpolation.

    Args:
        signal: (..., 2, time), left then right.
        sample_rate: Hz.
        max_itd_s: largest |ITD| searched.

    Returns:
        (...) ITD in seconds, positive when the left ear leads.
    """
    signal = np.asarray(signal, dtype=np.float64)
    max_lag = int(np.ceil(max_itd_s * sample_rate))
    n_fft = fft.next_fast_len(signal.shape[-1] + max_lag + 1, real=True)
    spectra = fft.rfft(signal, n=n_fft, axis=-1)  # (..., 2, freq)
    cross = np.conj(spectra[..., 0, :]) * spectra[..., 1, :]  # peaks at +d when right lags by d
    correlation = fft.irfft(cross / (np.abs(cross) + _TINY), n=n_fft, axis=-1)
    window = np.concatenate([correlation[..., -max_lag:], correlation[..., : max_lag + 1]], axis=-1)  # lags -L..L
    peak = np.argmax(window, axis=-1)
    inner = np.clip(peak, 1, window.shape[-1] - 2)
    left, centre, right = (np.take_along_axis(window, (inner + k)[..., None], axis=-1)[..., 0] for k in (-1, 0, 1))
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.where(peak == inner, np.clip(offset, -0.5, 0.5), 0.0)
    return (peak + offset - max_lag) / sample_rate


def ild_db(signal: np.ndarray) -> np.ndarray:
    """Broadband interaural level difference, left minus right.

    Args:
        signal: (..., 2, time).

    Returns:
        (...) in dB, capped to [-MAX_DB, MAX_DB].
    """
    energy = np.sum(np.asarray(signal, dtype=np.float64) ** 2, axis=-1)  # (..., 2)
    return _ratio_db(energy[..., 0], energy[..., 1])


def front_back_confused(
    predicted_deg: np.ndarray, true_deg: np.ndarray, tolerance_deg: float = FRONT_BACK_TOLERANCE_DEG
) -> np.ndarray:
    """Whether each estimate is a front-back confusion: off by more than ``tolerance_deg``, while its
    mirror about the interaural axis (``180 - a``) lies within ``tolerance_deg`` of the truth.

    Args:
        predicted_deg, true_deg: (...) azimuths in degrees, broadcastable.
        tolerance_deg: the error within which an azimuth counts as right.

    Returns:
        (...) bool.
    """
    predicted_deg = np.asarray(predicted_deg, dtype=np.float64)
    mirrored = circular_error_deg(180.0 - predicted_deg, true_deg)
    return (circular_error_deg(predicted_deg, true_deg) > tolerance_deg) & (mirrored <= tolerance_deg)


def resolved_error_deg(
    predicted_deg: np.ndarray, true_deg: np.ndarray, tolerance_deg: float = FRONT_BACK_TOLERANCE_DEG
) -> np.ndarray:
    """Circular error after resolving front-back confusions, in [0, 180] degrees.

    A confused estimate (:func:`front_back_confused`) is scored by its mirror image; every other
    estimate keeps its own error. Unlike :func:`folded_error_deg`, which mirrors whenever that is
    closer, an estimate 60 deg off stays 60 deg off here: only true confusions are forgiven, as
    localization studies report the error "after resolving reversals".
    """
    predicted_deg = np.asarray(predicted_deg, dtype=np.float64)
    error = circular_error_deg(predicted_deg, true_deg)
    mirrored = circular_error_deg(180.0 - predicted_deg, true_deg)
    return np.where(front_back_confused(predicted_deg, true_deg, tolerance_deg), mirrored, error)


def joint_found(
    si_snri_db: np.ndarray, doa_error_deg: np.ndarray, min_si_snri_db: float, max_doa_error_deg: float
) -> np.ndarray:
    """Whether each item's target was both extracted and located: SI-SNRi at least ``min_si_snri_db``
    and DoA error at most ``max_doa_error_deg``.

    Args:
        si_snri_db, doa_error_deg: (...) per item, broadcastable.

    Returns:
        (...) bool; False where either value is NaN.
    """
    si_snri_db = np.asarray(si_snri_db, dtype=np.float64)
    doa_error_deg = np.asarray(doa_error_deg, dtype=np.float64)
    return (si_snri_db >= min_si_snri_db) & (doa_error_deg <= max_doa_error_deg)


def level_db(signal: np.ndarray, reference: np.ndarray, floor_db: float = ABSENT_FLOOR_DB) -> np.ndarray:
    """Energy of ``signal`` relative to ``reference`` over all channels and samples, in dB.

    Args:
        signal: (..., channels, time).
        reference: (..., channels, time), broadcastable.
        floor_db: the lowest value returned (an all-zero signal scores it exactly).

    Returns:
        (...) in dB, in [floor_db, MAX_DB].
    """
    energy = np.sum(np.asarray(signal, dtype=np.float64) ** 2, axis=(-2, -1))
    reference_energy = np.sum(np.asarray(reference, dtype=np.float64) ** 2, axis=(-2, -1))
    return np.maximum(_ratio_db(energy, reference_energy), floor_db)
