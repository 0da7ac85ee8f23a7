"""The paper's Figs. 2-4, and a polar view of the estimated azimuths (Fig. 5), for one or several
systems, at one-column width, as PNG and PDF."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from lusebench.benchmark.metrics import FRONT_BACK_TOLERANCE_DEG, circular_error_deg, front_back_confused
from lusebench.benchmark.results import Results
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, replace_folder

logger = logging.getLogger(__name__)

# An IEEE column is 3.5 in wide; 8 pt text stays readable when printed at that size.
_SIZE_IN = (3.5, 2.4)
_FONT_PT = 8
_FORMATS = ("png", "pdf")


# The polar view draws a thousand translucent chords, whose blends made a 300 dpi PNG of ~720 kB
# (210 kB at 150 dpi); its PDF beside it keeps every chord as a vector for print.
_PNG_DPI = {"fig5_azimuth_polar": 150}


def _save(figure: Figure, out: Path, stem: str) -> list[Path]:
    figure.tight_layout(pad=0.3)
    png_dpi = _PNG_DPI.get(stem, 300)
    paths = []
    for fmt in _FORMATS:
        path = out / f"{stem}.{fmt}"
        # bbox "tight": the legend sits above the axes, outside what tight_layout makes room for.
        atomic_write(path, lambda tmp, fmt=fmt: figure.savefig(tmp, format=fmt, dpi=png_dpi if fmt == "png" else 300,
                                                             bbox_inches="tight", pad_inches=0.03))
        paths.append(path)
    return paths


def _new_figure() -> tuple[Figure, object]:
    figure = Figure(figsize=_SIZE_IN)
    axes = figure.add_subplot()
    axes.tick_params(labelsize=_FONT_PT)
    axes.grid(axis="y", alpha=0.3)
    return figure, axes


def _interval(cell: dict) -> tuple[float, float] | None:
    """(below, above) the mean of a cell's 95% interval; None for a cell of fewer than two items."""
    if cell["mean"] is None or cell["ci95"] is None:
        return None
    if cell.get("ci95_low") is None:  # results written before intervals could be asymmetric
        return cell["ci95"], cell["ci95"]
    return cell["mean"] - cell["ci95_low"], cell["ci95_high"] - cell["mean"]


# Characters of a legend label at 7 pt that fit a third of the column; longer labels take a row each.
_SHORT_LABEL = 18
_WRAP_AT = 48


def _legend_above(axes, **kwargs) -> None:
    # Above the axes, outside them: a legend inside may hide a bar or a point whatever its corner.
    # Three short labels share a row; long ones (the run names infer writes run to 80 characters)
    # overlapped there, so they get a row each, wrapped to the column's width.
    handles, labels = axes.get_legend_handles_labels()
    short = max(map(len, labels), default=0) <= _SHORT_LABEL
    labels = labels if short else [textwrap.fill(label, _WRAP_AT) for label in labels]
    axes.legend(handles, labels, fontsize=_FONT_PT - 1, frameon=False, loc="lower left",
                bbox_to_anchor=(0.0, 1.0, 1.0, 0.1), ncol=min(3, len(labels)) if short else 1,
                mode="expand" if short else None, borderaxespad=0.2, **kwargs)


def _bars_by_separation(results: Sequence[Results], labels: Sequence[str], key: str, ylabel: str) -> Figure:
    figure, axes = _new_figure()
    edges = results[0].summary["metrics"]["by_separation"]["bins_deg"]
    centres = np.arange(len(edges) - 1)
    width = 0.8 / len(results)
    thin = False
    for k, (result, label) in enumerate(zip(results, labels)):
        cells = result.summary["metrics"]["by_separation"][key]
        x = centres + (k - (len(results) - 1) / 2) * width
        means = np.array([np.nan if c["mean"] is None else c["mean"] for c in cells])
        intervals = [_interval(c) for c in cells]
        sure = np.array([interval is not None for interval in intervals])
        color = f"C{k}"  # fixed per system: the hatched bars below must not advance the colour cycle
        axes.bar(x[sure], means[sure], width, label=label, color=color)
        below = [interval[0] for interval in intervals if interval is not None]
        above = [interval[1] for interval in intervals if interval is not None]
        axes.errorbar(x[sure], means[sure], yerr=[below, above], fmt="none", ecolor="black", elinewidth=0.6,
                      capsize=1.5)
        # A bin of one item has no interval: an outlined, hatched bar, not a bar with a zero-width cap.
        single = ~sure & ~np.isnan(means)
        if single.any():
            thin = True
            axes.bar(x[single], means[single], width, fill=False, hatch="///", linewidth=0.6, edgecolor=color)
    if thin:
        axes.bar([np.nan], [np.nan], fill=False, hatch="///", linewidth=0.6, edgecolor="black",
                 label="< 2 items: no interval")
    axes.set_xticks(centres, [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])], rotation=45, fontsize=_FONT_PT - 1)
    axes.set_xlabel("Inter-source separation (deg)", fontsize=_FONT_PT)
    axes.set_ylabel(ylabel, fontsize=_FONT_PT)
    _legend_above(axes)
    return figure


def _scatter(results: Sequence[Results], labels: Sequence[str]) -> Figure:
    figure, axes = _new_figure()
    for result, label in zip(results, labels):
        items = result.items
        axes.scatter(items["si_snri_db"], items["doa_error_deg"], s=4, alpha=0.5, linewidths=0, label=label)
    axes.set_xlabel("SI-SNRi (dB)", fontsize=_FONT_PT)
    axes.set_ylabel("DoA absolute error (deg)", fontsize=_FONT_PT)
    axes.set_ylim(-5, 185)
    _legend_above(axes, markerscale=2)
    return figure


# Where the chords of the polar view end: the truth on the outer ring, the estimate on the inner one.
_TRUE_RADIUS, _ESTIMATE_RADIUS = 1.0, 0.45


def _polar(results: Sequence[Results], labels: Sequence[str]) -> Figure:
    """One polar panel per system: a chord from each item's true azimuth (outer ring) to its estimate
    (inner ring), in the benchmark's convention (0 = front at the top, 90 = left, counter-clockwise).

    A right answer is a radial chord; a front-back confusion crosses the interaural axis (dashed)
    as the mirror image of a radial chord, drawn in red so it stands out from other errors.
    """
    figure = Figure(figsize=(_SIZE_IN[0], _SIZE_IN[0] / len(results) + 0.5))
    for k, (result, label) in enumerate(zip(results, labels)):
        axes = figure.add_subplot(1, len(results), k + 1, projection="polar")
        axes.set_theta_zero_location("N")
        axes.set_theta_direction(1)
        items = result.items
        predicted = items["doa_pred_deg"].to_numpy(dtype=np.float64)
        truth = items["target_azimuth_deg"].to_numpy(dtype=np.float64)
        keep = ~np.isnan(predicted) & ~np.isnan(truth)  # absent targets and "absent" answers have no chord
        predicted, truth = predicted[keep], truth[keep]
        confused = front_back_confused(predicted, truth)
        right = circular_error_deg(predicted, truth) <= FRONT_BACK_TOLERANCE_DEG
        kinds = (
            (right, "0.55", f"within {FRONT_BACK_TOLERANCE_DEG:g} deg"),
            (~right & ~confused, "C0", "other errors"),
            (confused, "C3", "front-back confusions"),
        )
        for mask, color, name in kinds:
            chords = [
                [(np.radians(t), _TRUE_RADIUS), (np.radians(p), _ESTIMATE_RADIUS)]
                for t, p in zip(truth[mask], predicted[mask])
            ]
            axes.add_collection(LineCollection(chords, colors=color, linewidths=0.4, alpha=0.5,
                                               label=f"{name} ({int(mask.sum())})"))
        axes.plot(np.radians([90.0, 270.0]), [_TRUE_RADIUS, _TRUE_RADIUS], "k--", linewidth=0.5)
        axes.set_ylim(0.0, 1.05)
        axes.set_yticks([])
        axes.set_xticks(np.radians([0, 90, 180, 270]), ["front", "left", "back", "right"], fontsize=_FONT_PT - 1)
        axes.set_title(label, fontsize=_FONT_PT)
        if k == 0:
            axes.legend(fontsize=_FONT_PT - 2, frameon=False, loc="upper left", bbox_to_anchor=(-0.45, 1.15))
    return figure


# stem, the item columns a system needs to appear, how to draw it.
_FIGURES = (
    ("fig2_si_snri_by_separation", ("si_snri_db",),
     lambda rs, ls: _bars_by_separation(rs, ls, "si_snri_db", "SI-SNRi (dB)")),
    ("fig3_doa_mae_by_separation", ("doa_error_deg",),
     lambda rs, ls: _bars_by_separation(rs, ls, "doa_mae_deg", "DoA MAE (deg)")),
    ("fig4_mae_vs_si_snri", ("si_snri_db", "doa_error_deg"), _scatter),
    ("fig5_azimuth_polar", ("doa_pred_deg", "target_azimuth_deg"), _polar),
)


def draw_figures(
    results: Sequence[Results], out: Path, labels: Sequence[str] | None = None, *, allow_mixed: bool = False
) -> list[Path]:
    """Draw Fig. 2 (SI-SNRi by separation), Fig. 3 (DoA MAE by separation), Fig. 4 (MAE vs SI-SNRi)
    and Fig. 5 (estimated against true azimuth on a circle, front-back confusions in red).

    Each figure overlays the systems that have its metrics; a figure no system can fill is skipped.

    Args:
        results: one or more results (``load_results`` reads them from folders).
        out: folder for ``fig2_*.png/pdf`` and the rest.
        labels: legend entries, one per result; system names by default.
        allow_mixed: overlay results scored on different test sets (fingerprints), with a warning;
            refused otherwise, since their bars would compare different mixtures.

    Returns:
        The files written.

    Raises:
        LusebenchError: when labels do not match results, bins differ, the results come from
            several test sets and ``allow_mixed`` is off, or no figure can be drawn.
    """
    labels = [r.name for r in results] if labels is None else list(labels)
    if len(labels) != len(results):
        raise LusebenchError(f"{len(labels)} label(s) for {len(results)} results")
    edges = {tuple(r.summary["metrics"]["by_separation"]["bins_deg"]) for r in results}
    if len(edges) > 1:
        raise LusebenchError(f"results use different separation bins: {sorted(edges)}")
    sets = sorted({str(r.summary.get("dataset", {}).get("fingerprint")) for r in results})
    if len(sets) > 1:
        shown = ", ".join(fingerprint[:12] for fingerprint in sets)
        if not allow_mixed:
            raise LusebenchError(
                f"the results come from {len(sets)} test sets (fingerprints {shown}); figures overlay one set's "
                "results: pass --allow-mixed to draw them together anyway"
            )
        logger.warning("overlaying results of %d test sets (fingerprints %s): their bars compare different mixtures",
                       len(sets), shown)
    out = Path(out)

    def having(*columns: str) -> tuple[list[Results], list[str]]:
        pairs = [(r, l) for r, l in zip(results, labels) if all(c in r.items.columns for c in columns)]
        return [r for r, _ in pairs], [l for _, l in pairs]

    chosen = []
    for stem, columns, draw in _FIGURES:
        systems, system_labels = having(*columns)
        if systems:
            chosen.append((stem, systems, system_labels, draw))
        else:
            logger.info("skipping %s: no system has %s", stem, " and ".join(columns))
    if not chosen:
        raise LusebenchError("no figure to draw: the results hold neither extraction nor localization metrics")
    paths: list[Path] = []
    # Drawn beside ``out`` and renamed into place whole: a failure leaves ``out`` as it was.
    with replace_folder(out, owned=[f"{stem}.{fmt}" for stem, _, _ in _FIGURES for fmt in _FORMATS]) as staging:
        for stem, rs, ls, draw in chosen:
            paths += [out / path.name for path in _save(draw(rs, ls), staging, stem)]
    return paths
