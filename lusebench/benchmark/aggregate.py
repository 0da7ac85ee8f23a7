"""Per-item table -> means with 95% confidence intervals, overall and by group.

Two intervals per mean. The first treats the items as independent draws: it says how well the
mean is pinned down for new mixtures of the same clips. The second (``ci95_clips_*``) treats the
target clip as the unit drawn: a fixed set's 1,000 mixtures reuse a few dozen clips, and a
system's score moves far more from clip to clip than from mixture to mixture, so only that
interval supports a claim about sounds the set does not hold (docs/submission-format.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lusebench.benchmark.metrics import METRICS, MetricInfo

# The item column that each aggregated key averages; the rest average the column of their own name.
ITEM_COLUMN: dict[str, str] = {
    "doa_accuracy_pct": "doa_correct_pct",
    "doa_mae_deg": "doa_error_deg",
    "doa_mae_folded_deg": "doa_error_folded_deg",
    "doa_mae_resolved_deg": "doa_error_resolved_deg",
}
# The item column naming each mixture's target clip, the unit of the by-clip interval.
CLIP_COLUMN = "target_clip_id"
SEPARATION_BINS_DEG: tuple[float, ...] = tuple(float(edge) for edge in range(0, 181, 20))


def item_column(key: str) -> str:
    """The per-item column behind an aggregated metric key."""
    return ITEM_COLUMN.get(key, key)


_Z95 = stats.norm.ppf(0.975)


def mean_ci(values: np.ndarray, info: MetricInfo | None = None) -> dict:
    """Mean and its 95% confidence interval, ignoring NaN.

    Student's t interval, cut to the metric's range (``info.low``, ``info.high``) when it has one;
    for a proportion (items scoring 0 or 100 %), Wilson's score interval, which stays inside
    [0, 100] and keeps its width at 0 % or 100 %, where a t interval would collapse to a point.

    Returns:
        ``{"mean", "ci95", "ci95_low", "ci95_high", "n"}``: ``ci95`` is half the interval's width
        (the ``±`` of a symmetric interval), ``ci95_low``/``ci95_high`` its ends; ``mean`` is None
        for no value, the interval None for fewer than two values.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    n = int(values.size)
    if n < 2:
        return {"mean": float(values[0]) if n else None, "ci95": None, "ci95_low": None, "ci95_high": None, "n": n}
    mean = float(values.mean())
    if info is not None and info.proportion:
        low, high = _wilson(mean, n, info.high)
    else:
        half_width = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
        low, high = _cut_to_range(mean - half_width, mean + half_width, info)
    return {"mean": mean, "ci95": (high - low) / 2, "ci95_low": low, "ci95_high": high, "n": n}


def _cut_to_range(low: float, high: float, info: MetricInfo | None) -> tuple[float, float]:
    """An interval cut to the metric's range (``info.low``, ``info.high``) where it has one."""
    if info is not None and info.low is not None:
        low = max(low, info.low)
    if info is not None and info.high is not None:
        high = min(high, info.high)
    return low, high


def _wilson(mean: float, n: float, scale: float) -> tuple[float, float]:
    """Wilson's score interval of a share ``mean / scale`` over ``n`` (effective) items, in the mean's units."""
    share = mean / scale
    centre = (share + _Z95**2 / (2 * n)) / (1 + _Z95**2 / n)
    spread = _Z95 / (1 + _Z95**2 / n) * math.sqrt(share * (1 - share) / n + _Z95**2 / (4 * n * n))
    return scale * max(0.0, centre - spread), scale * min(1.0, centre + spread)


def clip_ci(values: np.ndarray, clips: np.ndarray, info: MetricInfo | None = None) -> dict:
    """The mean's 95% interval with the items grouped by target clip.

    The cluster-robust (CR1, Liang-Zeger) standard error of a mean: the items' deviations from
    the mean are summed per clip, so items that share a clip count as one draw, and the interval
    uses Student's t with (clips - 1) degrees of freedom, cut to the metric's range. For a share
    (DoA accuracy), Wilson's interval over the effective item count n / design effect (Kish; the
    clustered variance over the independent one, at least 1), and over the clip count when every
    item scores the same, where the variances say nothing. Closed form rather than a bootstrap, so
    the same table always gives the same bounds.

    Returns:
        ``{"ci95_clips_low", "ci95_clips_high", "clips"}``; the ends are None for fewer than two clips.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    values, clips = values[keep], np.asarray(clips)[keep]
    labels, cluster = np.unique(clips, return_inverse=True)
    count = len(labels)
    if count < 2:
        return {"ci95_clips_low": None, "ci95_clips_high": None, "clips": count}
    mean, n = float(values.mean()), values.size
    sums = np.bincount(cluster, weights=values - mean, minlength=count)
    variance = count / (count - 1) * float(np.sum(sums**2)) / n**2  # of the mean, CR1
    if info is not None and info.proportion:
        independent = values.var() / n
        effective = count if independent == 0 else n / max(1.0, variance / independent)
        low, high = _wilson(mean, effective, info.high)
        return {"ci95_clips_low": low, "ci95_clips_high": high, "clips": count}
    half_width = stats.t.ppf(0.975, count - 1) * math.sqrt(variance)
    low, high = _cut_to_range(mean - half_width, mean + half_width, info)
    return {"ci95_clips_low": low, "ci95_clips_high": high, "clips": count}


def _stat(items: pd.DataFrame, key: str) -> dict:
    """``mean_ci`` of one metric, with the by-clip interval where the table names target clips."""
    values = items[item_column(key)].to_numpy()
    cell = mean_ci(values, METRICS[key])
    if CLIP_COLUMN in items.columns:
        cell.update(clip_ci(values, items[CLIP_COLUMN].to_numpy(), METRICS[key]))
    return cell


def metric_keys(items: pd.DataFrame) -> list[str]:
    """The aggregated keys whose item column is present, in registry order."""
    return [key for key in METRICS if item_column(key) in items.columns]


def summarize(items: pd.DataFrame) -> dict:
    """``{metric_key: mean_ci}`` over all rows of ``items``."""
    return {key: _stat(items, key) for key in metric_keys(items)}


def separation_bin(separation_deg: np.ndarray, edges: tuple[float, ...] = SEPARATION_BINS_DEG) -> np.ndarray:
    """Index of the bin ``[edges[i], edges[i+1])`` of each separation; the last bin includes its right edge."""
    index = np.searchsorted(np.asarray(edges), np.asarray(separation_deg, dtype=np.float64), side="right") - 1
    return np.clip(index, 0, len(edges) - 2)


def aggregate(items: pd.DataFrame, edges: tuple[float, ...] = SEPARATION_BINS_DEG) -> dict:
    """The ``metrics`` block of results.json.

    Args:
        items: the per-item table (``num_sources``, ``condition``, ``angular_separation_deg`` and
            metric columns).
        edges: separation bin edges in degrees.
    """
    keys = metric_keys(items)
    separation = items["angular_separation_deg"].to_numpy(dtype=np.float64)
    bins = separation_bin(separation, edges)
    by_separation: dict = {"bins_deg": list(edges)}
    # An absent-target item has no target, hence no separation (NaN): it is in no bin.
    groups = [items[(bins == b) & ~np.isnan(separation)] for b in range(len(edges) - 1)]
    for key in keys:
        by_separation[key] = [_stat(group, key) for group in groups]
    return {
        "overall": summarize(items),
        "by_num_sources": {str(n): summarize(group) for n, group in items.groupby("num_sources")},
        "by_condition": {str(c): summarize(group) for c, group in items.groupby("condition")},
        "by_separation": by_separation,
    }
