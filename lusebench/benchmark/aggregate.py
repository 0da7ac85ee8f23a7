"""Per-item table -> means with 95% confidence intervals, overall and by group."""

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
}
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
        share, scale = mean / info.high, info.high
        centre = (share + _Z95**2 / (2 * n)) / (1 + _Z95**2 / n)
        spread = _Z95 / (1 + _Z95**2 / n) * math.sqrt(share * (1 - share) / n + _Z95**2 / (4 * n * n))
        low, high = scale * max(0.0, centre - spread), scale * min(1.0, centre + spread)
    else:
        half_width = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
        low, high = mean - half_width, mean + half_width
        if info is not None and info.low is not None:
            low = max(low, info.low)
        if info is not None and info.high is not None:
            high = min(high, info.high)
    return {"mean": mean, "ci95": (high - low) / 2, "ci95_low": low, "ci95_high": high, "n": n}


def metric_keys(items: pd.DataFrame) -> list[str]:
    """The aggregated keys whose item column is present, in registry order."""
    return [key for key in METRICS if item_column(key) in items.columns]


def summarize(items: pd.DataFrame) -> dict:
    """``{metric_key: mean_ci}`` over all rows of ``items``."""
    return {key: mean_ci(items[item_column(key)].to_numpy(), METRICS[key]) for key in metric_keys(items)}


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
    bins = separation_bin(items["angular_separation_deg"].to_numpy(), edges)
    by_separation: dict = {"bins_deg": list(edges)}
    for key in keys:
        column = items[item_column(key)].to_numpy()
        by_separation[key] = [mean_ci(column[bins == b], METRICS[key]) for b in range(len(edges) - 1)]
    return {
        "overall": summarize(items),
        "by_num_sources": {str(n): summarize(group) for n, group in items.groupby("num_sources")},
        "by_condition": {str(c): summarize(group) for c, group in items.groupby("condition")},
        "by_separation": by_separation,
    }
