"""The tracks beyond the paper's Table 1, as per-item columns derived from the per-item table.

- Front-back confusions: localization errors that mirroring about the interaural axis undoes.
- The joint score: was the target both extracted and located on the same item?
- Absent targets: items whose query names no source of the mixture (their figures never enter the
  present-target means).

Every column here is computed from other columns of items.csv (no audio), so a results folder's
table can be re-scored with other thresholds without its submission.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lusebench.benchmark.metrics import (
    FRONT_BACK_TOLERANCE_DEG,
    MAX_DB,
    front_back_confused,
    joint_found,
    resolved_error_deg,
)
from lusebench.errors import LusebenchError

# An item counts as found where SI-SNRi >= 3 dB: passing the mixture through scores 0 dB and
# extracting an interferer instead scores far below it, so 3 dB (the target's share of the output
# twice its share of the mixture) is the smallest margin that says "extracted" rather than "did
# nothing". The DoA tolerance is DCASE SELD's 20 deg (location-aware F-score).
JOINT_SI_SNRI_DB = 3.0
JOINT_DOA_DEG = 20.0
# Column of the per-item table that marks an absent-target item (the manifest's column of that name).
ABSENT_COLUMN = "target_absent"
# Column where the submission said "absent" (no azimuth, or a likelihood peak under the threshold).
SAID_ABSENT_COLUMN = "said_absent"


@dataclass(frozen=True)
class TrackOptions:
    """Thresholds of the joint score, written into results.json's ``tracks`` block.

    Attributes:
        joint_si_snri_db: smallest SI-SNRi (dB) of a found target.
        joint_doa_deg: largest DoA error (deg) of a located target, in (0, 180].
    """

    joint_si_snri_db: float = JOINT_SI_SNRI_DB
    joint_doa_deg: float = JOINT_DOA_DEG

    def __post_init__(self) -> None:
        if not (math.isfinite(self.joint_si_snri_db) and abs(self.joint_si_snri_db) <= MAX_DB):
            raise LusebenchError(f"joint SI-SNRi threshold must be within [-{MAX_DB:g}, {MAX_DB:g}] dB, got {self.joint_si_snri_db}")
        if not (math.isfinite(self.joint_doa_deg) and 0.0 < self.joint_doa_deg <= 180.0):
            raise LusebenchError(f"joint DoA tolerance must be within (0, 180] deg, got {self.joint_doa_deg}")

    def to_dict(self) -> dict:
        return {**asdict(self), "front_back_deg": FRONT_BACK_TOLERANCE_DEG}


def _percent(flags: np.ndarray, defined: np.ndarray) -> np.ndarray:
    return np.where(defined, np.where(flags, 100.0, 0.0), np.nan)


def add_track_columns(items: pd.DataFrame, options: TrackOptions = TrackOptions()) -> pd.DataFrame:
    """The per-item table with the tracks' columns added (or recomputed).

    Reads ``doa_pred_deg``/``target_azimuth_deg`` (localization), ``si_snri_db`` (extraction) and
    ``doa_error_deg``, where present; a column whose inputs are absent is not added, so a one-task
    system gets no joint columns and is scored on its own task only.

    Adds:
        ``doa_front_back_pct`` (100 for a confusion, else 0), ``doa_error_resolved_deg``;
        ``joint_success_pct`` (100 where found and located), ``si_snri_located_db`` and
        ``si_snri_mislocated_db`` (the item's SI-SNRi in one of them, NaN in the other).
        Items without a located estimate (absent targets, or a present target said absent) are NaN.
        Where the set has absent-target items or the system said "absent" (``said_absent``):
        ``absent_detected_pct`` on absent items and ``false_absent_pct`` on present ones (100 where
        said absent). ``absent_level_db`` comes from the audio (evaluate.py).
    """
    items = items.copy()
    if "doa_pred_deg" in items.columns:
        predicted = items["doa_pred_deg"].to_numpy(dtype=np.float64)
        truth = items["target_azimuth_deg"].to_numpy(dtype=np.float64)
        defined = ~np.isnan(predicted) & ~np.isnan(truth)
        with np.errstate(invalid="ignore"):
            items["doa_front_back_pct"] = _percent(front_back_confused(predicted, truth), defined)
            items["doa_error_resolved_deg"] = np.where(defined, resolved_error_deg(predicted, truth), np.nan)
    if "si_snri_db" in items.columns and "doa_error_deg" in items.columns:
        si_snri = items["si_snri_db"].to_numpy(dtype=np.float64)
        error = items["doa_error_deg"].to_numpy(dtype=np.float64)
        present = ~_absent(items)
        # A present target said absent is neither extracted-and-located nor located: it fails.
        scored = present & ~np.isnan(si_snri)
        with np.errstate(invalid="ignore"):
            located = error <= options.joint_doa_deg  # False for NaN: said absent
            items["joint_success_pct"] = _percent(
                joint_found(si_snri, error, options.joint_si_snri_db, options.joint_doa_deg), scored
            )
        items["si_snri_located_db"] = np.where(scored & located, si_snri, np.nan)
        items["si_snri_mislocated_db"] = np.where(scored & ~located, si_snri, np.nan)
    if SAID_ABSENT_COLUMN in items.columns:
        said = items[SAID_ABSENT_COLUMN].to_numpy(dtype=np.float64)
        absent = _absent(items)
        # Only where the set asks for absent targets or the system said "absent": elsewhere a column of
        # zeros would say nothing.
        if absent.any() or np.nansum(said) > 0:
            answered = ~np.isnan(said)
            items["absent_detected_pct"] = _percent(said == 1.0, answered & absent)
            items["false_absent_pct"] = _percent(said == 1.0, answered & ~absent)
    return items


def _absent(items: pd.DataFrame) -> np.ndarray:
    if ABSENT_COLUMN not in items.columns:
        return np.zeros(len(items), dtype=bool)
    return items[ABSENT_COLUMN].fillna(False).to_numpy(dtype=bool)
