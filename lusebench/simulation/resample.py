"""Polyphase resampling: scipy.signal.resample_poly's filter and output, without scipy.signal.

Importing scipy.signal costs about a second (it imports scipy.stats, scipy.interpolate, ...),
and every ``simulate`` resamples its HRTF, so that second was paid before any work started. This
computes the same thing, up to float rounding (tests/simulation/test_resample.py): the input
upsampled by ``up`` with zeros, through a Kaiser-windowed (beta 5) sinc low-pass of
``20 * max(up, down) + 1`` taps, ``up`` times its gain, one sample in ``down`` kept, delayed so
that output sample ``i`` sits at input time ``i * down / up``.
"""

from __future__ import annotations

import math

import numpy as np


def _lowpass(up: int, down: int) -> tuple[np.ndarray, int]:
    """resample_poly's filter (firwin with a Kaiser window, beta 5, unit DC gain, times ``up``)
    and its half length."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    cutoff = 1.0 / max_rate  # of Nyquist
    m = np.arange(2 * half_len + 1) - half_len
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(2 * half_len + 1, 5.0)
    return h / h.sum() * up, half_len


def resample_poly(x: np.ndarray, up: int, down: int, axis: int = -1) -> np.ndarray:
    """``x`` (..., N) resampled by ``up / down`` along ``axis``, float64, ``ceil(N * up / down)``
    samples: scipy.signal.resample_poly(x, up, down, axis) with its default window and padding."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    gcd = math.gcd(up, down)
    up, down = up // gcd, down // gcd
    if up == down == 1:
        return np.moveaxis(x.copy(), -1, axis)
    n_in = x.shape[-1]
    n_out = -(-n_in * up // down)
    h, half_len = _lowpass(up, down)
    # Output i is the upsampled signal filtered at time t_i = i * down + half_len: the inputs j with
    # 0 <= t_i - j * up < len(h), weighted by h[t_i - j * up]. Outputs i and i + up share their
    # weights (phase t_i mod up), so each phase is one gather and one matrix product.
    taps = -(-len(h) // up)  # inputs that one output sees, at most
    padded = np.concatenate([np.zeros(x.shape[:-1] + (taps,)), x, np.zeros(x.shape[:-1] + (taps,))], axis=-1)
    # windows[..., s, k] = padded[..., s + k]: a view, no copy.
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps, axis=-1)
    y = np.empty(x.shape[:-1] + (n_out,))
    steps = np.arange(taps)
    for phase in range(min(up, n_out)):
        t0 = phase * down + half_len
        newest = t0 // up  # the latest input the first output of this phase sees
        where = t0 - (newest - steps[::-1]) * up  # (taps,) filter index of input newest - taps + 1 + k
        weights = np.where(where < len(h), h[np.minimum(where, len(h) - 1)], 0.0)  # (taps,)
        count = len(range(phase, n_out, up))
        # Output phase + q * up sees padded[newest + q * down + 1 :][:taps] (the left pad is taps long).
        y[..., phase::up] = windows[..., newest + 1 :: down, :][..., :count, :] @ weights
    return np.moveaxis(y, -1, axis)
